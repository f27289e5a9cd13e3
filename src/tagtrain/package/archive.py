"""A package as one ``.zip`` (how the server hands it to machines) and back (no torch).

The archive holds the package's files at its top level, nothing else. :func:`zip_package` checks
the folder first, so a tampered package is never handed out; :func:`extract_package` accepts only
the package's own plain file names (no folders, links or ``..``), unpacks beside the destination,
verifies the result like any package folder and only then moves it into place.
"""

from __future__ import annotations

import io
import shutil
import uuid
import zipfile
from pathlib import Path

from tagtrain.errors import PackageError, UnsafeArchive
from tagtrain.package.manifest import MANIFEST, PACKAGE_FILES
from tagtrain.package.read import Package, read_package

ARCHIVE_NAMES = frozenset((*PACKAGE_FILES, MANIFEST))
MAX_UNPACKED_BYTES = 2_000_000_000
_STORED_SUFFIXES = (".onnx", ".npz")  # already dense: deflate gains little and costs seconds


def zip_package(root: str | Path) -> bytes:
    """The verified package folder ``root`` as the bytes of a ``.zip``."""
    package = read_package(root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(ARCHIVE_NAMES):
            stored = name.endswith(_STORED_SUFFIXES)
            archive.write(
                package.path(name),
                arcname=name,
                compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
            )
    return buffer.getvalue()


def extract_package(data: bytes | Path, dest: str | Path) -> Package:
    """Unpack a package ``.zip`` (bytes or a file) into the new folder ``dest`` and verify it."""
    dest = Path(dest)
    if dest.exists():
        raise PackageError(str(dest), "already exists; extract a package into a new folder")
    source = io.BytesIO(data) if isinstance(data, bytes) else Path(data)
    name = "the package archive" if isinstance(data, bytes) else str(data)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.unzip-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        try:
            with zipfile.ZipFile(source) as archive:
                _unpack(archive, staging, name)
        except zipfile.BadZipFile as exc:
            raise PackageError(name, f"is not a zip archive ({exc})") from exc
        read_package(staging)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return read_package(dest)


def _unpack(archive: zipfile.ZipFile, staging: Path, name: str) -> None:
    infos = archive.infolist()
    unexpected = sorted(i.filename for i in infos if i.filename not in ARCHIVE_NAMES)
    if unexpected:
        raise UnsafeArchive(
            f"{name}: holds {', '.join(unexpected[:5])}, which a model package does not; "
            f"it may hold only {', '.join(sorted(ARCHIVE_NAMES))}"
        )
    if len({i.filename for i in infos}) != len(infos):
        raise UnsafeArchive(f"{name}: lists a file twice")
    if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
        raise UnsafeArchive(f"{name}: unpacks to more than {MAX_UNPACKED_BYTES:,} bytes")
    for info in infos:
        with archive.open(info) as src, (staging / info.filename).open("wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
