"""/api/v1/images: upload, list, count, fetch bytes, tag and delete."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tagtrain.ingest import ImportOptions, Item, Rejection, import_entries, limits_from
from tagtrain.ingest.sources import Entry, Limits, from_zip, open_zip
from tagtrain.ingest.thumbnails import thumbnail_bytes
from tagtrain.server.deps import CurrentUser, SettingsDep, StoreDep
from tagtrain.server.schemas import (
    Count,
    ImageDetail,
    ImageOut,
    ImagePage,
    Selection,
    TagEdit,
    TagEditResult,
    UploadResult,
)
from tagtrain.store import Store
from tagtrain.store import datasets as ds_store
from tagtrain.store import filters as filter_store
from tagtrain.store import images as image_store
from tagtrain.store import tags as tag_store
from tagtrain.store.filters import ImageFilter, Source
from tagtrain.store.images import ImageRow
from tagtrain.store.tables import Machine
from tagtrain.store.tags import Selection as IdSelection

router = APIRouter(prefix="/api/v1/images", tags=["images"])

ZIP_MAGIC = b"PK\x03\x04"
IMMUTABLE = "private, max-age=31536000, immutable"


def image_filter(
    tag: Annotated[list[str] | None, Query(description="Repeat for several tags.")] = None,
    match: Literal["any", "all"] = "any",
    untagged: bool = False,
    dataset: str | None = None,
    source: Source | None = None,
    machine: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ImageFilter:
    return ImageFilter(
        tags=tuple(tag or ()),
        match=match,
        untagged=untagged,
        dataset=dataset,
        source=source,
        machine=machine,
        since=since,
        until=until,
    )


FilterDep = Annotated[ImageFilter, Depends(image_filter)]


@router.get("", response_model=ImagePage)
def list_images(
    store: StoreDep,
    _user: CurrentUser,
    flt: FilterDep,
    cursor: Annotated[int | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=image_store.MAX_PAGE)] = 100,
) -> ImagePage:
    """Newest first; filter by tags (any/all), untagged, dataset, source, machine, time range."""
    with store.transaction() as session:
        page = image_store.page(session, flt, cursor=cursor, limit=limit)
    return ImagePage(items=[ImageOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/count", response_model=Count)
def count_images(store: StoreDep, _user: CurrentUser, flt: FilterDep) -> Count:
    with store.transaction() as session:
        return Count(count=filter_store.count(session, flt))


@router.post("", response_model=UploadResult)
async def upload_images(
    store: StoreDep,
    settings: SettingsDep,
    _user: CurrentUser,
    files: Annotated[list[UploadFile], File(description="Images, or zip archives of images.")],
    tags: Annotated[list[str] | None, Form(description="Tags for every file.")] = None,
    dataset: Annotated[str | None, Form()] = None,
    tags_from_folders: Annotated[bool, Form()] = False,
) -> UploadResult | JSONResponse:
    """Store every valid file; the answer lists each rejected one with its reason. The type is
    sniffed from the bytes; a zip archive is expanded (folder names can become tags)."""
    limits, image_limits = limits_from(settings)
    options = ImportOptions(
        source="upload",
        dataset=dataset or None,
        tags=tuple(tags or ()),
        tags_from_folders=tags_from_folders,
        thumbnail_size=settings.thumbnail_size,
    )
    entries = [e for f in files for e in _upload_entries(f, limits)]
    report = await run_in_threadpool(import_entries, store, entries, options, image_limits)
    result = UploadResult.of(report)
    if report.rejected and not report.image_ids:  # nothing went in: say so in the status too
        return JSONResponse(result.model_dump(mode="json"), status_code=422)
    return result


def over_limit(upload: UploadFile, limit: int) -> str | None:
    """Why ``upload`` is too large for ``limit`` bytes, or None (machine captures use it too)."""
    size = upload.size if upload.size is not None else 0
    return f"{size:,} bytes is over the {limit:,}-byte upload limit" if size > limit else None


def _upload_entries(upload: UploadFile, limits: Limits) -> Iterator[Entry]:
    name = upload.filename or "upload"
    stream = upload.file
    stream.seek(0)
    is_zip = stream.read(4) == ZIP_MAGIC
    stream.seek(0)
    over = over_limit(upload, limits.max_zip_bytes if is_zip else limits.max_file_bytes)
    if over:
        yield Rejection(name, over)
        return
    if is_zip:
        try:
            yield from from_zip(open_zip(stream, name), name, limits)
        except Exception as exc:  # a corrupt archive is one rejection, not a failed batch
            yield Rejection(name, f"not a readable zip archive ({exc})")
        return
    data = stream.read()
    parts = PurePosixPath(name.replace("\\", "/")).parts
    folder = parts[-2] if len(parts) > 1 else None
    yield Item(name=name, key=name, folder=folder, read=lambda: data)


@router.post("/tags", response_model=TagEditResult)
def edit_tags(store: StoreDep, _user: CurrentUser, body: TagEdit) -> TagEditResult:
    """Add and remove tags on the images named by ``ids`` or matching ``filter``."""
    with store.transaction() as session:
        chosen = selection(session, body)
        added = tag_store.add_tags(session, chosen, body.add)
        removed = tag_store.remove_tags(session, chosen, body.remove)
    return TagEditResult(added=added, removed=removed)


@router.post("/delete", response_model=Count)
def delete_many(store: StoreDep, _user: CurrentUser, body: Selection) -> Count:
    """Delete the images named by ``ids`` or matching ``filter``, with their blobs."""
    with store.transaction() as session:
        shas = image_store.delete_images(session, selection(session, body))
    _drop_blobs(store, shas)
    return Count(count=len(shas))


@router.get("/{image_id}", response_model=ImageDetail)
def get_image(store: StoreDep, _user: CurrentUser, image_id: int) -> ImageDetail:
    with store.transaction() as session:
        img = image_store.get(session, image_id)
        tags = tag_store.tags_of(session, [img.id])[img.id]
        machine = session.get(Machine, img.machine_id) if img.machine_id else None
        row = ImageRow(img, tags, machine.name if machine else None)
        in_datasets = ds_store.datasets_of(session, img.id)
    return ImageDetail(**ImageOut.of(row).model_dump(), datasets=in_datasets)


@router.delete("/{image_id}", response_model=Count)
def delete_image(store: StoreDep, _user: CurrentUser, image_id: int) -> Count:
    with store.transaction() as session:
        image_store.get(session, image_id)
        shas = image_store.delete_images(session, image_store.by_ids([image_id]))
    _drop_blobs(store, shas)
    return Count(count=len(shas))


@router.get("/{image_id}/original", response_class=Response)
def original(store: StoreDep, _user: CurrentUser, image_id: int) -> Response:
    """The bytes exactly as uploaded."""
    with store.transaction() as session:
        img = image_store.get(session, image_id)
    return _blob_response(store.originals.get(img.sha256), img.mime, img.sha256)


@router.get("/{image_id}/thumbnail", response_class=Response)
def thumbnail(
    store: StoreDep, settings: SettingsDep, _user: CurrentUser, image_id: int
) -> Response:
    """A JPEG of about 256 px, oriented (made again from the original if it went missing)."""
    with store.transaction() as session:
        img = image_store.get(session, image_id)
    data = thumbnail_bytes(store, img.sha256, settings.thumbnail_size)
    return _blob_response(data, "image/jpeg", img.sha256)


def _blob_response(data: bytes, mime: str, sha: str) -> Response:
    return Response(data, media_type=mime, headers={"Cache-Control": IMMUTABLE, "ETag": f'"{sha}"'})


def selection(session: Session, body: Selection) -> IdSelection:
    if body.ids is not None:
        return image_store.by_ids(body.ids)
    assert body.filter is not None  # the schema guarantees one of the two
    return filter_store.filtered_ids(session, body.filter)


def _drop_blobs(store: Store, shas: list[str]) -> None:
    for sha in shas:
        store.originals.delete(sha)
        store.thumbnails.delete(sha)
