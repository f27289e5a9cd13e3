"""Trained models and their versions; each version points at its package directory."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tagtrain.errors import BadInput, Conflict, NotFound
from tagtrain.store.tables import Model, ModelVersion

MAX_NAME = 100


def normalize_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > MAX_NAME or not all(c.isalnum() or c in "-_." for c in name):
        raise BadInput(f"model name {raw!r} must be 1-{MAX_NAME} letters, digits, '-', '_' or '.'")
    return name


def get_or_create_model(session: Session, name: str, task: str) -> Model:
    name = normalize_name(name)
    model = session.scalar(select(Model).where(Model.name == name))
    if model is None:
        model = Model(name=name, task=task)
        session.add(model)
        session.flush()
    elif model.task != task:
        raise Conflict(f"model {name!r} is {model.task}; choose another name for a {task} model")
    return model


def get_model(session: Session, name: str) -> Model:
    model = session.scalar(select(Model).where(Model.name == name))
    if model is None:
        raise NotFound(f"no model named {name!r}; train one first")
    return model


def next_version(session: Session, model: Model) -> int:
    top = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
    )
    return (top or 0) + 1


def add_version(
    session: Session,
    *,
    model: Model,
    version: int,
    job_id: int | None,
    snapshot_id: int | None,
    dataset: str,
    labels: list[str],
    metrics: dict[str, Any],
    report: dict[str, Any],
    package_dir: str,
) -> ModelVersion:
    row = ModelVersion(
        model_id=model.id,
        version=version,
        job_id=job_id,
        snapshot_id=snapshot_id,
        dataset=dataset,
        labels=json.dumps(labels),
        metrics=json.dumps(metrics),
        report=json.dumps(report),
        package_dir=package_dir,
    )
    session.add(row)
    session.flush()
    return row


def resolve(session: Session, ref: str) -> tuple[Model, ModelVersion]:
    """``NAME`` (newest version) or ``NAME@VERSION``."""
    name, _, ver = ref.partition("@")
    model = get_model(session, name)
    stmt = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if ver:
        if not ver.isdigit():
            raise BadInput(f"version in {ref!r} must be a number, as in {name}@2")
        stmt = stmt.where(ModelVersion.version == int(ver))
    found = session.scalar(stmt.order_by(ModelVersion.version.desc()).limit(1))
    if found is None:
        raise NotFound(f"model {name!r} has no version {ver or '(none trained yet)'}")
    return model, found


def list_models(session: Session) -> list[tuple[Model, list[ModelVersion]]]:
    models = list(session.scalars(select(Model).order_by(Model.name)))
    versions = session.scalars(select(ModelVersion).order_by(ModelVersion.version.desc())).all()
    by_model: dict[int, list[ModelVersion]] = {m.id: [] for m in models}
    for v in versions:
        by_model.setdefault(v.model_id, []).append(v)
    return [(m, by_model[m.id]) for m in models]
