"""Image rows: insert, look up, page through (keyset), delete."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tagtrain.errors import NotFound
from tagtrain.store.filters import ImageFilter, filtered_ids
from tagtrain.store.tables import Image, Machine, utcnow
from tagtrain.store.tags import Selection, tags_of

MAX_PAGE = 500


@dataclass(frozen=True)
class NewImage:
    """What the importer knows of an image that is not stored yet."""

    sha256: str
    width: int
    height: int
    format: str
    mime: str
    size_bytes: int
    source: str
    original_name: str
    machine_id: int | None = None
    camera: str | None = None
    captured_at: datetime | None = None


@dataclass(frozen=True)
class ImageRow:
    """One image as listed: its columns plus its tag names."""

    image: Image
    tags: list[str]
    machine: str | None


@dataclass(frozen=True)
class Page:
    items: list[ImageRow]
    next_cursor: int | None


def existing_ids(session: Session, shas: Iterable[str]) -> dict[str, int]:
    """Map each already-stored sha256 among ``shas`` to its image id."""
    wanted = list(set(shas))
    if not wanted:
        return {}
    return dict(
        session.execute(select(Image.sha256, Image.id).where(Image.sha256.in_(wanted))).all()
    )


def insert_images(session: Session, new: Sequence[NewImage]) -> dict[str, int]:
    """Insert rows for images whose blobs are already stored; returns sha256 -> id."""
    now = utcnow()
    rows = [Image(created_at=now, **vars(n)) for n in new]
    session.add_all(rows)
    session.flush()
    return {r.sha256: r.id for r in rows}


def get(session: Session, image_id: int) -> Image:
    found = session.get(Image, image_id)
    if found is None:
        raise NotFound(f"no image with id {image_id}")
    return found


def page(session: Session, flt: ImageFilter, *, cursor: int | None, limit: int) -> Page:
    """Newest first, ``limit`` at a time; pass the returned ``next_cursor`` for the next page."""
    ids = filtered_ids(session, flt)
    if cursor is not None:
        ids = ids.where(Image.id < cursor)
    ids = ids.order_by(Image.id.desc()).limit(min(limit, MAX_PAGE) + 1)
    rows = session.execute(
        select(Image, Machine.name)
        .outerjoin(Machine, Machine.id == Image.machine_id)
        .where(Image.id.in_(ids.scalar_subquery()))
        .order_by(Image.id.desc())
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    tag_map = tags_of(session, [img.id for img, _ in rows])
    items = [ImageRow(img, tag_map[img.id], machine) for img, machine in rows]
    return Page(items, items[-1].image.id if more and items else None)


def by_ids(ids: Sequence[int]) -> Selection:
    return select(Image.id).where(Image.id.in_(list(ids)))


def delete_images(session: Session, selection: Selection) -> list[str]:
    """Delete the selected rows (tags and memberships cascade); returns their sha256s so the
    caller can drop the blobs once the transaction has committed."""
    shas = list(
        session.scalars(select(Image.sha256).where(Image.id.in_(selection.scalar_subquery())))
    )
    session.execute(delete(Image).where(Image.sha256.in_(shas)))
    return shas
