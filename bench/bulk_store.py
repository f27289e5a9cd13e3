"""A store filled with many image rows fast: SQLAlchemy Core bulk inserts, no blobs.

Tags are drawn independently per image with Zipf-like frequencies (a few common, a long tail) and
one rare tag at 1%, so a filter by tag behaves as it would on a real collection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert, select

from tagtrain.store import Store
from tagtrain.store.tables import Image, ImageTag, Tag

RARE_TAG = "forklift"
COMMON_TAGS = (
    "outdoor", "person", "vehicle", "daylight", "indoor", "car", "night", "tree", "dog",
    "bicycle", "truck", "cat", "pallet", "bird", "box", "sign", "bus", "helmet", "ladder",
)  # fmt: skip
RARE_SHARE = 0.01


@dataclass(frozen=True)
class Filled:
    images: int
    tag_counts: dict[str, int]


def tag_shares() -> dict[str, float]:
    """Share of images carrying each tag: 0.45 for the commonest, falling as 1/rank^0.8."""
    shares = {name: 0.45 / (rank**0.8) for rank, name in enumerate(COMMON_TAGS, start=1)}
    return shares | {RARE_TAG: RARE_SHARE}


def fill(store: Store, n: int, *, seed: int = 0) -> Filled:
    """Insert ``n`` images (ids 1..n, oldest first) and their tags in one transaction."""
    shares = tag_shares()
    rng = np.random.default_rng(seed)
    carries = rng.random((n, len(shares))) < np.array(list(shares.values()))
    with store.engine.begin() as conn:
        conn.execute(insert(Image), list(_image_rows(n)))
        tag_ids = _insert_tags(conn, list(shares))
        counts: dict[str, int] = {}
        for column, (name, tid) in enumerate(tag_ids.items()):
            image_ids = np.flatnonzero(carries[:, column]) + 1
            rows = [{"tag_id": tid, "image_id": int(i)} for i in image_ids]
            conn.execute(insert(ImageTag), rows)
            counts[name] = len(rows)
    return Filled(n, counts)


def _image_rows(n: int) -> Iterator[dict[str, Any]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        landscape = i % 4 != 0
        yield {
            "id": i,
            "sha256": hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
            "width": 640 if landscape else 480,
            "height": 480 if landscape else 640,
            "format": "JPEG",
            "mime": "image/jpeg",
            "size_bytes": 40_000 + (i * 7919) % 30_000,
            "source": "import" if i % 10 else "machine",
            "original_name": f"frames/{i:06d}.jpg",
            "created_at": start + timedelta(seconds=30 * i),
        }


def _insert_tags(conn: Connection, names: list[str]) -> dict[str, int]:
    now = datetime.now(UTC)
    conn.execute(insert(Tag), [{"name": name, "created_at": now} for name in names])
    rows = conn.execute(select(Tag.name, Tag.id)).all()
    found = {name: tid for name, tid in rows}
    return {name: found[name] for name in names}
