"""The agent's client and capture sync against the real server: uvicorn on a loopback port over
a temp data folder, a machine registered through the API, real photos, real kills."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import logging
import random
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tagtrain.agent.capture_queue import CaptureMeta, CaptureQueue
from tagtrain.agent.server_link import Deployment, ServerLink, UploadOutcome
from tagtrain.agent.sync import CaptureSync
from tagtrain.errors import (
    BadInput,
    Forbidden,
    InvalidImage,
    TagtrainError,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from tagtrain.machine_config import AgentStatus, CameraStatus, QueueStatus
from tests.agent_live import (
    admin_token,
    api,
    free_port,
    live_server,
    machine_images,
    register_machine,
)
from tests.conftest import ROOT, trashnet_photos

MACHINE = "rig-1"
BUDGET = 10**9


@dataclass
class Live:
    url: str
    token: str  # an admin's API key
    machine_id: int
    key: str  # the machine key
    data: Path
    port: int


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    data, port = tmp_path / "data", free_port()
    token = admin_token(data)
    with live_server(data, port) as url:
        machine_id, key = register_machine(url, token, MACHINE)
        yield Live(url, token, machine_id, key, data, port)


def queue_photos(
    queue: CaptureQueue, n: int, *, start: int = 0
) -> dict[str, tuple[CaptureMeta, bytes]]:
    """Put ``n`` real photos with varied cameras, times and tags; keyed by their sha256."""
    queued: dict[str, tuple[CaptureMeta, bytes]] = {}
    base = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    for i, path in enumerate(trashnet_photos(start + n)[start:], start=start):
        jpeg = path.read_bytes()
        meta = CaptureMeta.new(
            f"cam{i % 2}",
            tags=("bin", path.parent.name) if i % 3 else (),
            captured_at=base + timedelta(seconds=i, microseconds=123),
        )
        queue.put(jpeg, meta)
        queued[hashlib.sha256(jpeg).hexdigest()] = (meta, jpeg)
    return queued


def assert_landed_once(live: Live, queued: dict[str, tuple[CaptureMeta, bytes]]) -> None:
    """Each queued photo is stored exactly once, as this machine's capture, with its camera,
    time and tags; and nothing else came from a machine."""
    images = machine_images(live.url, live.token)
    shas = [img["sha256"] for img in images]
    assert len(shas) == len(set(shas)), "a capture was stored twice"
    assert set(shas) == set(queued)
    for img in images:
        meta, _jpeg = queued[str(img["sha256"])]
        assert img["source"] == "machine"
        assert img["machine"] == MACHINE
        assert img["camera"] == meta.camera
        assert datetime.fromisoformat(str(img["captured_at"])) == meta.captured_at
        assert sorted(img["tags"]) == sorted(meta.tags)  # type: ignore[call-overload]


def agent_logs(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tagtrain.agent" and needle in r.getMessage()
    ]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- the client ---------------------------------------------------------------------------------


def test_link_reads_config_and_posts_status(live: Live) -> None:
    with ServerLink(live.url, live.key) as link:
        remote = link.fetch_config()
        assert (remote.machine_id, remote.machine_name) == (live.machine_id, MACHINE)
        assert remote.config.cameras == []
        assert remote.deployment is None
        status = AgentStatus(
            cameras=[CameraStatus(name="cam0", ok=True, fps=12.5)],
            queue=QueueStatus(pending=3, bytes=1000, dropped=1, synced=7),
            agent_version="test",
        )
        link.post_status(status)
    with api(live.url, live.token) as client:
        machine = client.get(f"/api/v1/machines/{live.machine_id}").raise_for_status().json()
    assert machine["online"] is True
    assert machine["status"]["queue"] == {"pending": 3, "bytes": 1000, "dropped": 1, "synced": 7}


@pytest.mark.slow
def test_link_downloads_only_the_deployed_package(
    live: Live, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tagtrain.settings import Settings
    from tagtrain.store import open_store
    from tests.deploy_helpers import seed_model

    store = open_store(Settings(data=live.data, worker=False))
    try:
        seed_model(store, Settings(data=live.data, worker=False), tmp_path_factory)
    finally:
        store.close()
    with api(live.url, live.token) as client:
        client.put(
            f"/api/v1/machines/{live.machine_id}/deployment",
            json={"model": "trash-tiny", "version": 1},
        ).raise_for_status()
    with ServerLink(live.url, live.key) as link:
        deployment = link.fetch_config().deployment
        assert deployment is not None
        assert (deployment.model, deployment.version, deployment.pinned) == ("trash-tiny", 1, True)
        package = link.download_package(deployment)
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            manifest = archive.read("manifest.json")
        assert hashlib.sha256(manifest).hexdigest() == deployment.manifest_sha256

        with pytest.raises(TooLarge, match="trash-tiny@1 is over"):
            link.download_package(deployment, max_bytes=1000)
        other = Deployment("trash-tiny", 2, True, "", "/api/v1/agent/package/trash-tiny/2.zip")
        with pytest.raises(Forbidden, match="not deployed to machine"):
            link.download_package(other)
        elsewhere = Deployment("trash-tiny", 1, True, "", "http://example.com/steal.zip")
        with pytest.raises(BadInput, match="refusing"):
            link.download_package(elsewhere)


def test_link_errors_name_what_to_do(live: Live, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with (
        ServerLink(nobody, live.key, timeout_s=2) as link,
        pytest.raises(Unavailable, match=f"cannot reach the server at {nobody}: .*will retry"),
    ):
        link.fetch_config()
    for key in ("tm_not-a-key", live.token):  # a made-up key, and a user's API key
        with (
            ServerLink(live.url, key) as link,
            pytest.raises(Unauthorized) as caught,
        ):
            link.fetch_config()
        assert caught.value.message == (
            f"the server at {live.url} refused this machine key (wrong or revoked); make a new "
            "key on the machine's page and restart the agent with it"
        )


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status in the server's ``status`` attribute."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"detail": f"told to answer {self.server.status}"}).encode()  # type: ignore[attr-defined]
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, Unavailable),
        (503, Unavailable),
        (429, Unavailable),
        (400, BadInput),
        (413, TooLarge),
        (422, InvalidImage),
        (403, Forbidden),
        (418, TagtrainError),
    ],
)
def test_link_maps_statuses(status: int, error: type[TagtrainError]) -> None:
    """A plain HTTP server answering ``status`` to everything: what the sync relies on."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.status = status  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with ServerLink(url, "tm_x") as link, pytest.raises(error) as caught:
            link.upload_capture(b"jpeg", CaptureMeta.new("cam"))
        assert type(caught.value) is error
        assert f"told to answer {status}" in caught.value.message
        assert isinstance(caught.value, BadInput) == (status in (400, 413, 422))
    finally:
        server.shutdown()
        server.server_close()


