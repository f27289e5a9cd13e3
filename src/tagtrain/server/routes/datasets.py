"""/api/v1/datasets: create, list, statistics, rename, delete, membership."""

from __future__ import annotations

from fastapi import APIRouter

from tagtrain.server.deps import CurrentUser, StoreDep
from tagtrain.server.routes.images import selection
from tagtrain.server.schemas import (
    Changed,
    DatasetIn,
    DatasetOut,
    DatasetPatch,
    DatasetStatsOut,
    Selection,
)
from tagtrain.store import datasets as ds_store

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


@router.get("", response_model=list[DatasetOut])
def list_datasets(store: StoreDep, _user: CurrentUser) -> list[DatasetOut]:
    with store.transaction() as session:
        return [
            DatasetOut(name=d.name, description=d.description, images=n, created_at=d.created_at)
            for d, n in ds_store.list_datasets(session)
        ]


@router.post("", response_model=DatasetOut, status_code=201)
def create_dataset(store: StoreDep, _user: CurrentUser, body: DatasetIn) -> DatasetOut:
    with store.transaction() as session:
        ds = ds_store.create(session, body.name, body.description)
    return DatasetOut(name=ds.name, description=ds.description, images=0, created_at=ds.created_at)


@router.get("/{name}", response_model=DatasetStatsOut)
def dataset_stats(store: StoreDep, _user: CurrentUser, name: str) -> DatasetStatsOut:
    """Image count, untagged count and images per tag."""
    with store.transaction() as session:
        st = ds_store.stats(session, name)
    return DatasetStatsOut(
        name=st.name,
        description=st.description,
        images=st.images,
        created_at=st.created_at,
        untagged=st.untagged,
        tag_counts=st.tag_counts,
    )


@router.patch("/{name}", response_model=DatasetStatsOut)
def update_dataset(
    store: StoreDep, user: CurrentUser, name: str, body: DatasetPatch
) -> DatasetStatsOut:
    with store.transaction() as session:
        if body.description is not None:
            ds_store.get(session, name).description = body.description
        if body.name is not None:
            ds_store.rename(session, name, body.name)
            name = ds_store.normalize_name(body.name)
    return dataset_stats(store, user, name)


@router.delete("/{name}", response_model=Changed)
def delete_dataset(store: StoreDep, _user: CurrentUser, name: str) -> Changed:
    """Delete the dataset; its images stay in the store."""
    with store.transaction() as session:
        ds_store.delete_dataset(session, name)
    return Changed(changed=1)


@router.post("/{name}/images", response_model=Changed)
def add_images(store: StoreDep, _user: CurrentUser, name: str, body: Selection) -> Changed:
    with store.transaction() as session:
        return Changed(changed=ds_store.add_images(session, name, selection(session, body)))


@router.post("/{name}/images/remove", response_model=Changed)
def remove_images(store: StoreDep, _user: CurrentUser, name: str, body: Selection) -> Changed:
    with store.transaction() as session:
        return Changed(changed=ds_store.remove_images(session, name, selection(session, body)))
