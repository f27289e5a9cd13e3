"""The real server for the agent tests: uvicorn over a temp data folder on a chosen loopback
port (so a test can stop it and bring it back on the same address), an admin API key made
straight in the store, and machines registered through the API."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tagtrain.settings import Settings
from tagtrain.store import open_store
from tagtrain.store import users as user_store
from tests.browser.harness import serve
from tests.conftest import ADMIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(data: Path, port: int) -> Iterator[str]:
    """Serve the app over ``data`` on 127.0.0.1:``port`` until the block ends; yields its URL."""
    with serve(data, port=port) as live:
        yield live.url


def admin_token(data: Path) -> str:
    """An admin's API key, made in the store before the server opens it."""
    store = open_store(Settings(data=data, worker=False))
    try:
        with store.transaction() as session:
            user = user_store.create_user(
                session, username=ADMIN[0], password=ADMIN[1], is_admin=True
            )
            _key, token = user_store.create_api_key(session, user=user, name="agent tests")
    finally:
        store.close()
    return token


def api(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def register_machine(url: str, token: str, name: str = "rig-1") -> tuple[int, str]:
    """(machine id, machine key) of a newly registered machine."""
    with api(url, token) as client:
        response = client.post("/api/v1/machines", json={"name": name})
        response.raise_for_status()
        body = response.json()
    return int(body["id"]), str(body["key"])


def machine_images(url: str, token: str) -> list[dict[str, object]]:
    """Every image with source=machine, oldest first."""
    items: list[dict[str, object]] = []
    cursor = None
    with api(url, token) as client:
        while True:
            params: dict[str, str | int] = {"source": "machine", "limit": 500}
            if cursor is not None:
                params["cursor"] = cursor
            page = client.get("/api/v1/images", params=params).raise_for_status().json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items[::-1]
