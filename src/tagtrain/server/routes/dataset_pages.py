"""The Datasets pages: the list (create) and one dataset (counts per tag, warnings, rename, delete).

:func:`dataset_warnings` holds the rules a labeler needs to see before training; they are plain
functions of the dataset's statistics so the tests can check them without a browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tagtrain.errors import TagtrainError
from tagtrain.server.deps import StoreDep
from tagtrain.server.routes.web import PageUser, render, render_error
from tagtrain.store import datasets as ds_store
from tagtrain.store import model_versions
from tagtrain.store.datasets import DatasetStats

router = APIRouter(include_in_schema=False)

MIN_PER_LABEL = 10
MAX_IMBALANCE = 3.0
MIN_LABELED = 0.8


@dataclass(frozen=True)
class Bar:
    """One bar of the per-tag chart: ``share`` of the longest bar, in percent."""

    name: str
    count: int
    share: float


def dataset_warnings(stats: DatasetStats) -> list[str]:
    """Sentences naming what would hurt a model trained on this dataset, worst first."""
    if stats.images == 0:
        return ["The dataset is empty: add images to it from the Data tab."]
    counts = stats.tag_counts
    if not counts:
        return ["No image in the dataset has a tag yet: tag them on the Data tab."]
    out: list[str] = []
    few = sorted((n, name) for name, n in counts.items() if n < MIN_PER_LABEL)
    if few:
        listed = ", ".join(f"“{name}” ({n})" for n, name in few)
        out.append(
            f"Fewer than {MIN_PER_LABEL} images on {'a label' if len(few) == 1 else 'these labels'}: "
            f"{listed}; give every label at least {MIN_PER_LABEL} (more is better)."
        )
    most = max(counts.items(), key=lambda kv: kv[1])
    least = min(counts.items(), key=lambda kv: kv[1])
    if least[1] * MAX_IMBALANCE < most[1]:
        out.append(
            f"Labels are unbalanced: “{most[0]}” has {most[1]} images but “{least[0]}” only "
            f"{least[1]} ({most[1] / least[1]:.1f}x apart); keep labels within "
            f"{MAX_IMBALANCE:g}x of each other."
        )
    labeled = stats.images - stats.untagged
    if labeled < MIN_LABELED * stats.images:
        out.append(
            f"Only {labeled / stats.images:.0%} of the images are labeled ({stats.untagged} of "
            f"{stats.images} have no tag); a single-label model learns nothing from them."
        )
    if stats.untagged == 0:
        out.append(
            "No negative examples: every image has a label. For a multi-label model, add images "
            "that show none of the labels and leave them untagged."
        )
    return out


def bars(stats: DatasetStats) -> list[Bar]:
    top = max([*stats.tag_counts.values(), stats.untagged, 1])
    return [Bar(name, n, 100 * n / top) for name, n in stats.tag_counts.items()]


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, store: StoreDep, user: PageUser) -> Response:
    with store.transaction() as session:
        rows = ds_store.list_datasets(session)
    items = [(ds.name, ds.description, n, ds.created_at) for ds, n in rows]
    return render(request, "datasets.html", user=user, tab="datasets", datasets=items)


@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, store: StoreDep, user: PageUser, name: str) -> Response:
    try:
        with store.transaction() as session:
            stats = ds_store.stats(session, name)
            previous = previous_trainings(session, name)
    except TagtrainError as exc:
        return render_error(request, user, exc)
    top = max([*stats.tag_counts.values(), stats.untagged, 1])
    return render(
        request,
        "dataset.html",
        user=user,
        tab="datasets",
        ds=stats,
        bars=bars(stats),
        untagged_share=100 * stats.untagged / top,
        warnings=dataset_warnings(stats),
        previous=previous,
    )


def previous_trainings(session: Session, dataset: str) -> dict[str, dict[str, Any]]:
    """Model name -> the task and labels of its newest version trained on ``dataset``: training
    the same model again starts from those labels, not from every tag (tags added since, such as
    a machine's capture tag, are not classes)."""
    found: dict[str, dict[str, Any]] = {}
    for model, versions in model_versions.list_models(session):
        newest = next((v for v in versions if v.dataset == dataset), None)
        if newest is not None:
            task = "multi" if model.task == "multi_label" else "single"
            found[model.name] = {
                "version": newest.version,
                "task": task,
                "labels": json.loads(newest.labels),
            }
    return found
