"""Snapshots: the frozen list of images and tags a training job uses, taken from a dataset."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tagtrain.errors import NotFound
from tagtrain.store import datasets as ds_store
from tagtrain.store.tables import DatasetImage, Image, Machine, Snapshot
from tagtrain.store.tags import tags_of


@dataclass(frozen=True)
class SnapshotItem:
    image_id: int
    sha256: str
    tags: tuple[str, ...]
    machine: str | None
    captured_at: datetime | None


def take(session: Session, dataset: str) -> tuple[int, list[SnapshotItem]]:
    """Freeze the dataset's current images and tags; returns (snapshot id, items)."""
    ds = ds_store.get(session, dataset)
    rows = session.execute(
        select(Image.id, Image.sha256, Machine.name, Image.captured_at)
        .join(DatasetImage, DatasetImage.image_id == Image.id)
        .outerjoin(Machine, Machine.id == Image.machine_id)
        .where(DatasetImage.dataset_id == ds.id)
        .order_by(Image.id)
    ).all()
    tag_map = tags_of(session, [r[0] for r in rows])
    items = [SnapshotItem(i, sha, tuple(tag_map[i]), m, at) for i, sha, m, at in rows]
    snap = Snapshot(dataset=ds.name, items=json.dumps([_encode(x) for x in items]))
    session.add(snap)
    session.flush()
    return snap.id, items


def load(session: Session, snapshot_id: int) -> list[SnapshotItem]:
    snap = session.get(Snapshot, snapshot_id)
    if snap is None:
        raise NotFound(f"no snapshot with id {snapshot_id}")
    return [_decode(x) for x in json.loads(snap.items)]


def _encode(item: SnapshotItem) -> dict[str, object]:
    out = asdict(item)
    out["captured_at"] = item.captured_at.isoformat() if item.captured_at else None
    return out


def _decode(raw: dict[str, object]) -> SnapshotItem:
    at = raw.get("captured_at")
    return SnapshotItem(
        image_id=int(str(raw["image_id"])),
        sha256=str(raw["sha256"]),
        tags=tuple(str(t) for t in raw["tags"]),  # type: ignore[attr-defined]
        machine=str(raw["machine"]) if raw.get("machine") else None,
        captured_at=datetime.fromisoformat(str(at)) if at else None,
    )


def label_counts(items: list[SnapshotItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        for tag in item.tags:
            counts[tag] = counts.get(tag, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
