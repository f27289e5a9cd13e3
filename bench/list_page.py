"""List-page latency: ``GET /api/v1/images?tag=X&limit=100`` through the real app (in-process
client, admin API key) with 100,000 images stored, against the same SQL statements replayed on a
plain sqlite3 connection."""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from bench.bulk_store import COMMON_TAGS, RARE_TAG, Filled, fill
from bench.common import Latency, latency, temp_dir, time_calls
from bench.rows import Bar, Row
from tagtrain.server import create_app
from tagtrain.settings import Settings
from tagtrain.store import Store, open_store
from tagtrain.store import users as user_store

N_IMAGES = 100_000
PAGE = 100
REQUESTS = 200
WARMUP = 20
DEEP = 0.9  # the deep page starts this far into the tag's images
BAR = Bar("<=", 50)
PATH = "/api/v1/images"
Statements = list[tuple[str, Any]]


@dataclass(frozen=True)
class Scenario:
    label: str
    params: dict[str, str | int]


def run() -> list[Row]:
    with temp_dir("list") as tmp:
        settings = Settings(data=tmp / "data")
        store = open_store(settings)
        try:
            return run_on(store, settings)
        finally:
            store.close()


def run_on(store: Store, settings: Settings) -> list[Row]:
    start = time.perf_counter()
    filled = fill(store, N_IMAGES)
    fill_row = Row(f"list: fill {N_IMAGES:,} rows (setup)", time.perf_counter() - start, "s")
    token = admin_token(store)
    scenarios = make_scenarios(settings.data / "tagtrain.db", filled)
    with TestClient(create_app(settings, store)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        rows = [r for s in scenarios for r in measure(client, store.engine, s, settings)]
    return [*rows, fill_row]


def admin_token(store: Store) -> str:
    with store.transaction() as session:
        user = user_store.create_user(
            session, username="bench", password="bench password", is_admin=True
        )
        _key, token = user_store.create_api_key(session, user=user, name="bench")
    return token


def make_scenarios(db: Path, filled: Filled) -> list[Scenario]:
    common = COMMON_TAGS[0]
    share = {t: f"{c / filled.images:.0%}" for t, c in filled.tag_counts.items()}
    deep_at = int(filled.tag_counts[common] * DEEP) // PAGE * PAGE
    return [
        Scenario(f"tag={common} ({share[common]})", {"tag": common, "limit": PAGE}),
        Scenario(f"tag={RARE_TAG} ({share[RARE_TAG]})", {"tag": RARE_TAG, "limit": PAGE}),
        Scenario(
            f"tag={common}, deep page {deep_at // PAGE + 1}",
            {"tag": common, "limit": PAGE, "cursor": cursor_after(db, common, deep_at)},
        ),
    ]


def cursor_after(db: Path, tag: str, n: int) -> int:
    """The ``next_cursor`` a client holds after paging through the ``n`` newest images of ``tag``."""
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT image_id FROM image_tags JOIN tags ON tags.id = tag_id "
            "WHERE tags.name = ? ORDER BY image_id DESC LIMIT 1 OFFSET ?",
            (tag, n - 1),
        ).fetchone()
    return int(row[0])


def measure(
    client: TestClient, engine: Engine, scenario: Scenario, settings: Settings
) -> list[Row]:
    def request() -> None:
        response = client.get(PATH, params=scenario.params)
        if response.status_code != 200 or len(response.json()["items"]) != PAGE:
            raise RuntimeError(f"GET {PATH} {scenario.params}: {response.status_code}")

    with captured_sql(engine) as statements:
        request()
    app = latency(time_calls(request, n=REQUESTS, warmup=WARMUP))
    peer = replay_latency(settings.data / "tagtrain.db", listing_only(statements))
    return rows_for(scenario, app, peer)


@contextmanager
def captured_sql(engine: Engine) -> Iterator[Statements]:
    """Every statement (with its parameters) the engine sends while the block runs."""
    seen: Statements = []

    def record(*args: Any) -> None:
        _conn, _cursor, statement, parameters = args[:4]
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def listing_only(statements: Statements) -> Statements:
    """The reads that make the page; authentication (API key, user) is app overhead."""
    picked = [
        (sql, params)
        for sql, params in statements
        if sql.lstrip().upper().startswith("SELECT")
        and "api_keys" not in sql
        and "FROM users" not in sql
    ]
    if not picked:
        raise RuntimeError("captured no listing query to replay")
    return picked


def replay_latency(db: Path, statements: Statements) -> Latency:
    with closing(sqlite3.connect(db)) as conn:
        replay = functools.partial(_replay, conn, statements)
        return latency(time_calls(replay, n=REQUESTS, warmup=WARMUP))


def _replay(conn: sqlite3.Connection, statements: Statements) -> None:
    for sql, params in statements:
        conn.execute(sql, params).fetchall()


def rows_for(scenario: Scenario, app: Latency, peer: Latency) -> list[Row]:
    name = f"list 100/page, {scenario.label}"
    peer_is = "the page's SQL replayed on a plain sqlite3 connection"
    details = {"requests": app.n, "params": scenario.params}
    return [
        Row(f"{name} p95", app.p95_ms, "ms", BAR, peer.p95_ms, peer_is, details),
        Row(f"{name} p50", app.p50_ms, "ms", None, peer.p50_ms, peer_is, details),
    ]
