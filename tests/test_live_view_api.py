"""The live-view relay's API (docs/agent-protocol.md): an agent posts annotated frames with its
machine key, people read the newest one (or an MJPEG stream of them) with their login or key, and
any read marks the machine watched for a while, which the agent's config says as ``live_view``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tagtrain.server import live_frames
from tagtrain.server.live_frames import BOUNDARY, LiveFrames
from tagtrain.server.routes import agent_api
from tests.conftest import trashnet_photos
from tests.test_machines_api import register


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post_frame(
    client: TestClient, key: str, data: bytes | None, camera: str | None = "door"
) -> Any:
    form = {} if camera is None else {"camera": camera}
    files = None if data is None else {"file": ("frame.jpg", data, "image/jpeg")}
    return client.post("/api/v1/agent/frames", headers=bearer(key), data=form, files=files)


def live_view(client: TestClient, key: str) -> bool:
    res = client.get("/api/v1/agent/config", headers=bearer(key))
    assert res.status_code == 200, res.text
    flag = res.json()["live_view"]
    assert isinstance(flag, bool)
    return flag


def photo() -> bytes:
    return trashnet_photos(1)[0].read_bytes()


def test_a_posted_frame_is_the_newest_frame_of_its_camera(api: TestClient) -> None:
    made = register(api)
    frame_url = f"/api/v1/machines/{made['id']}/cameras/door/frame.jpg"
    missing = api.get(frame_url)
    assert missing.status_code == 404
    assert "camera 'door'" in missing.json()["detail"]
    assert "starts sending frames when someone watches" in missing.json()["detail"]

    first, second = photo(), trashnet_photos(2)[1].read_bytes()
    assert post_frame(api, made["key"], first).status_code == 204
    assert post_frame(api, made["key"], second).status_code == 204
    got = api.get(frame_url)
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["cache-control"] == "no-store"
    assert got.content == second  # only the newest is kept
    assert api.get(f"/api/v1/machines/{made['id']}/cameras/other/frame.jpg").status_code == 404


def test_frames_stay_with_their_machine(api: TestClient) -> None:
    one, two = register(api, "pi-1"), register(api, "pi-2")
    assert post_frame(api, two["key"], photo()).status_code == 204
    assert api.get(f"/api/v1/machines/{one['id']}/cameras/door/frame.jpg").status_code == 404
    assert api.get(f"/api/v1/machines/{two['id']}/cameras/door/frame.jpg").status_code == 200
    res = api.get("/api/v1/machines/999/cameras/door/frame.jpg")
    assert res.status_code == 404
    assert api.delete(f"/api/v1/machines/{two['id']}").status_code == 204
    assert api.app.state.live_frames.latest(two["id"], "door") is None  # type: ignore[attr-defined]


def test_only_machine_keys_post_frames_and_only_people_read_them(
    api: TestClient, api_token: str
) -> None:
    made = register(api)
    refused = post_frame(api, api_token, photo())
    assert refused.status_code == 401
    assert "only machine keys" in refused.json()["detail"]
    base = f"/api/v1/machines/{made['id']}/cameras/door"
    for path in ("frame.jpg", "live.mjpg"):
        res = api.get(f"{base}/{path}", headers=bearer(made["key"]))
        assert res.status_code == 401, path
        assert "machine keys only work for the agent API" in res.json()["detail"]
    assert live_view(api, made["key"]) is False  # a refused read does not count as watching


@pytest.mark.parametrize(
    ("data", "camera", "status", "says"),
    [
        (None, "door", 400, "file is missing"),
        (b"jpeg", None, 400, "camera None must be a camera name"),
        (b"jpeg", "../etc", 400, "camera '../etc' must be a camera name"),
        (b"not a picture", "door", 422, "it is not a JPEG"),
        (b"\xff\xd8\xff" + b"\0" * 64, "door", 413, "over the 32-byte limit"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(
    api: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    data: bytes | None,
    camera: str | None,
    status: int,
    says: str,
) -> None:
    monkeypatch.setattr(agent_api, "MAX_FRAME_BYTES", 32 if status == 413 else 4 * 2**20)
    made = register(api)
    res = post_frame(api, made["key"], data, camera)
    assert res.status_code == status, res.text
    assert says in res.json()["detail"]
    assert api.get(f"/api/v1/machines/{made['id']}/cameras/door/frame.jpg").status_code == 404


def test_a_bad_camera_name_is_refused_on_the_user_side_too(api: TestClient) -> None:
    made = register(api)
    res = api.get(f"/api/v1/machines/{made['id']}/cameras/bad%20name/frame.jpg")
    assert res.status_code == 400
    assert "must be a camera name" in res.json()["detail"]


def test_a_read_marks_the_machine_watched_for_a_window(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_frames, "WATCH_WINDOW_S", 0.5)
    made, other = register(api, "pi-1"), register(api, "pi-2")
    assert live_view(api, made["key"]) is False
    api.get(f"/api/v1/machines/{made['id']}/cameras/door/frame.jpg")  # a 404 still counts
    assert live_view(api, made["key"]) is True
    assert live_view(api, other["key"]) is False
    time.sleep(0.6)
    assert live_view(api, made["key"]) is False


def test_the_stream_sends_the_newest_frame_then_each_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The relay's MJPEG, without a server (the test client cannot end an endless response)."""
    monkeypatch.setattr(live_frames, "STREAM_CHECK_S", 0.001)
    relay = LiveFrames()
    relay.put(1, "door", b"\xff\xd8\xffone")
    checks = 0

    async def gone() -> bool:
        nonlocal checks
        checks += 1
        if checks == 3:
            relay.put(1, "door", b"\xff\xd8\xfftwo")
            relay.put(2, "door", b"\xff\xd8\xffnot this machine")
        return checks > 5

    async def read() -> bytes:
        return b"".join([part async for part in relay.stream(1, "door", gone)])

    body = asyncio.run(read())
    part = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
    # Each frame comes with the next part's start, so that a browser shows it at once.
    assert body == part + b"\xff\xd8\xffone\r\n" + part + b"\xff\xd8\xfftwo\r\n" + part
    assert relay.watched(1) and not relay.watched(2)


def test_closing_the_relay_ends_its_streams() -> None:
    """The server stopping ends the endless streams (it waits for open responses)."""
    relay = LiveFrames()

    async def never_gone() -> bool:
        return False

    async def read() -> int:
        parts = 0
        async for _part in relay.stream(1, "door", never_gone):
            parts += 1
            relay.close()
        return parts

    assert asyncio.run(asyncio.wait_for(read(), 5)) == 1
