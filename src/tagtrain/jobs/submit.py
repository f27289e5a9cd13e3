"""Submit a training job: freeze a snapshot of the dataset, check its health, queue the job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from tagtrain.curate import health
from tagtrain.errors import BadInput
from tagtrain.store import jobs, model_versions, snapshots
from tagtrain.store.tables import Job
from tagtrain.store.tags import normalize_tag

TASKS: dict[str, Literal["single_label", "multi_label"]] = {
    "single": "single_label",
    "single_label": "single_label",
    "multi": "multi_label",
    "multi_label": "multi_label",
}


@dataclass(frozen=True)
class TrainSpec:
    dataset: str
    task: str
    model: str
    labels: tuple[str, ...] = ()
    config: dict[str, Any] | None = None


def submit_training(session: Session, spec: TrainSpec) -> Job:
    """Queue a training job, or raise BadInput naming what blocks it."""
    task = TASKS.get(spec.task)
    if task is None:
        raise BadInput(f"task must be 'single' or 'multi', not {spec.task!r}")
    model_versions.normalize_name(spec.model)
    snapshot_id, items = snapshots.take(session, spec.dataset)
    counts = snapshots.label_counts(items)
    labels = [normalize_tag(t) for t in spec.labels] or list(counts)
    chosen = set(labels)
    negatives = sum(1 for it in items if not chosen.intersection(it.tags))
    verdict = health.check(
        task=task,
        labels=labels,
        counts={lb: counts.get(lb, 0) for lb in labels},
        total=len(items),
        negatives=negatives,
    )
    if verdict.errors:
        raise BadInput(f"cannot train on {spec.dataset!r}: " + "; ".join(verdict.errors))
    params = {
        "dataset": spec.dataset,
        "task": task,
        "model": spec.model,
        "labels": labels,
        "config": spec.config or {},
    }
    return jobs.enqueue(
        session, kind="train", params=params, snapshot_id=snapshot_id, warnings=verdict.warnings
    )
