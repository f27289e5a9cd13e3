"""The agent's capture queue: real files in a temp folder, real threads and a real kill -9."""

from __future__ import annotations

import errno
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tagtrain.agent.capture_queue import CaptureMeta, CaptureQueue
from tagtrain.errors import BadInput, Conflict
from tests.conftest import ROOT, trashnet_photos

MB = 1_000_000


def meta(i: int = 0, camera: str = "cam") -> CaptureMeta:
    return CaptureMeta.new(camera, tags=(f"t{i}",))


def photos(n: int) -> list[bytes]:
    return [p.read_bytes() for p in trashnet_photos(n)]


def files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name not in {".lock", "counters.json"})


def test_meta_is_checked_and_kept_in_utc() -> None:
    here = timezone(timedelta(hours=2))
    m = CaptureMeta("a" * 32, "cam-1", datetime(2026, 5, 1, 14, 0, tzinfo=here), ("x",))
    assert m.captured_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert m.captured_at.utcoffset() == timedelta(0)
    assert len(CaptureMeta.new("cam").capture_id) == 32
    with pytest.raises(BadInput, match="time zone"):
        CaptureMeta("a" * 32, "cam", datetime(2026, 5, 1), ())
    with pytest.raises(BadInput, match="32 lowercase hex"):
        CaptureMeta("xyz", "cam", datetime.now(UTC), ())
    with pytest.raises(BadInput, match="camera name"):
        CaptureMeta("a" * 32, "no spaces", datetime.now(UTC), ())


def test_put_pending_done_in_order(tmp_path: Path) -> None:
    jpegs = photos(5)
    metas = [meta(i) for i in range(5)]
    with CaptureQueue(tmp_path / "q", budget_bytes=100 * MB) as queue:
        for jpeg, m in zip(jpegs, metas, strict=True):
            queue.put(jpeg, m)
        first = queue.pending(3)
        assert [item.meta for item in first] == metas[:3]
        assert [item.read() for item in first] == jpegs[:3]
        stats = queue.stats()
        assert (stats.pending, stats.dropped, stats.synced) == (5, 0, 0)
        assert stats.bytes > sum(len(j) for j in jpegs)  # the sidecars count too

        queue.done(first[0])
        queue.done(first[0])  # a second done of the same capture changes nothing
        queue.done(first[1])
        assert [item.meta for item in queue.pending(10)] == metas[2:]
        stats = queue.stats()
        assert (stats.pending, stats.synced) == (3, 2)
        assert len(files(tmp_path / "q")) == 6  # a .jpg and a .json for each of the three


def test_durable_across_reopen_with_counters(tmp_path: Path) -> None:
    root = tmp_path / "q"
    jpegs = photos(3)
    metas = [meta(i) for i in range(3)]
    with CaptureQueue(root, budget_bytes=100 * MB) as queue:
        for jpeg, m in zip(jpegs, metas, strict=True):
            queue.put(jpeg, m)
        queue.done(queue.pending(1)[0])
        before = queue.stats()
    with CaptureQueue(root, budget_bytes=100 * MB) as queue:
        assert queue.stats() == before
        items = queue.pending(10)
        assert [i.meta for i in items] == metas[1:]
        assert [i.read() for i in items] == jpegs[1:]
        # New captures go after the old ones, even with a clock that went back.
        queue.put(b"late", CaptureMeta.new("cam", captured_at=datetime(2001, 1, 1, tzinfo=UTC)))
        assert queue.pending(10)[-1].read() == b"late"


def test_one_process_per_queue_folder(tmp_path: Path) -> None:
    with (
        CaptureQueue(tmp_path, budget_bytes=MB),
        pytest.raises(Conflict, match="another process is using the capture queue"),
    ):
        CaptureQueue(tmp_path, budget_bytes=MB)
    CaptureQueue(tmp_path, budget_bytes=MB).close()  # free again once closed


def test_leftovers_of_killed_writes_are_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "q"
    jpeg = photos(1)[0]
    with CaptureQueue(root, budget_bytes=100 * MB) as queue:
        queue.put(jpeg, meta(0))
        whole = files(root)
    # What a put killed at each step leaves: a temp file of a dead writer (pid beyond pid_max),
    # a JPEG renamed but no sidecar yet; and a sidecar whose JPEG is short (never written by
    # us, but a disk may hand it back after a power cut).
    (root / ".tmp-999999999-abcd").write_bytes(jpeg[:100])
    (root / f"{'1' * 20}-{'b' * 32}.jpg").write_bytes(jpeg)
    short = CaptureMeta.new("cam")
    (root / f"{'2' * 20}-{short.capture_id}.json").write_bytes(short.to_json(len(jpeg)))
    (root / f"{'2' * 20}-{short.capture_id}.jpg").write_bytes(jpeg[:10])
    # A temp file of a live writer (this process) that is new: not ours to remove.
    live = root / f".tmp-{os.getpid()}-live"
    live.write_bytes(b"writing")

    with CaptureQueue(root, budget_bytes=100 * MB) as queue:
        assert [i.read() for i in queue.pending(10)] == [jpeg]
        assert queue.stats().pending == 1
        assert queue.stats().dropped == 1  # the damaged one
    assert files(root) == sorted([*whole, live.name])


