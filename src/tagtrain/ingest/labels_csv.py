"""``--labels-csv``: a ``filename,tags`` file (tags joined by ``;``; empty means no tag).

Rows are checked one by one: bad encoding, wrong column count, empty file names and duplicates are
reported with their row number; the good rows still apply. Rows whose file is not among the imported
files are reported once the import knows which files it saw (see :meth:`LabelsCsv.unmatched`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from tagtrain.errors import BadInput
from tagtrain.ingest.sources import Entry, Item, Rejection
from tagtrain.store.tags import normalize_tag


@dataclass
class LabelsCsv:
    path: Path
    by_key: dict[str, tuple[str, ...]] = field(default_factory=dict)
    row_of: dict[str, int] = field(default_factory=dict)
    problems: list[Rejection] = field(default_factory=list)
    _used: set[str] = field(default_factory=set)

    def tags_for(self, key: str) -> tuple[str, ...] | None:
        """The tags of the file at relative path ``key`` (matched in full, else by base name)."""
        for candidate in (key, PurePosixPath(key).name):
            if candidate in self.by_key:
                self._used.add(candidate)
                return self.by_key[candidate]
        return None

    def unmatched(self) -> list[Rejection]:
        return [
            Rejection(f"{self.path}:{self.row_of[k]}", f"file {k} is not among the imported files")
            for k in self.by_key
            if k not in self._used
        ]


def read_labels_csv(path: Path) -> LabelsCsv:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot be read ({exc.strerror})") from exc
    labels = LabelsCsv(path)
    lines = raw.removeprefix(b"\xef\xbb\xbf").splitlines()
    for rowno, line in enumerate(lines, start=1):
        _read_row(labels, rowno, line)
    return labels


def _read_row(labels: LabelsCsv, rowno: int, line: bytes) -> None:
    where = f"{labels.path}:{rowno}"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        labels.problems.append(Rejection(where, "row is not UTF-8 text; save the file as UTF-8"))
        return
    if not text.strip():
        return
    cells = next(csv.reader([text]))
    if rowno == 1 and [c.strip().lower() for c in cells] == ["filename", "tags"]:
        return
    if len(cells) not in (1, 2) or not cells[0].strip():
        labels.problems.append(
            Rejection(
                where, f"expected 'filename,tags' but got {len(cells)} column(s): {text[:60]!r}"
            )
        )
        return
    key = cells[0].strip().replace("\\", "/")
    if key in labels.by_key:
        labels.problems.append(
            Rejection(
                where, f"{key} listed again (first on row {labels.row_of[key]}); using the first"
            )
        )
        return
    raw_tags = cells[1] if len(cells) == 2 else ""
    try:
        tags = tuple(normalize_tag(t) for t in raw_tags.split(";") if t.strip())
    except BadInput as exc:
        labels.problems.append(Rejection(where, f"{exc.message}; the row is skipped"))
        return
    labels.by_key[key] = tags
    labels.row_of[key] = rowno


def apply_labels(labels: LabelsCsv, entries: Iterable[Entry]) -> Iterator[Entry]:
    """Add each item's CSV tags to it; items the CSV does not list pass unchanged."""
    for entry in entries:
        if isinstance(entry, Item) and (tags := labels.tags_for(entry.key)) is not None:
            yield replace(entry, tags=entry.tags + tags)
        else:
            yield entry
