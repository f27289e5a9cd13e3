"""The agent against the real server on loopback: register a machine, configure a camera and a
capture band, deploy "latest", watch status and captures arrive, roll back by pinning, pick up a
new version by itself, refuse a tampered package while serving the last good one, keep serving
when the server goes away or the key is revoked, and relay its live view through the server only
while someone watches."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tagtrain.agent.connected import ConnectedAgent, ConnectedOptions
from tagtrain.agent.deployer import Deployer
from tagtrain.agent.model_slot import ModelSlot
from tagtrain.agent.server_link import Deployment
from tagtrain.client import VisionClient
from tagtrain.package import zip_package
from tagtrain.server import live_frames
from tagtrain.settings import Settings
from tagtrain.store import open_store
from tests.agent_live import admin_token, api, free_port, live_server, register_machine
from tests.camera_sources import image_folder
from tests.conftest import trashnet_photos
from tests.deploy_helpers import record_version
from tests.packages import write_tiny
from tests.running import eventually

pytestmark = pytest.mark.slow
MODEL = "trash"


@dataclass
class Rig:
    data: Path
    url: str
    port: int
    token: str
    machine_id: int
    key: str
    agent: ConnectedAgent
    thread: threading.Thread

    def machine(self) -> dict[str, Any]:
        with api(self.url, self.token) as client:
            response = client.get(f"/api/v1/machines/{self.machine_id}")
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

    def put(self, path: str, body: Any) -> None:
        with api(self.url, self.token) as client:
            client.put(f"/api/v1/machines/{self.machine_id}/{path}", json=body).raise_for_status()

    def serving(self) -> str | None:
        status = self.machine()["status"]
        return None if status is None else status["model"]


def add_version(data: Path, version: int, *, tamper: bool = False) -> None:
    """A model version as a training job leaves it: a real package under the data folder."""
    relative = f"packages/{MODEL}/{version}"
    write_tiny(data / relative, name=MODEL, version=version)
    if tamper:  # changed after it was written: its sha256 no longer matches the manifest
        with open(data / relative / "model.onnx", "ab") as f:
            f.write(b"\0tampered")
    store = open_store(Settings(data=data, worker=False))
    try:
        record_version(store, MODEL, version, relative)
    finally:
        store.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    data = tmp_path / "server"
    token = admin_token(data)
    for version in (1, 2):
        add_version(data, version)
    port = free_port()
    with live_server(data, port) as url:
        machine_id, key = register_machine(url, token)
        camera = {
            "name": "bench",
            "source": str(image_folder(tmp_path / "frames", 6)),
            "max_fps": 20,
            "capture": {"frequency_hz": 5, "tags": ["from-rig"], "max_confidence": 1.0},
        }
        with api(url, token) as client:
            base = f"/api/v1/machines/{machine_id}"
            client.put(f"{base}/config", json={"cameras": [camera]}).raise_for_status()
            body = {"model": MODEL, "version": None}
            client.put(f"{base}/deployment", json=body).raise_for_status()
        options = ConnectedOptions(
            server=url, machine_key=key, state=tmp_path / "agent", listen="127.0.0.1:0", poll_s=0.2
        )
        agent = ConnectedAgent(options)
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        yield Rig(data, url, port, token, machine_id, key, agent, thread)
        agent.stop()
        thread.join(timeout=30)


def _captured(rig: Rig) -> list[dict[str, Any]]:
    with api(rig.url, rig.token) as client:
        page = client.get("/api/v1/images", params={"tag": "from-rig", "limit": 500})
        page.raise_for_status()
        items: list[dict[str, Any]] = page.json()["items"]
    assert len(items) >= 3, f"only {len(items)} captures so far"
    return items


def test_deploy_capture_rollback_and_new_versions(rig: Rig) -> None:
    assert eventually(lambda: rig.serving() == f"{MODEL}@2" or None, 60)
    machine = rig.machine()
    assert machine["online"] is True
    assert machine["status"]["stream_url"].startswith("http://127.0.0.1:")
    eventually(lambda: rig.machine()["status"]["cameras"][0]["fps"] > 0 or None, 30)

    captures = eventually(lambda: _captured(rig), 60)
    assert {c["source"] for c in captures} == {"machine"}
    assert {c["camera"] for c in captures} == {"bench"}
    assert all(c["machine"] == "rig-1" and c["captured_at"] for c in captures)

    rig.put("deployment", {"model": MODEL, "version": 1})  # rollback: one call, no restart
    assert eventually(lambda: rig.serving() == f"{MODEL}@1" or None, 60)

    rig.put("deployment", {"model": MODEL, "version": None})  # follow latest again
    add_version(rig.data, 3)
    assert eventually(lambda: rig.serving() == f"{MODEL}@3" or None, 60)

    add_version(rig.data, 4, tamper=True)
    errors = eventually(lambda: _errors_naming(rig, f"{MODEL}@4"), 60)
    assert "still serving trash@3" in errors
    assert rig.serving() == f"{MODEL}@3"


def _errors_naming(rig: Rig, ref: str) -> str:
    errors = " ".join(rig.machine()["status"]["errors"])
    assert f"could not switch to {ref}" in errors, errors
    return errors


def test_server_away_and_revoked_key_keep_the_machine_serving(rig: Rig, tmp_path: Path) -> None:
    assert eventually(lambda: rig.serving() == f"{MODEL}@2" or None, 60)
    local = rig.agent.machine.http.url
    photo = trashnet_photos(1)[0].read_bytes()
    with VisionClient(local, "classifier") as vision:
        before = vision.get_classifications(photo, 3)
        with api(rig.url, rig.token) as client:
            client.delete(f"/api/v1/machines/{rig.machine_id}/key").raise_for_status()
        assert eventually(lambda: "refused this machine key" in (rig.agent._problem or "") or None)
        assert vision.get_classifications(photo, 3) == before


def _picture(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.float32)


def _shows_a_camera_photo(jpeg: bytes, photos: list[Path]) -> bool:
    """The relayed frame is one of the camera's photos (below the labels drawn at the top)."""
    got = _picture(jpeg)
    half = got.shape[0] // 2
    for photo in photos:
        want = _picture(photo.read_bytes())
        if want.shape == got.shape and np.abs(want[half:] - got[half:]).mean() < 8:
            return True
    return False


