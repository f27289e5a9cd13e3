"""Getting images in: files, folders, zip archives, CSV labels, Viam JSONL; dedupe; batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from tagtrain.ingest.importer import ImportOptions, ImportReport, import_entries
from tagtrain.ingest.labels_csv import apply_labels, read_labels_csv
from tagtrain.ingest.sources import Entry, Item, Limits, Rejection, from_path
from tagtrain.media import ImageLimits
from tagtrain.settings import Settings
from tagtrain.store import Store

__all__ = [
    "ImportOptions",
    "ImportReport",
    "Item",
    "Rejection",
    "import_entries",
    "import_paths",
    "limits_from",
]


def limits_from(settings: Settings) -> tuple[Limits, ImageLimits]:
    return (
        Limits(settings.max_upload_bytes, settings.max_zip_entries, settings.max_zip_bytes),
        ImageLimits(settings.max_image_pixels, settings.max_image_side),
    )


def import_paths(
    store: Store,
    settings: Settings,
    paths: Sequence[Path],
    options: ImportOptions,
    *,
    labels_csv: Path | None = None,
    on_total: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import files, folders, zips and JSONL files; see :func:`import_entries` for batch rules."""
    limits, image_limits = limits_from(settings)
    labels = read_labels_csv(labels_csv) if labels_csv else None
    with ExitStack() as stack:
        entries: list[Entry] = [e for p in paths for e in from_path(p, limits, stack)]
        if on_total:
            on_total(len(entries))
        stream = apply_labels(labels, entries) if labels else entries
        report = import_entries(store, stream, options, image_limits, progress)
    if labels:
        report.rejected += labels.problems + labels.unmatched()
    return report
