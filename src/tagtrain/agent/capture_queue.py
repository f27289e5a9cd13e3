"""The capture queue: frames a machine kept, waiting on its disk until the server has them.

A queue is a folder. Each capture is two files named by a sequence number (the put order) and
its capture id: ``<seq>-<id>.jpg`` and its metadata sidecar ``<seq>-<id>.json``. Both are written
to a temp file carrying the writer's pid, fsynced and renamed; the sidecar goes last, so a capture
whose sidecar exists is whole, and a process killed mid-put leaves only files that the next open
removes. The dropped/synced counters live in ``counters.json``, replaced atomically.

One process owns a queue folder at a time (an advisory lock says so), camera threads ``put`` and
the sync thread reads ``pending`` and calls ``done``/``drop``; every method is thread-safe.
A put never raises into the camera loop for a full disk or an over-budget queue: it drops and
counts instead, since losing a frame is better than stopping the camera.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import heapq
import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tagtrain.errors import BadInput, Conflict
from tagtrain.files import TEMP_PREFIX, write_atomic
from tagtrain.machine_config import NAME_PATTERN, QueueStatus
from tagtrain.processes import pid_alive

log = logging.getLogger("tagtrain.agent")

_TMP_PREFIX = TEMP_PREFIX
_ITEM = re.compile(r"^(\d{20})-([0-9a-f]{32})\.(jpg|json)$")
_CAPTURE_ID = re.compile(r"^[0-9a-f]{32}$")
_COUNTERS = "counters.json"
_LOCK = ".lock"
_STALE_TEMP_S = 3600.0


@dataclass(frozen=True)
class CaptureMeta:
    """What the server needs to store a capture: who took it, when, and its tags."""

    capture_id: str
    camera: str
    captured_at: datetime
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _CAPTURE_ID.match(self.capture_id):
            raise BadInput(f"capture id {self.capture_id!r} is not 32 lowercase hex digits")
        if not re.match(NAME_PATTERN, self.camera):
            raise BadInput(f"camera name {self.camera!r} is not letters, digits, _ . - (1-64)")
        if self.captured_at.tzinfo is None:
            raise BadInput(f"capture time {self.captured_at} has no time zone")
        # Normalised here so every sidecar and upload carries UTC, whatever the camera clock said.
        object.__setattr__(self, "captured_at", self.captured_at.astimezone(UTC))
        object.__setattr__(self, "tags", tuple(self.tags))

    @classmethod
    def new(
        cls, camera: str, tags: tuple[str, ...] = (), captured_at: datetime | None = None
    ) -> CaptureMeta:
        """A fresh capture id, taken now unless ``captured_at`` says when."""
        return cls(uuid.uuid4().hex, camera, captured_at or datetime.now(UTC), tuple(tags))

    def to_json(self, size: int) -> bytes:
        return json.dumps(
            {
                "capture_id": self.capture_id,
                "camera": self.camera,
                "captured_at": self.captured_at.isoformat(),
                "tags": list(self.tags),
                "size": size,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> tuple[CaptureMeta, int]:
        """The meta and the JPEG size a sidecar records; ValueError/KeyError/TypeError if bad."""
        raw = json.loads(data)
        meta = cls(
            raw["capture_id"],
            raw["camera"],
            datetime.fromisoformat(raw["captured_at"]),
            tuple(str(t) for t in raw["tags"]),
        )
        return meta, int(raw["size"])


@dataclass(frozen=True)
class QueuedCapture:
    """A capture waiting in the queue; ``key`` orders captures oldest first."""

    key: str
    meta: CaptureMeta
    path: Path = field(compare=False)

    def read(self) -> bytes:
        """The JPEG; FileNotFoundError if it was dropped since it was listed."""
        return self.path.read_bytes()


class CaptureQueue:
    """A durable queue of captures in ``root``, kept under ``budget_bytes`` by dropping the
    oldest captures first."""

    def __init__(self, root: Path, *, budget_bytes: int) -> None:
        if budget_bytes <= 0:
            raise BadInput(f"the capture queue budget must be above 0 bytes, got {budget_bytes}")
        self.root = root
        self.budget_bytes = budget_bytes
        root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_folder(root)
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # counters.json writes, newest snapshot last
        self._items: dict[str, int] = {}  # key -> bytes on disk (JPEG + sidecar)
        self._bytes = 0
        self._reserved = 0  # bytes of puts being written now
        self._last_seq = 0
        self._disk_full_drops = 0  # captures lost in the current full-disk spell
        self._dropped, self._synced = self._read_counters()
        self._recover()

    # -- the camera side ---------------------------------------------------------------------

    def put(self, jpeg: bytes, meta: CaptureMeta) -> None:
        """Queue a capture; durable when this returns. Never raises for a full disk or budget:
        the capture (or older ones) is dropped, counted and logged instead."""
        sidecar = meta.to_json(len(jpeg))
        size = len(jpeg) + len(sidecar)
        key = self._reserve(size, meta)
        if key is None:
            return
        try:
            self._write(key, jpeg, sidecar)
        except OSError as exc:
            self._unreserve(size)
            self._write_failed(meta, exc)
            return
        with self._lock:
            self._reserved -= size
            self._items[key] = size
            self._bytes += size
            recovered, self._disk_full_drops = self._disk_full_drops, 0
        if recovered:
            log.warning(
                "the capture queue at %s can write again; %d captures were dropped while it "
                "could not",
                self.root,
                recovered,
            )

    # -- the sync side -----------------------------------------------------------------------

    def pending(self, limit: int) -> list[QueuedCapture]:
        """Up to ``limit`` captures, oldest first."""
        with self._lock:
            keys = heapq.nsmallest(limit, self._items)
        return [item for key in keys if (item := self._load(key)) is not None]

    def done(self, item: QueuedCapture) -> None:
        """The server has ``item``: forget it and count it synced. A no-op for a capture the
        budget dropped meanwhile (it was counted as dropped then)."""
        if self._remove(item.key):
            with self._lock:
                self._synced += 1
            self._save_counters()

    def drop(self, item: QueuedCapture, reason: str) -> None:
        """Forget ``item`` without sending it (the server will never take it) and count it."""
        if self._remove(item.key):
            with self._lock:
                self._dropped += 1
            self._save_counters()
            log.warning(
                "dropped capture %s from camera %s: %s",
                item.meta.capture_id,
                item.meta.camera,
                reason,
            )

    def stats(self) -> QueueStatus:
        with self._lock:
            return QueueStatus(
                pending=len(self._items),
                bytes=self._bytes,
                dropped=self._dropped,
                synced=self._synced,
            )

    def close(self) -> None:
        """Release the folder for another process (a restarted agent)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> CaptureQueue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- budget ------------------------------------------------------------------------------

    def _reserve(self, size: int, meta: CaptureMeta) -> str | None:
        """Make room for ``size`` bytes and claim a key; None when the capture cannot fit."""
        with self._lock:
            if size + self._reserved > self.budget_bytes:
                self._dropped += 1
                key, evicted = None, []
            else:
                evicted = self._evict_for(size)
                self._reserved += size
                self._last_seq = max(time.time_ns(), self._last_seq + 1)
                key = f"{self._last_seq:020d}-{meta.capture_id}"
        if key is None:
            self._save_counters()
            log.warning(
                "dropped capture %s from camera %s: its %s do not fit in the capture queue's "
                "budget of %s",
                meta.capture_id,
                meta.camera,
                _size(size),
                _size(self.budget_bytes),
            )
        elif evicted:
            self._save_counters()
            self._log_evicted(evicted)
        return key

    def _evict_for(self, size: int) -> list[tuple[str, int]]:
        """Drop the oldest captures until ``size`` more bytes fit; called with the lock held."""
        evicted: list[tuple[str, int]] = []
        while self._items and self._bytes + self._reserved + size > self.budget_bytes:
            key = min(self._items)
            evicted.append((key, self._items.pop(key)))
            self._bytes -= evicted[-1][1]
            self._dropped += 1
            for suffix in (".json", ".jpg"):  # sidecar first: a JPEG alone is ignored
                (self.root / f"{key}{suffix}").unlink(missing_ok=True)
        return evicted

    def _log_evicted(self, evicted: list[tuple[str, int]]) -> None:
        log.warning(
            "the capture queue at %s is over its budget of %s; dropped the %d oldest "
            "captures (%s) to make room for new ones",
            self.root,
            _size(self.budget_bytes),
            len(evicted),
            _size(sum(size for _key, size in evicted)),
        )

    def _unreserve(self, size: int) -> None:
        with self._lock:
            self._reserved -= size
            self._dropped += 1
            self._disk_full_drops += 1

    def _write_failed(self, meta: CaptureMeta, exc: OSError) -> None:
        self._save_counters()
        if self._disk_full_drops > 1:
            return  # one sentence per spell of failures, not one per frame
        why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        log.error(
            "cannot write to the capture queue at %s (%s); dropping new captures (first: %s "
            "from camera %s) until it can",
            self.root,
            why,
            meta.capture_id,
            meta.camera,
        )

    # -- files -------------------------------------------------------------------------------

    def _write(self, key: str, jpeg: bytes, sidecar: bytes) -> None:
        # The JPEG first, the sidecar last: a sidecar on disk means its capture is whole.
        write_atomic(self.root / f"{key}.jpg", jpeg, durable=True)
        try:
            write_atomic(self.root / f"{key}.json", sidecar, durable=True)
            _fsync_dir(self.root)
        except OSError:
            for suffix in (".json", ".jpg"):
                (self.root / f"{key}{suffix}").unlink(missing_ok=True)
            raise

    def _load(self, key: str) -> QueuedCapture | None:
        try:
            meta, _size = CaptureMeta.from_json((self.root / f"{key}.json").read_bytes())
        except FileNotFoundError:
            return None  # dropped by the budget since it was listed
        return QueuedCapture(key, meta, self.root / f"{key}.jpg")

    def _remove(self, key: str) -> bool:
        with self._lock:
            size = self._items.pop(key, None)
            if size is None:
                return False
            self._bytes -= size
        for suffix in (".json", ".jpg"):
            (self.root / f"{key}{suffix}").unlink(missing_ok=True)
        return True

    def _recover(self) -> None:
        """Index the whole captures on disk; remove what a killed put or done left behind."""
        names = {p.name for p in self.root.iterdir()}
        for name in names:
            if name.startswith(_TMP_PREFIX):
                _remove_stale_temp(self.root / name)
        corrupt = 0
        for name in sorted(names):
            match = _ITEM.match(name)
            if match is None or match[3] != "json":
                continue
            key = name.removesuffix(".json")
            size = self._check(key)
            if size is None:
                corrupt += 1
                continue
            self._items[key] = size
            self._bytes += size
            self._last_seq = max(self._last_seq, int(match[1]))
        self._remove_orphans(names)
        if corrupt:
            self._dropped += corrupt
            self._save_counters()
            log.warning("dropped %d damaged captures from the queue at %s", corrupt, self.root)

    def _check(self, key: str) -> int | None:
        """Bytes of a whole capture, or None (both files removed) for a damaged one."""
        sidecar, jpeg = self.root / f"{key}.json", self.root / f"{key}.jpg"
        try:
            data = sidecar.read_bytes()
            _meta, size = CaptureMeta.from_json(data)
            if jpeg.stat().st_size == size:
                return size + len(data)
        except (OSError, ValueError, KeyError, TypeError, BadInput):
            pass
        sidecar.unlink(missing_ok=True)
        jpeg.unlink(missing_ok=True)
        return None

    def _remove_orphans(self, names: set[str]) -> None:
        """A JPEG without its sidecar: a put killed before it finished, or a done killed
        half-way. Neither was promised to anyone, so it goes."""
        for name in names:
            match = _ITEM.match(name)
            if match and match[3] == "jpg" and name.removesuffix(".jpg") not in self._items:
                (self.root / name).unlink(missing_ok=True)

    # -- counters ----------------------------------------------------------------------------

    def _read_counters(self) -> tuple[int, int]:
        try:
            raw: Any = json.loads((self.root / _COUNTERS).read_bytes())
            return int(raw["dropped"]), int(raw["synced"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0

    def _save_counters(self) -> None:
        """Replace counters.json atomically. No fsync: these are statistics, and losing the
        last few to a power cut is cheaper than an fsync per synced capture."""
        with self._save_lock:
            with self._lock:
                data = json.dumps({"dropped": self._dropped, "synced": self._synced}).encode()
            with contextlib.suppress(OSError):  # a full disk must not stop the queue
                write_atomic(self.root / _COUNTERS, data, durable=False)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _lock_folder(root: Path) -> int:
    fd = os.open(root / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Conflict(
            f"another process is using the capture queue at {root}; stop the other agent "
            "or give this one its own data folder"
        ) from None
    return fd


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temp(path: Path) -> None:
    pid = path.name.removeprefix(_TMP_PREFIX).split("-", 1)[0]
    with contextlib.suppress(FileNotFoundError):
        if not (pid.isdigit() and pid_alive(int(pid))) or (
            path.stat().st_mtime < time.time() - _STALE_TEMP_S
        ):
            path.unlink()