def test_budget_drops_oldest_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    jpeg = b"\xff\xd8" + b"x" * 10_000
    with CaptureQueue(tmp_path / "q", budget_bytes=35_000) as queue:
        metas = [meta(i) for i in range(5)]
        with caplog.at_level(logging.WARNING, logger="tagtrain.agent"):
            for m in metas:
                queue.put(jpeg, m)
        assert [i.meta for i in queue.pending(10)] == metas[2:]  # three fit
        stats = queue.stats()
        assert (stats.pending, stats.dropped) == (3, 2)
        assert stats.bytes <= 35_000
        sentences = [r.getMessage() for r in caplog.records]
        assert len(sentences) == 2
        assert "is over its budget of 35.0 kB; dropped the 1 oldest captures (10." in sentences[0]

        caplog.clear()
        huge = meta(9)
        queue.put(b"x" * 40_000, huge)  # bigger than the whole budget: only it goes
        assert queue.stats().dropped == 3
        assert queue.stats().pending == 3
        assert huge.capture_id in caplog.records[0].getMessage()
        assert "do not fit in the capture queue's budget" in caplog.records[0].getMessage()
    with CaptureQueue(tmp_path / "q", budget_bytes=35_000) as queue:
        assert queue.stats().dropped == 3  # the counter outlives the process


def test_full_disk_drops_the_new_capture_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The kernel reports a full disk at write or, with delayed allocation, at fsync. No small
    tmpfs here, so fsync fails on purpose: what is tested is the queue's reaction to it."""
    root = tmp_path / "q"
    jpeg = photos(1)[0]
    real_fsync = os.fsync

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with CaptureQueue(root, budget_bytes=100 * MB) as queue:
        queue.put(jpeg, meta(0))
        before = files(root)
        monkeypatch.setattr(os, "fsync", full)
        with caplog.at_level(logging.WARNING, logger="tagtrain.agent"):
            for i in range(3):
                queue.put(jpeg, meta(i))  # the camera loop goes on: no exception
            assert files(root) == before  # no temp file, no half capture
            stats = queue.stats()
            assert (stats.pending, stats.dropped) == (1, 3)
            assert len(caplog.records) == 1  # one sentence for the spell, not one per frame
            assert "the disk is full" in caplog.records[0].getMessage()
            assert str(root) in caplog.records[0].getMessage()

            monkeypatch.setattr(os, "fsync", real_fsync)
            queue.put(jpeg, meta(4))
        assert queue.stats().pending == 2
        assert "can write again; 3 captures were dropped" in caplog.records[-1].getMessage()


def test_concurrent_puts_while_syncing(tmp_path: Path) -> None:
    """Eight camera threads put while a sync thread takes captures: none lost or doubled, and
    each camera's captures come out in the order it put them."""
    threads_n, per_thread = 8, 25
    with CaptureQueue(tmp_path / "q", budget_bytes=100 * MB) as queue:
        taken: list[CaptureMeta] = []
        stop = threading.Event()

        def camera(c: int) -> None:
            for i in range(per_thread):
                queue.put(f"{c}-{i}".encode() * 50, meta(i, camera=f"cam{c}"))

        def sync() -> None:
            while not stop.is_set() or queue.stats().pending:
                for item in queue.pending(7):
                    assert item.read() == f"{item.meta.camera[3:]}-{item.meta.tags[0][1:]}".encode() * 50  # fmt: skip
                    taken.append(item.meta)
                    queue.done(item)

        syncer = threading.Thread(target=sync)
        syncer.start()
        cameras = [threading.Thread(target=camera, args=(c,)) for c in range(threads_n)]
        for t in cameras:
            t.start()
        for t in cameras:
            t.join()
        stop.set()
        syncer.join(timeout=30)
        assert len(taken) == threads_n * per_thread
        assert len({m.capture_id for m in taken}) == len(taken)
        for c in range(threads_n):
            order = [int(m.tags[0][1:]) for m in taken if m.camera == f"cam{c}"]
            assert order == list(range(per_thread))
        stats = queue.stats()
        assert (stats.pending, stats.bytes, stats.synced) == (0, 0, len(taken))
    with CaptureQueue(tmp_path / "q", budget_bytes=100 * MB) as queue:
        assert queue.stats() == stats  # the counters file holds the last numbers, not older ones


PUTTER = """
import sys
from pathlib import Path
from tagtrain.agent.capture_queue import CaptureMeta, CaptureQueue
photos = [Path(p).read_bytes() for p in sys.argv[2:]]
queue = CaptureQueue(Path(sys.argv[1]), budget_bytes=10**9)
i = 0
while True:
    queue.put(photos[i % len(photos)], CaptureMeta.new("cam", tags=(str(i),)))
    i += 1
    print(i, flush=True)
"""


@pytest.mark.slow
def test_kill_9_mid_put_leaves_only_whole_captures(tmp_path: Path) -> None:
    """A process putting captures is killed at random moments; every capture whose put returned
    is there in full, and nothing half-written is ever listed."""
    paths = trashnet_photos(6)
    jpegs = [p.read_bytes() for p in paths]
    root = tmp_path / "q"
    rng = random.Random()
    for _trial in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", PUTTER, str(root), *map(str, paths)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # it has started putting
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        printed = proc.stdout.read().split()
        proc.wait()
        returned = int(printed[-1]) if printed else 1  # puts that returned before the kill
        with CaptureQueue(root, budget_bytes=10**9) as queue:
            items = queue.pending(100_000)
            # Every put that returned survived; at most one more finished unannounced.
            assert returned <= len(items) <= returned + 1
            for item in items:
                assert item.read() == jpegs[int(item.meta.tags[0]) % len(jpegs)]
            assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
            for item in items:  # the next trial starts from an empty queue
                queue.done(item)
