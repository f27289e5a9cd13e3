"""Where images come from: files, folders, zip archives, Viam-style JSONL. Each yields
:class:`Item`s (bytes to import plus the tags the source gives them) or :class:`Rejection`s.

Nothing here decodes images; that is ``media``'s job, done by the importer.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import IO

from pydantic import BaseModel, ConfigDict, ValidationError

from tagtrain.errors import BadInput, UnsafeArchive

IMAGE_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".jfif",
    ".png",
    ".webp",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".mpo",
}


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_zip_entries: int
    max_zip_bytes: int


@dataclass(frozen=True)
class Item:
    """One candidate image. ``key`` is its path relative to what was imported (for CSV matching);
    ``folder`` the name of the folder holding it (for --tags-from-folders)."""

    name: str
    key: str
    folder: str | None
    read: Callable[[], bytes]
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Rejection:
    name: str
    reason: str


Entry = Item | Rejection


def from_path(path: Path, limits: Limits, stack: ExitStack) -> Iterator[Entry]:
    """Expand one command-line path: an image file, a folder (recursive), a .zip or a .jsonl.
    Archives stay open on ``stack`` until the caller has read every item."""
    if not path.exists():
        yield Rejection(str(path), "no such file or folder")
    elif path.is_dir():
        yield from from_folder(path, limits)
    elif path.suffix.lower() == ".zip":
        yield from _zip_file(path, limits, stack)
    elif path.suffix.lower() == ".jsonl":
        yield from from_jsonl(path, limits)
    else:
        # An explicitly named file takes its folder name too: `import cats/*.jpg --tags-from-folders`
        yield _file_item(path, path.name, path.resolve().parent.name or None, limits)


def from_folder(root: Path, limits: Limits) -> Iterator[Entry]:
    """Every image file below ``root``, in a stable order; hidden and non-image files are skipped,
    links to folders are not followed (no loops)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        folder = None if here == root else here.name
        for fname in sorted(filenames):
            if fname.startswith(".") or Path(fname).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            full = here / fname
            yield _file_item(full, full.relative_to(root).as_posix(), folder, limits)


def _file_item(path: Path, key: str, folder: str | None, limits: Limits) -> Entry:
    try:
        size = path.stat().st_size
    except OSError as exc:
        return Rejection(str(path), f"cannot be read ({exc.strerror})")
    if size > limits.max_file_bytes:
        return Rejection(str(path), _too_big(size, limits.max_file_bytes))
    return Item(name=str(path), key=key, folder=folder, read=path.read_bytes)


def _too_big(size: int, limit: int) -> str:
    return f"{size:,} bytes is over the {limit:,}-byte file limit"


def _zip_file(path: Path, limits: Limits, stack: ExitStack) -> Iterator[Entry]:
    try:
        archive = stack.enter_context(zipfile.ZipFile(path))
    except (zipfile.BadZipFile, OSError) as exc:
        yield Rejection(str(path), f"not a readable zip archive ({exc})")
        return
    yield from from_zip(archive, str(path), limits)


def open_zip(stream: IO[bytes], name: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchive(f"{name}: not a readable zip archive ({exc})") from exc


def from_zip(archive: zipfile.ZipFile, name: str, limits: Limits) -> Iterator[Entry]:
    """The image entries of an open archive. The whole archive is refused when it has too many
    entries or claims too many bytes; single unsafe entries (absolute paths, ``..``, links,
    oversized) are rejected one by one."""
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > limits.max_zip_entries:
        yield Rejection(
            name, f"{len(infos):,} entries is over the {limits.max_zip_entries:,} limit"
        )
        return
    total = sum(i.file_size for i in infos)
    if total > limits.max_zip_bytes:
        yield Rejection(
            name, f"{total:,} bytes uncompressed is over the {limits.max_zip_bytes:,} limit"
        )
        return
    for info in infos:
        entry = _zip_entry(archive, info, name, limits)
        if entry is not None:
            yield entry


def _zip_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: Limits
) -> Entry | None:
    label = f"{name}:{info.filename}"
    parts = PurePosixPath(info.filename.replace("\\", "/")).parts
    if info.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        return Rejection(label, "path traversal refused (absolute path or '..' in the entry name)")
    if stat.S_ISLNK(info.external_attr >> 16):
        return Rejection(label, "symbolic links in archives are refused")
    if not parts or parts[-1].startswith("."):
        return None
    if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    if info.file_size > limits.max_file_bytes:
        return Rejection(label, _too_big(info.file_size, limits.max_file_bytes))
    folder = parts[-2] if len(parts) > 1 else None
    return Item(
        name=label, key="/".join(parts), folder=folder, read=lambda: _read_entry(archive, info)
    )


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    # zipfile stops at the declared size and checks the CRC, so a lying header cannot
    # make us read more than the limit checked above.
    try:
        with archive.open(info) as handle:
            return handle.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError) as exc:
        # CRC mismatch, encrypted entry, unknown compression, lying sizes: this entry only.
        raise BadInput(f"unreadable archive entry ({exc})") from exc


class _ViamAnnotation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    annotation_label: str


class _ViamLine(BaseModel):
    model_config = ConfigDict(extra="ignore")
    image_path: str
    classification_annotations: list[_ViamAnnotation] = []


def from_jsonl(path: Path, limits: Limits) -> Iterator[Entry]:
    """Viam-style dataset JSONL: one object per line with ``image_path`` (relative to the file's
    folder, or absolute) and ``classification_annotations[].annotation_label``."""
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        label = f"{path}:{lineno}"
        if not raw.strip():
            continue
        try:
            line = _ViamLine.model_validate(json.loads(raw.decode("utf-8")))
        except UnicodeDecodeError:
            yield Rejection(label, "line is not UTF-8 text")
            continue
        except (json.JSONDecodeError, ValidationError) as exc:
            yield Rejection(label, f"malformed line ({_first_error(exc)})")
            continue
        if line.image_path in seen:
            yield Rejection(
                label, f"{line.image_path} listed again (first on line {seen[line.image_path]})"
            )
            continue
        seen[line.image_path] = lineno
        image = (path.parent / line.image_path).resolve()
        tags = tuple(a.annotation_label for a in line.classification_annotations)
        entry = _file_item(image, line.image_path, image.parent.name, limits)
        if isinstance(entry, Item):
            entry = replace(entry, tags=tags)
        elif not image.exists():
            entry = Rejection(label, f"image file {line.image_path} does not exist")
        yield entry


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(map(str, err['loc'])) or 'line'}: {err['msg']}"
    return str(exc)
