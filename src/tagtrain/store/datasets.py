"""Datasets: named sets of images, their membership and their statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from tagtrain.errors import BadInput, Conflict, NotFound
from tagtrain.store.tables import Dataset, DatasetImage, ImageTag, Tag
from tagtrain.store.tags import Selection

MAX_NAME_LEN = 100


@dataclass(frozen=True)
class DatasetStats:
    name: str
    description: str
    created_at: datetime
    images: int
    untagged: int
    tag_counts: dict[str, int]


def normalize_name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise BadInput("a dataset name cannot be empty")
    if len(name) > MAX_NAME_LEN or any(c in name for c in "/\\\n\r\t"):
        raise BadInput(
            f"dataset name {name[:30]!r} must be at most {MAX_NAME_LEN} characters, "
            "without slashes or line breaks"
        )
    return name


def get(session: Session, name: str) -> Dataset:
    found = session.scalar(select(Dataset).where(Dataset.name == name))
    if found is None:
        raise NotFound(f"no dataset named {name!r}; create it first")
    return found


def create(session: Session, name: str, description: str = "") -> Dataset:
    name = normalize_name(name)
    if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise Conflict(f"a dataset named {name!r} exists already")
    ds = Dataset(name=name, description=description)
    session.add(ds)
    session.flush()
    return ds


def get_or_create(session: Session, name: str) -> Dataset:
    found = session.scalar(select(Dataset).where(Dataset.name == normalize_name(name)))
    return found if found is not None else create(session, name)


def rename(session: Session, old: str, new: str) -> None:
    ds = get(session, old)
    new = normalize_name(new)
    if new != old and session.scalar(select(Dataset.id).where(Dataset.name == new)) is not None:
        raise Conflict(f"a dataset named {new!r} exists already")
    session.execute(update(Dataset).where(Dataset.id == ds.id).values(name=new))


def delete_dataset(session: Session, name: str) -> None:
    """Delete the dataset; its images stay in the store."""
    session.execute(delete(Dataset).where(Dataset.id == get(session, name).id))


def add_images(session: Session, name: str, selection: Selection) -> int:
    ds_id = get(session, name).id
    chosen = selection.subquery()
    new_rows = select(literal(ds_id), chosen.c.id).where(
        ~exists().where(DatasetImage.dataset_id == ds_id, DatasetImage.image_id == chosen.c.id)
    )
    result = session.execute(insert(DatasetImage).from_select(["dataset_id", "image_id"], new_rows))
    return int(getattr(result, "rowcount", 0) or 0)


def remove_images(session: Session, name: str, selection: Selection) -> int:
    ds_id = get(session, name).id
    result = session.execute(
        delete(DatasetImage).where(
            DatasetImage.dataset_id == ds_id,
            DatasetImage.image_id.in_(selection.scalar_subquery()),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def stats(session: Session, name: str) -> DatasetStats:
    """Image count, untagged count and images per tag within the dataset."""
    ds = get(session, name)
    members = select(DatasetImage.image_id).where(DatasetImage.dataset_id == ds.id)
    total = session.scalar(select(func.count()).select_from(members.subquery())) or 0
    per_tag = session.execute(
        select(Tag.name, func.count())
        .join(ImageTag, ImageTag.tag_id == Tag.id)
        .where(ImageTag.image_id.in_(members.scalar_subquery()))
        .group_by(Tag.name)
        .order_by(func.count().desc(), Tag.name)
    ).all()
    untagged = session.scalar(
        select(func.count())
        .select_from(DatasetImage)
        .where(
            DatasetImage.dataset_id == ds.id,
            ~exists().where(ImageTag.image_id == DatasetImage.image_id),
        )
    )
    return DatasetStats(
        name=ds.name,
        description=ds.description,
        created_at=ds.created_at,
        images=total,
        untagged=untagged or 0,
        tag_counts={n: int(c) for n, c in per_tag},
    )


def list_datasets(session: Session) -> list[tuple[Dataset, int]]:
    n = func.count(DatasetImage.image_id)
    rows = session.execute(
        select(Dataset, n)
        .outerjoin(DatasetImage, DatasetImage.dataset_id == Dataset.id)
        .group_by(Dataset.id)
        .order_by(Dataset.name)
    ).all()
    return [(ds, int(c)) for ds, c in rows]


def datasets_of(session: Session, image_id: int) -> list[str]:
    return list(
        session.scalars(
            select(Dataset.name)
            .join(DatasetImage, DatasetImage.dataset_id == Dataset.id)
            .where(DatasetImage.image_id == image_id)
            .order_by(Dataset.name)
        )
    )
