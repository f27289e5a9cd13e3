"""Import a batch of candidate images into the store.

Order of work, which is what keeps a killed import consistent:
1. decode and validate each image, make its thumbnail (in a thread pool: Pillow and hashlib
   release the GIL, so two cores are used without pickling bytes between processes);
2. write the original and the thumbnail blobs atomically and make the renames durable;
3. in one transaction per chunk, insert the rows, tags and dataset memberships.
A blob without a row is harmless (the next import of those bytes adopts it); a row without its
blob cannot happen. Re-importing the same bytes stores nothing twice but adds the new tags and
dataset memberships.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from tagtrain.errors import TagtrainError
from tagtrain.ingest.sources import Entry, Item, Rejection
from tagtrain.media import ImageInfo, ImageLimits, decode_image, make_thumbnail
from tagtrain.store import Store
from tagtrain.store import datasets as ds_store
from tagtrain.store.images import NewImage, by_ids, existing_ids, insert_images
from tagtrain.store.tags import add_tags, normalize_tag

CHUNK = 64


@dataclass(frozen=True)
class ImportOptions:
    source: str = "import"
    dataset: str | None = None
    tags: tuple[str, ...] = ()
    tags_from_folders: bool = False
    machine_id: int | None = None
    camera: str | None = None
    captured_at: datetime | None = None
    thumbnail_size: int = 256
    threads: int = 2


@dataclass
class ImportReport:
    added: int = 0
    existing: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


@dataclass(frozen=True)
class _Ready:
    """An item that passed validation, with its blobs written."""

    item: Item
    sha256: str
    size: int
    info: ImageInfo
    tags: tuple[str, ...]


Progress = Callable[[int], None]


def import_entries(
    store: Store,
    entries: Iterable[Entry],
    options: ImportOptions,
    limits: ImageLimits,
    progress: Progress | None = None,
) -> ImportReport:
    """Store every valid item of ``entries``; every rejected one is reported, none stops the rest."""
    _check_options(options)
    report = ImportReport()
    if options.dataset:
        with store.transaction() as session:
            ds_store.get_or_create(session, options.dataset)
    with ThreadPoolExecutor(max_workers=options.threads) as pool:
        prepare = _Preparer(store, options, limits)
        pending: list[Future[_Ready | Rejection]] = []
        pending_size = 0
        for chunk in _chunks(iter(entries), CHUNK):
            report.rejected += [e for e in chunk if isinstance(e, Rejection)]
            # Queue this chunk before recording the previous one, so the threads keep decoding
            # while the main thread waits on fsync and SQLite.
            queued = [pool.submit(prepare, e) for e in chunk if isinstance(e, Item)]
            _finish(store, pending, options, report)
            if progress and pending_size:
                progress(pending_size)
            pending, pending_size = queued, len(chunk)
        _finish(store, pending, options, report)
        if progress and pending_size:
            progress(pending_size)
    return report


def _finish(
    store: Store,
    futures: list[Future[_Ready | Rejection]],
    options: ImportOptions,
    report: ImportReport,
) -> None:
    """Wait for one chunk, make its blobs durable, then record its rows in one transaction."""
    results = [f.result() for f in futures]
    report.rejected += [r for r in results if isinstance(r, Rejection)]
    store.originals.flush()
    store.thumbnails.flush()
    _record(store, [r for r in results if isinstance(r, _Ready)], options, report)


def _check_options(options: ImportOptions) -> None:
    for tag in options.tags:
        normalize_tag(tag)
    if options.dataset:
        ds_store.normalize_name(options.dataset)


def _chunks(it: Iterator[Entry], size: int) -> Iterator[list[Entry]]:
    while chunk := list(islice(it, size)):
        yield chunk


@dataclass(frozen=True)
class _Preparer:
    store: Store
    options: ImportOptions
    limits: ImageLimits

    def __call__(self, item: Item) -> _Ready | Rejection:
        try:
            tags = self._tags(item)
            data = item.read()
            info, rgb = decode_image(
                data, item.name, self.limits, draft_box=self.options.thumbnail_size
            )
            sha = hashlib.sha256(data).hexdigest()
            self.store.thumbnails.put(sha, make_thumbnail(rgb, self.options.thumbnail_size))
            self.store.originals.put(sha, data)
        except TagtrainError as exc:
            return Rejection(item.name, getattr(exc, "reason", exc.message))
        except OSError as exc:
            return Rejection(item.name, f"cannot be read ({exc})")
        return _Ready(item, sha, len(data), info, tags)

    def _tags(self, item: Item) -> tuple[str, ...]:
        tags = list(self.options.tags) + list(item.tags)
        if self.options.tags_from_folders and item.folder:
            tags.append(item.folder)
        return tuple(normalize_tag(t) for t in tags)


def _record(
    store: Store, ready: list[_Ready], options: ImportOptions, report: ImportReport
) -> None:
    if not ready:
        return
    with store.transaction() as session:
        ids = existing_ids(session, (r.sha256 for r in ready))
        report.existing += len(ids)
        fresh = {r.sha256: _new_row(r, options) for r in ready if r.sha256 not in ids}
        ids |= insert_images(session, list(fresh.values()))
        report.added += len(fresh)
        by_tag: dict[str, set[int]] = {}
        for r in ready:
            for tag in r.tags:
                by_tag.setdefault(tag, set()).add(ids[r.sha256])
        for tag, tagged in by_tag.items():
            add_tags(session, by_ids(sorted(tagged)), [tag])
        chunk_ids = sorted({ids[r.sha256] for r in ready})
        if options.dataset:
            ds_store.add_images(session, options.dataset, by_ids(chunk_ids))
    report.image_ids += chunk_ids


def _new_row(r: _Ready, options: ImportOptions) -> NewImage:
    return NewImage(
        sha256=r.sha256,
        width=r.info.width,
        height=r.info.height,
        format=r.info.format,
        mime=r.info.mime,
        size_bytes=r.size,
        source=options.source,
        original_name=r.item.name[-500:],
        machine_id=options.machine_id,
        camera=options.camera,
        captured_at=options.captured_at,
    )
