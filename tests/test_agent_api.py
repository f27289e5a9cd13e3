"""The agent side of deploying to machines (docs/agent-protocol.md, "Agent-facing API"): only a
machine key works there and only for its own machine; config, the deployed package, captures
(validated field by field, stored once) and status."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from tagtrain.package import extract_package
from tagtrain.settings import Settings
from tagtrain.store import Store
from tagtrain.store import users as user_store
from tests.conftest import trashnet_photos
from tests.deploy_helpers import seed_model
from tests.test_machines_api import register

LIMIT = 150_000  # above every trashnet photo, below a noisy PNG
CID = "0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).isoformat()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data=tmp_path / "data", worker=False, max_upload_bytes=LIMIT)


@pytest.fixture
def versions(store: Store, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    seed_model(store, settings, tmp_path_factory)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def agent_get(client: TestClient, key: str, path: str) -> Any:
    return client.get(f"/api/v1/agent{path}", headers=bearer(key))


def send_capture(
    client: TestClient, key: str, data: bytes, *, tags: list[str] | None = None, **fields: str
) -> Any:
    form: dict[str, Any] = {"capture_id": CID, "camera": "door", "captured_at": NOW} | fields
    if tags:
        form["tags"] = tags
    files = {"file": ("frame.jpg", data, "image/jpeg")}
    return client.post("/api/v1/agent/captures", headers=bearer(key), data=form, files=files)


def photo() -> bytes:
    return trashnet_photos(1)[0].read_bytes()


def test_config_without_and_with_a_deployment(
    api: TestClient, settings: Settings, versions: None
) -> None:
    made = register(api)
    res = agent_get(api, made["key"], "/config")
    assert res.status_code == 200, res.text
    assert res.json() == {
        "machine": {"id": made["id"], "name": "pi-1"},
        "config": made["config"],
        "deployment": None,
        "live_view": False,
    }
    camera = {"name": "door", "source": 0}
    api.put(f"/api/v1/machines/{made['id']}/config", json={"cameras": [camera]})
    api.put(f"/api/v1/machines/{made['id']}/deployment", json={"model": "trash-tiny"})
    got = agent_get(api, made["key"], "/config").json()
    assert got["config"]["cameras"][0]["source"] == 0
    manifest = settings.data / "packages/trash-tiny/2/manifest.json"
    assert got["deployment"] == {
        "model": "trash-tiny",
        "version": 2,
        "pinned": False,
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "package_url": "/api/v1/agent/package/trash-tiny/2.zip",
    }


def test_only_the_deployed_package_can_be_downloaded(
    api: TestClient, versions: None, tmp_path: Path
) -> None:
    a, b = register(api, "a"), register(api, "b")
    api.put(f"/api/v1/machines/{a['id']}/deployment", json={"model": "trash-tiny", "version": 1})
    res = agent_get(api, a["key"], "/package/trash-tiny/1.zip")
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/zip"
    assert extract_package(res.content, tmp_path / "got").manifest.labels
    for key, path, now in [
        (a["key"], "/package/trash-tiny/2.zip", "trash-tiny@1"),
        (a["key"], "/package/other/1.zip", "trash-tiny@1"),
        (b["key"], "/package/trash-tiny/1.zip", "nothing"),  # not b's deployment
    ]:
        res = agent_get(api, key, path)
        assert res.status_code == 403, path
        assert f"(deployed now: {now})" in res.json()["detail"]
    api.put(f"/api/v1/machines/{a['id']}/deployment", json={"model": "trash-tiny"})
    assert agent_get(api, a["key"], "/package/trash-tiny/2.zip").status_code == 200
    assert agent_get(api, a["key"], "/package/trash-tiny/1.zip").status_code == 403
    assert api.get("/api/v1/agent/package/trash-tiny/2.zip").status_code == 401  # a user key


def test_rotate_and_revoke_lock_the_old_key_out(api: TestClient) -> None:
    made = register(api)
    new = api.post(f"/api/v1/machines/{made['id']}/key").json()["key"]
    res = agent_get(api, made["key"], "/config")
    assert res.status_code == 401
    assert res.json()["detail"].startswith("the machine key is not valid (wrong, or revoked); ")
    assert agent_get(api, new, "/config").status_code == 200
    api.delete(f"/api/v1/machines/{made['id']}/key")
    assert agent_get(api, new, "/config").status_code == 401
    assert agent_get(api, "tm_" + "x" * 43, "/config").status_code == 401


def test_user_credentials_do_not_work_on_the_agent_api(
    client: TestClient, api_token: str, store: Store
) -> None:
    with store.transaction() as session:
        user = user_store.authenticate(session, username="admin", password="correct horse battery")
        cookie, _csrf = user_store.start_session(session, user=user, max_age_s=600)
    for headers, reason in [
        (bearer(api_token), "not valid for the agent API: it takes only machine keys"),
        ({"X-API-Key": api_token}, "needs a machine key"),
        ({}, "needs a machine key"),
    ]:
        res = client.get("/api/v1/agent/config", headers=headers)
        assert res.status_code == 401
        assert reason in res.json()["detail"]
    client.cookies.set("tagtrain_session", cookie)
    assert client.get("/api/v1/machines").status_code == 200  # the cookie is a valid login...
    res = client.get("/api/v1/agent/config")  # ...that does not open the agent API
    assert res.status_code == 401


def test_a_machine_key_does_not_work_on_the_user_api(api: TestClient) -> None:
    key = register(api)["key"]
    for path in ["/api/v1/machines", "/api/v1/images", "/api/v1/models"]:
        res = api.get(path, headers=bearer(key))
        assert res.status_code == 401
        assert "machine keys only work for the agent API" in res.json()["detail"]


def test_captures_land_as_this_machines_images(api: TestClient) -> None:
    made = register(api)
    res = send_capture(api, made["key"], photo(), tags=["from-door", "unsure"])
    assert res.status_code == 200, res.text
    image_id = res.json()["image_id"]
    assert res.json() == {"image_id": image_id, "existing": False}
    items = api.get("/api/v1/images", params={"source": "machine", "machine": "pi-1"}).json()
    assert [i["id"] for i in items["items"]] == [image_id]
    image = items["items"][0]
    assert image["machine"] == "pi-1" and image["camera"] == "door"
    assert datetime.fromisoformat(image["captured_at"]) == datetime.fromisoformat(NOW)
    assert sorted(image["tags"]) == ["from-door", "unsure"]
    assert image["original_name"] == f"door-{CID}.jpg"

    again = send_capture(api, made["key"], photo(), tags=["second"])  # a retried upload
    assert again.json() == {"image_id": image_id, "existing": True}
    assert sorted(api.get(f"/api/v1/images/{image_id}").json()["tags"]) == [
        "from-door",
        "second",
        "unsure",
    ]
    assert api.get("/api/v1/images/count", params={"source": "machine"}).json()["count"] == 1


def _noise_png() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (320, 320, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, "PNG")
    assert len(out.getvalue()) > LIMIT
    return out.getvalue()


FUTURE = (datetime.now(UTC) + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        ({"capture_id": "abc"}, 400, "capture_id 'abc' must be 32 hexadecimal characters"),
        ({"capture_id": "g" * 32}, 400, "capture_id"),
        ({"camera": "front door"}, 400, "camera 'front door' must be a camera name"),
        ({"camera": "../x"}, 400, "camera '../x'"),
        ({"captured_at": "yesterday"}, 400, "captured_at 'yesterday' is not an ISO-8601 time"),
        ({"captured_at": "2026-05-01T12:00:00"}, 400, "has no time zone"),
        ({"captured_at": FUTURE}, 400, "more than a day in the future"),
        ({"tags": "a;b"}, 400, "cannot hold ';'"),
        ({"data": b"not an image"}, 422, f"door-{CID}.jpg: "),
        ({"data": b""}, 422, f"door-{CID}.jpg: "),
        ({"data": b"big"}, 413, f"over the {LIMIT:,}-byte upload limit"),
    ],
)
def test_each_bad_capture_field_is_refused(
    api: TestClient, fields: dict[str, Any], status: int, reason: str
) -> None:
    key = register(api)["key"]
    data = fields.pop("data", photo())
    data = _noise_png() if data == b"big" else data
    tags = [fields.pop("tags")] if "tags" in fields else None
    res = send_capture(api, key, data, tags=tags, **fields)
    assert res.status_code == status, res.text
    assert reason in res.json()["detail"]
    assert api.get("/api/v1/images/count").json()["count"] == 0


def test_missing_capture_fields_are_400_naming_them(api: TestClient) -> None:
    key = register(api)["key"]
    res = api.post("/api/v1/agent/captures", headers=bearer(key), data={"camera": "door"})
    assert res.status_code == 400
    assert res.json()["detail"].startswith("file is missing")
    files = {"file": ("frame.jpg", photo(), "image/jpeg")}
    res = api.post("/api/v1/agent/captures", headers=bearer(key), files=files)
    assert res.status_code == 400
    assert res.json()["detail"] == "capture_id None must be 32 hexadecimal characters"


STATUS = {
    "model": "trash-tiny@2",
    "cameras": [{"name": "door", "ok": True, "fps": 24.5}],
    "recent": [
        {
            "camera": "door",
            "at": NOW,
            "classifications": [{"class_name": "glass", "confidence": 0.91}],
        }
    ],
    "stream_url": "http://10.0.0.5:8081",
    "agent_version": "0.4.0",
}


def test_status_marks_the_machine_online(api: TestClient) -> None:
    made = register(api)
    res = api.post("/api/v1/agent/status", headers=bearer(made["key"]), json=STATUS)
    assert res.status_code == 204
    shown = api.get("/api/v1/machines").json()[0]
    assert shown["online"] is True and shown["last_seen_at"] is not None
    assert shown["status"]["cameras"] == [{"name": "door", "ok": True, "fps": 24.5, "error": None}]
    assert shown["status"]["recent"][0]["classifications"][0]["class_name"] == "glass"
    assert shown["status"]["stream_url"] == "http://10.0.0.5:8081"
    bad = api.post("/api/v1/agent/status", headers=bearer(made["key"]), json={"cameras": "many"})
    assert bad.status_code == 422


def test_deleting_a_machine_keeps_its_images(api: TestClient) -> None:
    made = register(api)
    image_id = send_capture(api, made["key"], photo()).json()["image_id"]
    assert api.delete(f"/api/v1/machines/{made['id']}").status_code == 204
    image = api.get(f"/api/v1/images/{image_id}").json()
    assert image["machine"] is None and image["source"] == "machine"
    assert image["camera"] == "door"
    assert agent_get(api, made["key"], "/config").status_code == 401
