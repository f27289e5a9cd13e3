"""The image filter shared by listing, counting and bulk edits, and its translation to SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.orm import Session

from tagtrain.errors import NotFound
from tagtrain.store.tables import Dataset, DatasetImage, Image, ImageTag, Machine, Tag

Source = Literal["upload", "import", "machine"]


class ImageFilter(BaseModel):
    """Which images: every field narrows the set; an empty filter means all images."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tags: tuple[str, ...] = Field(default=(), description="Images carrying these tags.")
    match: Literal["any", "all"] = Field(default="any", description="Any of the tags, or all.")
    untagged: bool = Field(default=False, description="Only images with no tag at all.")
    dataset: str | None = Field(default=None, description="Only images in this dataset.")
    source: Source | None = None
    machine: str | None = Field(default=None, description="Only captures of this machine.")
    since: datetime | None = Field(default=None, description="Added at or after (ISO 8601).")
    until: datetime | None = Field(default=None, description="Added before (ISO 8601).")

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def filtered_ids(session: Session, flt: ImageFilter) -> Select[int]:
    """``SELECT images.id`` restricted by ``flt``; unknown names raise NotFound."""
    stmt = select(Image.id)
    for clause in _clauses(session, flt):
        stmt = stmt.where(clause)
    return stmt


def _clauses(session: Session, flt: ImageFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if flt.tags:
        tag_ids = _tag_ids(session, flt.tags)
        if flt.match == "all":
            clauses += [_has_tag(tid) for tid in tag_ids]
        else:
            clauses.append(
                exists().where(ImageTag.image_id == Image.id, ImageTag.tag_id.in_(tag_ids))
            )
    if flt.untagged:
        clauses.append(~exists().where(ImageTag.image_id == Image.id))
    if flt.dataset is not None:
        ds_id = _id_by_name(session, Dataset, flt.dataset, "dataset")
        clauses.append(
            exists().where(DatasetImage.image_id == Image.id, DatasetImage.dataset_id == ds_id)
        )
    if flt.source is not None:
        clauses.append(Image.source == flt.source)
    if flt.machine is not None:
        clauses.append(Image.machine_id == _id_by_name(session, Machine, flt.machine, "machine"))
    if flt.since is not None:
        clauses.append(Image.created_at >= flt.since)
    if flt.until is not None:
        clauses.append(Image.created_at < flt.until)
    return clauses


def _has_tag(tag_id: int) -> ColumnElement[bool]:
    return exists().where(and_(ImageTag.image_id == Image.id, ImageTag.tag_id == tag_id))


def _tag_ids(session: Session, names: tuple[str, ...]) -> list[int]:
    rows = dict(session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names))).all())
    missing = [n for n in names if n not in rows]
    if missing:
        raise NotFound(f"no tag named {', '.join(map(repr, missing))}; see the tag list")
    return [rows[n] for n in names]


def _id_by_name(
    session: Session, table: type[Dataset] | type[Machine], name: str, kind: str
) -> int:
    found = session.scalar(select(table.id).where(table.name == name))
    if found is None:
        raise NotFound(f"no {kind} named {name!r}")
    return found


def count(session: Session, flt: ImageFilter) -> int:
    return (
        session.scalar(select(func.count()).select_from(filtered_ids(session, flt).subquery())) or 0
    )
