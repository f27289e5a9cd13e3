"""The training pages: Models (every model, its versions and the recent jobs), one version's report
(with a compare view and the try-it box), and the live view of a training job.

The pages are rendered here from the store; the ES modules in ``static/`` add what must be live:
the job's Server-Sent Events, the curves (inline SVG) and the try-it box. Figures come from the
version's report on images its models did not train on (:func:`tagtrain.package.metrics.report`), read by
:mod:`tagtrain.server.report_view`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tagtrain.errors import NotFound, TagtrainError
from tagtrain.server.deps import StoreDep
from tagtrain.server.report_view import (
    FIGURES,
    Figure,
    confusion_rows,
    figures,
    headline,
    wrong_predictions,
)
from tagtrain.server.routes.web import PageUser, render, render_error
from tagtrain.store import jobs as job_store
from tagtrain.store import model_versions
from tagtrain.store.tables import Job, Model, ModelVersion

router = APIRouter(include_in_schema=False)
RECENT_JOBS = 20
MAX_WRONG = 60


@dataclass(frozen=True)
class VersionRow:
    name: str
    task: str
    version: int
    dataset: str
    labels: list[str]
    metrics: dict[str, Any]
    report: dict[str, Any]
    job_id: int | None
    created_at: datetime

    @property
    def headline(self) -> Figure | None:
        return headline(self.metrics)

    @property
    def figures(self) -> list[Figure]:
        return figures(self.metrics)

    @property
    def cross_validated(self) -> bool:
        """Whether the figures are cross-validated over every image (else a held-out test)."""
        evaluation = (self.report.get("selection") or {}).get("evaluation") or {}
        return bool(evaluation.get("method") == "cross-validation")


@dataclass(frozen=True)
class JobRow:
    id: int
    state: str
    model: str
    dataset: str
    task: str
    labels: list[str]
    warnings: list[str]
    error: str | None
    created_at: datetime
    version: tuple[str, int] | None


def _version_row(model: Model, row: ModelVersion) -> VersionRow:
    return VersionRow(
        name=model.name,
        task=model.task,
        version=row.version,
        dataset=row.dataset,
        labels=json.loads(row.labels),
        metrics=json.loads(row.metrics),
        report=json.loads(row.report),
        job_id=row.job_id,
        created_at=row.created_at,
    )


def _version_refs(session: Session, ids: list[int]) -> dict[int, tuple[str, int]]:
    """Model version row ids -> (model name, version number)."""
    if not ids:
        return {}
    rows = session.execute(
        select(ModelVersion.id, Model.name, ModelVersion.version)
        .join(Model, Model.id == ModelVersion.model_id)
        .where(ModelVersion.id.in_(ids))
    ).all()
    return {i: (name, version) for i, name, version in rows}


def _job_rows(session: Session, found: list[Job]) -> list[JobRow]:
    refs = _version_refs(session, [j.result_version_id for j in found if j.result_version_id])
    out = []
    for job in found:
        params = json.loads(job.params)
        out.append(
            JobRow(
                id=job.id,
                state=job.state,
                model=str(params.get("model", "")),
                dataset=str(params.get("dataset", "")),
                task=str(params.get("task", "")),
                labels=list(params.get("labels") or []),
                warnings=json.loads(job.warnings),
                error=job.error,
                created_at=job.created_at,
                version=refs.get(job.result_version_id or 0),
            )
        )
    return out


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, store: StoreDep, user: PageUser) -> Response:
    """Every model with its versions (newest first), and the recent training jobs."""
    with store.transaction() as session:
        models = [
            (m, [_version_row(m, v) for v in versions])
            for m, versions in model_versions.list_models(session)
        ]
        recent = _job_rows(session, job_store.list_jobs(session, RECENT_JOBS))
    return render(request, "models.html", user=user, tab="models", models=models, jobs=recent)


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, store: StoreDep, user: PageUser, name: str) -> Response:
    """One model's versions side by side: every headline figure of each."""
    try:
        with store.transaction() as session:
            model = model_versions.get_model(session, name)
            rows = [
                _version_row(m, v)
                for m, versions in model_versions.list_models(session)
                if m.id == model.id
                for v in versions
            ]
    except TagtrainError as exc:
        return render_error(request, user, exc)
    keys = [(k, n) for k, n in FIGURES if any(k in r.metrics for r in rows)]
    return render(
        request, "model.html", user=user, tab="models", model_name=name, rows=rows, keys=keys
    )


@router.get("/models/{name}/versions/{version}", response_class=HTMLResponse)
def version_page(
    request: Request,
    store: StoreDep,
    user: PageUser,
    name: str,
    version: int,
    compare: int | None = None,
) -> Response:
    """A version's report, its package, the try-it box, and (``?compare=N``) another version."""
    try:
        with store.transaction() as session:
            model, row = model_versions.resolve(session, f"{name}@{version}")
            current = _version_row(model, row)
            others = [
                v.version
                for m, versions in model_versions.list_models(session)
                if m.id == model.id
                for v in versions
                if v.version != version
            ]
            other = None
            if compare is not None:
                other = _version_row(*model_versions.resolve(session, f"{name}@{compare}"))
    except TagtrainError as exc:
        return render_error(request, user, exc)
    wrong = wrong_predictions(current.report, current.labels)
    return render(
        request,
        "version.html",
        user=user,
        tab="models",
        v=current,
        other=other,
        others=others,
        confusion=confusion_rows(current.metrics),
        wrong=wrong[:MAX_WRONG],
        wrong_total=len(wrong),
        curves=current.report.get("curves") or [],
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, store: StoreDep, user: PageUser, job_id: int) -> Response:
    """A training job, live: phase, progress, ETA and curves from its event stream; Cancel."""
    try:
        with store.transaction() as session:
            job = _job_rows(session, [job_store.get(session, job_id)])[0]
    except TagtrainError as exc:
        return render_error(request, user, exc)
    return render(request, "job.html", user=user, tab="models", job=job)


@router.get("/jobs/{job_id}/report")
def job_report(request: Request, store: StoreDep, user: PageUser, job_id: int) -> Response:
    """The report of the version a completed job made; the job page while it has none."""
    try:
        with store.transaction() as session:
            job = _job_rows(session, [job_store.get(session, job_id)])[0]
            if job.version is None and job.state == "completed":
                raise NotFound(f"the model version of job {job_id} was deleted")
    except TagtrainError as exc:
        return render_error(request, user, exc)
    if job.version is None:
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)
    name, version = job.version
    return RedirectResponse(f"/models/{quote(name)}/versions/{version}", status_code=303)