def _mjpeg_parts(url: str, token: str, count: int) -> tuple[str, list[bytes]]:
    """The content type and the first ``count`` JPEGs of an MJPEG stream; then it hangs up."""
    parts: list[bytes] = []
    buffer = b""
    with api(url, token) as client, client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            buffer += chunk
            while (start := buffer.find(b"\xff\xd8")) >= 0 and (
                end := buffer.find(b"\r\n--" + live_frames.BOUNDARY.encode(), start)
            ) >= 0:
                parts.append(buffer[start:end])
                buffer = buffer[end + 2 :]
            if len(parts) >= count:
                return response.headers["content-type"], parts
    raise AssertionError(f"the stream ended after {len(parts)} frames")


def test_live_view_is_relayed_only_while_someone_watches(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_frames, "WATCH_WINDOW_S", 2.0)  # the server runs in this process
    eventually(lambda: rig.machine()["status"]["cameras"][0]["fps"] > 0 or None, 30)
    time.sleep(1.0)  # several polls (every 0.2 s) with nobody watching
    assert rig.agent.push.live is False
    assert rig.agent.push.frames_sent == 0

    base = f"{rig.url}/api/v1/machines/{rig.machine_id}/cameras/bench"
    started = time.monotonic()

    def relayed() -> bytes | None:
        with api(rig.url, rig.token) as client:
            response = client.get(f"{base}/frame.jpg")
        return response.content if response.status_code == 200 else None

    jpeg = eventually(relayed, 10)  # the first request marks the machine watched
    assert jpeg, "no frame was relayed"
    assert time.monotonic() - started < 5
    photos = sorted((tmp_path / "frames").glob("*.jpg"))
    assert _shows_a_camera_photo(jpeg, photos)

    kind, parts = _mjpeg_parts(f"{base}/live.mjpg", rig.token, 3)
    assert kind.startswith("multipart/x-mixed-replace")
    assert all(_shows_a_camera_photo(part, photos) for part in parts)
    assert len(set(parts)) == 3  # new frames as they arrive, not the same one again

    assert eventually(lambda: rig.agent.push.live is False or None, 10)  # nobody watches now
    sent = rig.agent.push.frames_sent
    time.sleep(1.0)
    assert rig.agent.push.frames_sent == sent