# -- sync -----------------------------------------------------------------------------------------


def test_sync_stores_each_capture_once_with_its_metadata(live: Live, tmp_path: Path) -> None:
    with (
        CaptureQueue(tmp_path / "q", budget_bytes=BUDGET) as queue,
        ServerLink(live.url, live.key) as link,
    ):
        queued = queue_photos(queue, 12)
        sync = CaptureSync(queue, link, batch=5)
        assert sync.drain_once() == 12
        assert sync.last_rate > 0
        assert queue.stats() == QueueStatus(pending=0, bytes=0, dropped=0, synced=12)
        assert not [p for p in (tmp_path / "q").glob("*.jpg")]
        assert_landed_once(live, queued)

        # The same bytes sent again (an agent killed before it forgot them) are stored once.
        meta, jpeg = next(iter(queued.values()))
        again = link.upload_capture(jpeg, CaptureMeta.new(meta.camera, meta.tags))
        assert again.existing is True
        assert_landed_once(live, queued)


def test_wrong_key_keeps_every_capture(
    live: Live, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        CaptureQueue(tmp_path / "q", budget_bytes=BUDGET) as queue,
        ServerLink(live.url, "tm_revoked-or-wrong") as link,
    ):
        queue_photos(queue, 3)
        sync = CaptureSync(queue, link, min_backoff_s=0.02, max_backoff_s=0.1)
        with pytest.raises(Unauthorized, match="refused this machine key"):
            sync.drain_once()
        with caplog.at_level(logging.INFO, logger="tagtrain.agent"):
            sync.start()
            time.sleep(0.6)  # several tries at the 0.1 s backoff ceiling
            sync.stop()
        stats = queue.stats()
        assert (stats.pending, stats.dropped, stats.synced) == (3, 0, 0)
        sentences = agent_logs(caplog, "cannot sync captures")
        assert len(sentences) == 1, sentences  # once for the outage, not once per try
        assert "(3 waiting): the server at" in sentences[0]
        assert "refused this machine key (wrong or revoked)" in sentences[0]
    assert machine_images(live.url, live.token) == []


