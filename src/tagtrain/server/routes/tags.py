"""/api/v1/tags: list with counts, rename, merge, delete."""

from __future__ import annotations

from fastapi import APIRouter

from tagtrain.server.deps import CurrentUser, StoreDep
from tagtrain.server.schemas import Changed, Merge, Rename, TagOut
from tagtrain.store import tags as tag_store

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])


@router.get("", response_model=list[TagOut])
def list_tags(store: StoreDep, _user: CurrentUser) -> list[TagOut]:
    """Every tag with its image count, most used first."""
    with store.transaction() as session:
        return [TagOut(name=n, count=c) for n, c in tag_store.list_tags(session)]


@router.patch("/{name}", response_model=TagOut)
def rename_tag(store: StoreDep, _user: CurrentUser, name: str, body: Rename) -> TagOut:
    with store.transaction() as session:
        tag_store.rename_tag(session, name, body.name)
        new = tag_store.normalize_tag(body.name)
        counts = dict(tag_store.list_tags(session))
    return TagOut(name=new, count=counts.get(new, 0))


@router.post("/{name}/merge", response_model=Changed)
def merge_tag(store: StoreDep, _user: CurrentUser, name: str, body: Merge) -> Changed:
    """Move every image of this tag onto ``into`` (created if needed) and delete this tag."""
    with store.transaction() as session:
        return Changed(changed=tag_store.merge_tags(session, [name], body.into))


@router.delete("/{name}", response_model=Changed)
def delete_tag(store: StoreDep, _user: CurrentUser, name: str) -> Changed:
    """Delete the tag from every image (the images stay)."""
    with store.transaction() as session:
        tag_store.delete_tag(session, name)
    return Changed(changed=1)
