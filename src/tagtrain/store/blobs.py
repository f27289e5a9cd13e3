"""Content-addressed blob store.

:class:`BlobStore` is the interface; :class:`LocalBlobStore` keeps blobs on disk as
``<root>/ab/cd/<key>``. An S3-compatible store can implement the same interface later.

Writes are atomic: bytes go to a temp file in the target folder, then are renamed over the final
name, so a reader (or a process killed mid-write) never sees half a blob. Callers that record blobs
in the database call :meth:`BlobStore.flush` before committing: it makes every write so far durable
with one ``syncfs`` of the blob file system (one journal commit for a whole batch; an fsync per file
and folder cost ~10 ms an image here), so no row ever points at a blob the disk does not hold.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, cast

from tagtrain.errors import NotFound
from tagtrain.files import TEMP_PREFIX, write_atomic
from tagtrain.processes import pid_alive

_KEY = re.compile(r"^[0-9a-f]{64}$")
_TMP_PREFIX = TEMP_PREFIX


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def flush(self) -> None: ...


def _writer_alive(temp_name: str) -> bool:
    pid = temp_name.removeprefix(_TMP_PREFIX).split("-", 1)[0]
    if not pid.isdigit():
        return True  # not ours to judge by pid: the age rule decides
    return pid_alive(int(pid))


def sync_filesystem(path: Path) -> None:
    """Flush the file system holding ``path`` to disk: Linux ``syncfs``, else ``sync``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs is None or _syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return cast(Callable[[int], int], libc.syncfs)
    except (OSError, AttributeError):  # not Linux
        return None


_syncfs = _load_syncfs()


class LocalBlobStore:
    """Blobs on the local disk; keys are sha256 hex digests."""

    def __init__(self, root: Path, suffix: str = "", *, durable: bool = True) -> None:
        """``durable=False`` skips the fsyncs, for derived blobs (thumbnails) that can be made
        again from the original: they are still written atomically, never half-visible."""
        self.root = root
        self.suffix = suffix
        self.durable = durable
        self._written = threading.Event()  # set by writer threads, cleared by flush()

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise NotFound(f"no blob named {key!r}")
        return self.root / key[:2] / key[2:4] / f"{key}{self.suffix}"

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` unless it is there already (content-addressed: same bytes).
        A file of the wrong size under the name (a power cut before its flush) is written again."""
        final = self.path(key)
        with contextlib.suppress(FileNotFoundError):
            if final.stat().st_size == len(data):
                return
        final.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(final, data)  # durable later, for a whole batch, by flush()
        self._written.set()

    def flush(self) -> None:
        """Make every write finished before this call durable (a no-op when not durable)."""
        if not self.durable or not self._written.is_set():
            return
        self._written.clear()
        sync_filesystem(self.root)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {key} is missing from {self.root}") from exc

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def remove_stale_temp_files(self, older_than_s: float = 3600) -> int:
        """Delete temp files left by a process killed mid-write; returns how many went. A temp
        file whose writer is still alive is left alone unless it is older than ``older_than_s``."""
        cutoff = time.time() - older_than_s
        removed = 0
        for tmp in self.root.glob(f"*/*/{_TMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if not _writer_alive(tmp.name) or tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
        return removed