def test_a_restarted_agent_serves_its_last_model_while_the_server_is_away(tmp_path: Path) -> None:
    data = tmp_path / "server"
    token = admin_token(data)
    add_version(data, 1)
    port = free_port()
    options: ConnectedOptions
    with live_server(data, port) as url:
        machine_id, key = register_machine(url, token)
        with api(url, token) as client:
            body = {"model": MODEL, "version": 1}
            client.put(f"/api/v1/machines/{machine_id}/deployment", json=body).raise_for_status()
        options = ConnectedOptions(url, key, tmp_path / "agent", "127.0.0.1:0", poll_s=0.2)
        first = ConnectedAgent(options)
        first.poll_once()
        assert first.slot.ref == f"{MODEL}@1"
        first.close()
    again = ConnectedAgent(options)  # the server is gone now
    stop = threading.Event()
    thread = threading.Thread(target=again.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert eventually(lambda: again.slot.ref == f"{MODEL}@1" or None, 30)
        with VisionClient(again.machine.http.url, "classifier") as vision:
            assert len(vision.get_classifications(trashnet_photos(1)[0].read_bytes(), 2)) == 2
        assert eventually(lambda: "cannot reach the server" in (again._problem or "") or None)
    finally:
        stop.set()
        thread.join(timeout=30)


def test_a_wrong_key_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not a machine key"):
        ConnectedAgent(ConnectedOptions("http://127.0.0.1:9", "tt_user_key", tmp_path))


def test_package_sha_announced_by_the_server_is_checked(tmp_path: Path) -> None:
    """A download whose manifest differs from what the server announced is refused."""
    write_tiny(tmp_path / "pkg", name=MODEL, version=1)
    real = hashlib.sha256((tmp_path / "pkg" / "manifest.json").read_bytes()).hexdigest()
    data = zip_package(tmp_path / "pkg")
    slot = ModelSlot()
    deployer = Deployer(slot, tmp_path / "packages", lambda _d: data)
    wrong = Deployment(MODEL, 1, True, "0" * 64, "/api/v1/agent/package/trash/1.zip")
    assert deployer.apply(wrong) is False
    assert "not the one the server announced" in (deployer.last_error or "")
    assert slot.ref is None
    assert deployer.apply(Deployment(MODEL, 1, True, real, wrong.package_url)) is True
    assert slot.ref == f"{MODEL}@1"


def test_an_agent_on_every_interface_advertises_the_address_it_reaches_the_server_from() -> None:
    from tagtrain.agent.connected import advertised_url
    from tagtrain.agent.http_api import create_agent_app
    from tagtrain.agent.local_server import LocalServer
    from tagtrain.agent.services import NoCameras, Services
    from tagtrain.machine_config import AgentStatus, VisionConfig

    own = _non_loopback_address()
    if own is None:
        pytest.skip("this machine has no network interface but loopback")
    app = create_agent_app(Services(ModelSlot(), NoCameras(), VisionConfig()), AgentStatus)
    everywhere = LocalServer(app, "0.0.0.0:0")
    loopback = LocalServer(app, "127.0.0.1:0")
    try:
        # The server is reached through this machine's own interface: that address is advertised,
        # not the loopback one a browser elsewhere could not use.
        url = advertised_url(f"http://{own}:8000", everywhere)
        assert url == f"http://{own}:{everywhere.port}"
        # Listening on one address: that one, whatever the route to the server.
        assert advertised_url(f"http://{own}:8000", loopback) == loopback.url
    finally:
        everywhere.stop()
        loopback.stop()


def _non_loopback_address() -> str | None:
    """An IPv4 address of one of this machine's interfaces other than loopback (Linux)."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            if name == "lo":
                continue
            try:
                packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:  # no IPv4 address on it
                continue
            return socket.inet_ntoa(packed[20:24])  # SIOCGIFADDR: the address of the interface
    return None
