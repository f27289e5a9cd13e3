"""Content-addressed blob store.

:class:`BlobStore` is the interface; :class:`LocalBlobStore` keeps blobs on disk as
``<root>/ab/cd/<key>``. An S3-compatible store can implement the same interface later.

Writes are atomic: bytes go to a temp file in the target folder, are fsynced, then renamed over the
final name, so a reader (or a process killed mid-write) never sees half a blob. Callers that record
blobs in the database call :meth:`BlobStore.flush` before committing, so no row ever points at a
blob whose rename the file system has not made durable.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

from tagtrain.errors import NotFound

_KEY = re.compile(r"^[0-9a-f]{64}$")
_TMP_PREFIX = ".tmp-"


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def flush(self) -> None: ...


class LocalBlobStore:
    """Blobs on the local disk; keys are sha256 hex digests."""

    def __init__(self, root: Path, suffix: str = "", *, durable: bool = True) -> None:
        """``durable=False`` skips the fsyncs, for derived blobs (thumbnails) that can be made
        again from the original: they are still written atomically, never half-visible."""
        self.root = root
        self.suffix = suffix
        self.durable = durable
        self._dirty_dirs: set[Path] = set()
        self._lock = threading.Lock()  # writer threads add folders while flush() drains them

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise NotFound(f"no blob named {key!r}")
        return self.root / key[:2] / key[2:4] / f"{key}{self.suffix}"

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` unless it is there already (content-addressed: same bytes)."""
        final = self.path(key)
        if final.is_file():
            return
        if not final.parent.is_dir():
            final.parent.mkdir(parents=True, exist_ok=True)
            if self.durable:  # new folders must reach the disk too: fsync their parents
                self._mark_dirty(final.parent.parent, self.root)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if self.durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self.durable:
            self._mark_dirty(final.parent)

    def _mark_dirty(self, *folders: Path) -> None:
        with self._lock:
            self._dirty_dirs.update(folders)

    def flush(self) -> None:
        """Make every rename finished before this call durable (one fsync per touched folder)."""
        with self._lock:
            folders, self._dirty_dirs = self._dirty_dirs, set()
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {key} is missing from {self.root}") from exc

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def remove_stale_temp_files(self, older_than_s: float = 3600) -> int:
        """Delete temp files left by a process killed mid-write; returns how many went. Only old
        ones: a younger temp file may belong to an import running right now."""
        cutoff = time.time() - older_than_s
        removed = 0
        for tmp in self.root.glob(f"*/*/{_TMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
        return removed
