"""The user side of deploying to machines (docs/agent-protocol.md, "User API"): register a machine
(its key shown once), edit its config, deploy a model version pinned or following the newest,
rotate and revoke its key, delete it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tagtrain.settings import Settings
from tagtrain.store import Store
from tagtrain.store.tables import Machine
from tagtrain.store.users import digest
from tests.deploy_helpers import seed_model

CAMERA = {
    "name": "door",
    "source": "rtsp://10.0.0.5/stream",
    "max_fps": 15.0,
    "capture": {
        "frequency_hz": 0.5,
        "tags": ["from-door"],
        "min_confidence": 0.2,
        "max_confidence": 0.7,
        "labels": ["glass"],
        "max_per_minute": 10,
    },
}


def register(api: TestClient, name: str = "pi-1") -> dict[str, Any]:
    res = api.post("/api/v1/machines", json={"name": name})
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    return body


@pytest.fixture
def versions(store: Store, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    seed_model(store, settings, tmp_path_factory)


def test_register_shows_the_key_once_and_stores_only_its_hash(
    api: TestClient, store: Store
) -> None:
    made = register(api)
    key = made["key"]
    assert key.startswith("tm_") and len(key) > 40
    assert made["name"] == "pi-1"
    assert made["key_prefix"] == key[:10]
    assert made["key_active"] is True
    assert made["online"] is False and made["last_seen_at"] is None
    assert made["deployment"] is None and made["status"] is None
    assert made["config"] == {"cameras": [], "vision": made["config"]["vision"]}
    shown = api.get(f"/api/v1/machines/{made['id']}").json()
    assert "key" not in shown
    assert [m["name"] for m in api.get("/api/v1/machines").json()] == ["pi-1"]
    assert all("key" not in m for m in api.get("/api/v1/machines").json())
    with store.transaction() as session:
        row = session.scalars(select(Machine)).one()
        assert row.key_hash == digest(key)
        assert key not in (row.key_prefix, row.config, row.name)


def test_names_are_checked_and_unique(api: TestClient) -> None:
    register(api, "pi-1")
    res = api.post("/api/v1/machines", json={"name": "pi-1"})
    assert res.status_code == 409
    assert "exists already" in res.json()["detail"]
    for bad in ["", "has space", "../etc", "x" * 65]:
        res = api.post("/api/v1/machines", json={"name": bad})
        assert res.status_code == 400, bad
        assert "machine name" in res.json()["detail"]


def test_an_unknown_machine_is_404(api: TestClient) -> None:
    for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/key"), ("DELETE", "/key")]:
        res = api.request(method, f"/api/v1/machines/99{path}")
        assert res.status_code == 404, (method, path)
        assert res.json()["detail"] == "no machine with id 99"


def test_config_round_trip(api: TestClient) -> None:
    mid = register(api)["id"]
    config = {
        "cameras": [CAMERA, {"name": "desk", "source": 0}],
        "vision": {"name": "trash", "default_minimum_confidence": 0.3, "n": 5},
    }
    res = api.put(f"/api/v1/machines/{mid}/config", json=config)
    assert res.status_code == 200, res.text
    got = api.get(f"/api/v1/machines/{mid}").json()["config"]
    assert got["cameras"][0] == CAMERA
    assert got["cameras"][1]["source"] == 0 and got["cameras"][1]["max_fps"] is None
    assert got["cameras"][1]["capture"]["frequency_hz"] == 0.0
    assert got["vision"]["name"] == "trash" and got["vision"]["n"] == 5


def _camera(**changes: Any) -> dict[str, Any]:
    return {**CAMERA, **changes}


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"cameras": [CAMERA, CAMERA]}, "camera names must differ; repeated: door"),
        ({"cameras": [_camera(name="front door")]}, "cameras 0 name: String should match"),
        ({"cameras": [_camera(source=-1)]}, "a device index is 0 or more"),
        ({"cameras": [_camera(source=" ")]}, "give a device index, a stream URL"),
        ({"cameras": [_camera(max_fps=0)]}, "cameras 0 max_fps: Input should be greater than 0"),
        (
            {"cameras": [_camera(capture={"min_confidence": 0.8, "max_confidence": 0.2})]},
            "the band would never match",
        ),
        ({"cameras": [_camera(capture={"frequency_hz": 31})]}, "frequency_hz"),
        ({"cameras": [_camera(capture={"max_per_minute": 0})]}, "max_per_minute"),
        ({"cameras": [_camera(zoom=2)]}, "zoom: Extra inputs are not permitted"),
        ({"vision": {"default_minimum_confidence": 1.5}}, "default_minimum_confidence"),
        ({"vision": {"n": -1}}, "vision n: Input should be greater than or equal to 0"),
        ({"cameras": [_camera(name=f"c{i}") for i in range(17)]}, "at most 16 items"),
    ],
)
def test_each_bad_config_is_refused_with_its_reason(
    api: TestClient, config: dict[str, Any], reason: str
) -> None:
    mid = register(api)["id"]
    res = api.put(f"/api/v1/machines/{mid}/config", json=config)
    assert res.status_code == 422, res.text
    assert reason in res.json()["detail"]
    assert api.get(f"/api/v1/machines/{mid}").json()["config"]["cameras"] == []


def test_deploy_pinned_latest_and_clear(
    api: TestClient, store: Store, settings: Settings, versions: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    mid = register(api)["id"]
    url = f"/api/v1/machines/{mid}/deployment"
    res = api.put(url, json={"model": "trash-tiny", "version": 1})
    assert res.status_code == 200, res.text
    assert res.json()["deployment"] == {"model": "trash-tiny", "version": 1, "pinned": True}
    res = api.put(url, json={"model": "trash-tiny", "version": None})
    assert res.json()["deployment"] == {"model": "trash-tiny", "version": 2, "pinned": False}
    seed_model(store, settings, tmp_path_factory, versions=(3,))  # a newer training
    got = api.get(f"/api/v1/machines/{mid}").json()["deployment"]
    assert got == {"model": "trash-tiny", "version": 3, "pinned": False}
    res = api.put(url, json={"model": "trash-tiny", "version": 2})  # roll back
    assert res.json()["deployment"] == {"model": "trash-tiny", "version": 2, "pinned": True}
    res = api.delete(url)
    assert res.status_code == 200 and res.json()["deployment"] is None


def test_deploying_what_does_not_exist_says_so(api: TestClient, versions: None) -> None:
    mid = register(api)["id"]
    url = f"/api/v1/machines/{mid}/deployment"
    api.put(url, json={"model": "trash-tiny", "version": 1})
    res = api.put(url, json={"model": "nope", "version": None})
    assert res.status_code == 404
    assert res.json()["detail"] == "no model named 'nope'; train one first"
    res = api.put(url, json={"model": "trash-tiny", "version": 9})
    assert res.status_code == 404
    assert res.json()["detail"] == "model 'trash-tiny' has no version 9"
    res = api.put(url, json={"model": "trash-tiny", "version": 0})
    assert res.status_code == 422
    assert api.get(f"/api/v1/machines/{mid}").json()["deployment"]["version"] == 1  # unchanged


def test_rotate_and_revoke_the_key(api: TestClient, store: Store) -> None:
    made = register(api)
    rotated = api.post(f"/api/v1/machines/{made['id']}/key").json()
    assert rotated["key"].startswith("tm_") and rotated["key"] != made["key"]
    assert rotated["key_prefix"] == rotated["key"][:10] and rotated["key_active"] is True
    with store.transaction() as session:
        assert session.scalars(select(Machine.key_hash)).one() == digest(rotated["key"])
    revoked = api.delete(f"/api/v1/machines/{made['id']}/key").json()
    assert revoked["key_active"] is False
    assert "key" not in revoked


def test_delete_a_machine(api: TestClient) -> None:
    mid = register(api)["id"]
    res = api.delete(f"/api/v1/machines/{mid}")
    assert res.status_code == 204
    assert api.get(f"/api/v1/machines/{mid}").status_code == 404
    assert api.get("/api/v1/machines").json() == []
    register(api)  # the name is free again
