"""/api/v1/images/{id}/neighbors: the images before and after one image under a filter.

The image view walks the filtered list one image at a time (arrow keys). The list is newest first,
like ``GET /api/v1/images``: *previous* is the next newer image, *next* the next older one. The
image itself need not match the filter any more (labeling often takes it out of "untagged").
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from tagtrain.server.deps import CurrentUser, StoreDep
from tagtrain.server.routes.images import FilterDep
from tagtrain.store import images as image_store
from tagtrain.store.filters import filtered_ids
from tagtrain.store.tables import Image

router = APIRouter(prefix="/api/v1/images", tags=["images"])


class Neighbors(BaseModel):
    previous: int | None = Field(description="The next newer image matching the filter.")
    next: int | None = Field(description="The next older image matching the filter.")
    newer: int = Field(description="How many images matching the filter are newer than this one.")
    total: int = Field(description="How many images match the filter.")


@router.get("/{image_id}/neighbors", response_model=Neighbors)
def neighbors(store: StoreDep, _user: CurrentUser, flt: FilterDep, image_id: int) -> Neighbors:
    """The neighbours of ``image_id`` in the list the filter gives, and its place in it."""
    with store.transaction() as session:
        image_store.get(session, image_id)
        ids = filtered_ids(session, flt)
        newer_ids = ids.where(Image.id > image_id)
        prev_id = session.scalar(newer_ids.order_by(Image.id.asc()).limit(1))
        next_id = session.scalar(ids.where(Image.id < image_id).order_by(Image.id.desc()).limit(1))
        newer = session.scalar(select(func.count()).select_from(newer_ids.subquery())) or 0
        total = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    return Neighbors(previous=prev_id, next=next_id, newer=newer, total=total)