def test_a_capture_the_server_refuses_is_dropped_and_the_rest_go_in(
    live: Live, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        CaptureQueue(tmp_path / "q", budget_bytes=BUDGET) as queue,
        ServerLink(live.url, live.key) as link,
    ):
        queued = queue_photos(queue, 2)
        bad = CaptureMeta.new("cam0")
        queue.put(b"this is not a JPEG at all", bad)
        queued |= queue_photos(queue, 2, start=2)
        with caplog.at_level(logging.WARNING, logger="tagtrain.agent"):
            assert CaptureSync(queue, link).drain_once() == 4
        assert queue.stats() == QueueStatus(pending=0, bytes=0, dropped=1, synced=4)
        (sentence,) = agent_logs(caplog, "dropped capture")
        assert sentence.startswith(f"dropped capture {bad.capture_id} from camera cam0: ")
        assert "the server refused it" in sentence
    assert_landed_once(live, queued)


@pytest.mark.slow
def test_outage_queues_backs_off_and_drains_when_the_server_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, port = tmp_path / "data", free_port()
    token = admin_token(data)
    with live_server(data, port) as url:
        machine_id, key = register_machine(url, token, MACHINE)
    n = 36
    with (
        CaptureQueue(tmp_path / "q", budget_bytes=BUDGET) as queue,
        ServerLink(url, key, timeout_s=5) as link,
        caplog.at_level(logging.INFO, logger="tagtrain.agent"),
    ):
        tries = Counting(link)
        sync = CaptureSync(queue, tries, min_backoff_s=0.05, max_backoff_s=0.4, idle_s=0.1)
        sync.start()
        try:
            queued = queue_photos(queue, n)  # the server is down: they wait on disk
            time.sleep(1.5)
            assert queue.stats().pending == n
            assert queue.stats().dropped == 0
            # Backing off 0.05, 0.1, 0.2, 0.4, 0.4 s... (less up to half for jitter): about
            # eight tries in 1.5 s, where a fixed 0.05 s pause would make thirty.
            assert 4 <= tries.count <= 12, tries.count
            outage = agent_logs(caplog, "cannot sync captures")
            assert len(outage) == 1, outage
            assert f"cannot reach the server at {url}" in outage[0]

            with live_server(data, port):  # back on the same address
                wait_for(lambda: queue.stats().pending == 0, 60, "the queue to drain")
                live = Live(url, token, machine_id, key, data, port)
                assert_landed_once(live, queued)
        finally:
            sync.stop()
        (recovered,) = agent_logs(caplog, "after an outage")
        assert recovered.startswith(f"synced {n} captures after an outage of ")
        assert queue.stats() == QueueStatus(pending=0, bytes=0, dropped=0, synced=n)
        print(f"\nsync throughput after an outage: {sync.last_rate:.1f} captures/s ({n} photos)")


class Counting:
    """The real link, counting the uploads tried."""

    def __init__(self, link: ServerLink) -> None:
        self.link, self.count = link, 0

    def upload_capture(self, jpeg: bytes, meta: CaptureMeta) -> UploadOutcome:
        self.count += 1
        return self.link.upload_capture(jpeg, meta)


def run_sync(queue: Path, live: Live, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.agent_sync_main", str(queue), live.url, live.key, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.slow
def test_kill_9_mid_sync_then_restart_sends_each_capture_once(live: Live, tmp_path: Path) -> None:
    root = tmp_path / "q"
    n = 24
    with CaptureQueue(root, budget_bytes=BUDGET) as queue:
        queued = queue_photos(queue, n)

    # 1. Killed right after the server answered for the 5th capture, before the queue forgot it.
    proc = run_sync(root, live, "5")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert out.splitlines()[-1].startswith("uploaded 5 ")

    # 2. Killed from outside at a random moment while it uploads.
    proc = run_sync(root, live)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == "uploaded 1 existing=True\n"  # the 5th again: the server had it already
    time.sleep(random.uniform(0.05, 0.4))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    # 3. A clean run sends the rest.
    proc = run_sync(root, live)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    stats = QueueStatus.model_validate_json(out.splitlines()[-1])
    assert (stats.pending, stats.bytes, stats.dropped) == (0, 0, 0)
    # A kill between forgetting a capture and saving the counter can cost one count.
    assert n - 1 <= stats.synced <= n
    assert_landed_once(live, queued)
    assert [p.name for p in root.iterdir() if p.name not in {".lock", "counters.json"}] == []
