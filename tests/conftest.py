"""Shared fixtures: a real SQLite store in a temp folder, the app through an in-process client,
and the real photos of ``../shared/datasets``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tagtrain.server import create_app
from tagtrain.settings import Settings
from tagtrain.store import Store, open_store
from tagtrain.store import users as user_store

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("TAGTRAIN_DATASETS", ROOT.parent / "shared" / "datasets"))
TRASHNET = DATASETS / "trashnet_6class"
COCO = DATASETS / "coco_multilabel"
ADMIN = ("admin", "correct horse battery")


def trashnet_photos(n: int) -> list[Path]:
    """``n`` real photos, taken round-robin over the six class folders."""
    folders = sorted(p for p in TRASHNET.iterdir() if p.is_dir())
    per_class = [sorted(f.glob("*.jpg")) for f in folders]
    return [per_class[i % len(folders)][i // len(folders)] for i in range(n)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data=tmp_path / "data", worker=False)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = open_store(settings)
    yield s
    s.close()


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    """An anonymous client of the real app."""
    with TestClient(create_app(settings, store)) as c:
        yield c


@pytest.fixture
def api_token(store: Store) -> str:
    with store.transaction() as session:
        user = user_store.create_user(session, username=ADMIN[0], password=ADMIN[1], is_admin=True)
        _key, token = user_store.create_api_key(session, user=user, name="tests")
    return token


@pytest.fixture
def api(client: TestClient, api_token: str) -> TestClient:
    """The same client, authenticated with an admin's API key."""
    client.headers["Authorization"] = f"Bearer {api_token}"
    return client
