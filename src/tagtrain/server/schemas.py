"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tagtrain.ingest import ImportReport
from tagtrain.store.filters import ImageFilter
from tagtrain.store.images import ImageRow

MAX_IDS = 100_000


class ImageOut(BaseModel):
    id: int
    sha256: str
    width: int
    height: int
    format: str
    mime: str
    size_bytes: int
    source: str
    machine: str | None
    camera: str | None
    captured_at: datetime | None
    created_at: datetime
    original_name: str
    tags: list[str]
    thumbnail_url: str
    original_url: str

    @classmethod
    def of(cls, row: ImageRow) -> ImageOut:
        img = row.image
        return cls(
            id=img.id,
            sha256=img.sha256,
            width=img.width,
            height=img.height,
            format=img.format,
            mime=img.mime,
            size_bytes=img.size_bytes,
            source=img.source,
            machine=row.machine,
            camera=img.camera,
            captured_at=img.captured_at,
            created_at=img.created_at,
            original_name=img.original_name,
            tags=row.tags,
            thumbnail_url=f"/api/v1/images/{img.id}/thumbnail",
            original_url=f"/api/v1/images/{img.id}/original",
        )


class ImageDetail(ImageOut):
    datasets: list[str]


class ImagePage(BaseModel):
    items: list[ImageOut]
    next_cursor: int | None = Field(description="Pass as ?cursor= to get the next page.")


class Count(BaseModel):
    count: int


class RejectionOut(BaseModel):
    name: str
    reason: str


class UploadResult(BaseModel):
    added: int
    existing: int
    rejected: list[RejectionOut]
    image_ids: list[int]

    @classmethod
    def of(cls, report: ImportReport) -> UploadResult:
        return cls(
            added=report.added,
            existing=report.existing,
            rejected=[RejectionOut(name=r.name, reason=r.reason) for r in report.rejected],
            image_ids=report.image_ids,
        )


class Selection(BaseModel):
    """Which images a bulk action applies to: explicit ``ids`` or a ``filter`` (exactly one)."""

    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = Field(default=None, max_length=MAX_IDS)
    filter: ImageFilter | None = None
    all: bool = Field(default=False, description="Required with an empty filter (every image).")

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give exactly one of 'ids' or 'filter'")
        if self.filter == ImageFilter() and not self.all:
            raise ValueError('an empty filter matches every image; send "all": true to mean that')
        return self


class TagEdit(Selection):
    add: list[str] = []
    remove: list[str] = []


class TagEditResult(BaseModel):
    added: int
    removed: int


class Changed(BaseModel):
    changed: int


class TagOut(BaseModel):
    name: str
    count: int


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


class Merge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    into: str


class DatasetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""


class DatasetPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None


class DatasetOut(BaseModel):
    name: str
    description: str
    images: int
    created_at: datetime


class DatasetStatsOut(DatasetOut):
    untagged: int
    tag_counts: dict[str, int]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool
    created_at: datetime


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    password: str
    is_admin: bool = False


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "script"


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewKey(KeyOut):
    token: str = Field(description="Shown once; store it now.")
