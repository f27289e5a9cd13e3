"""/api/v1/models (versions, reports, packages) and the vision/ML-model services over HTTP.

The services load packages through :mod:`tagtrain.runtime` (the same code the agent runs), once per
package, and name a model by ``NAME`` (newest version) or ``NAME@VERSION``.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tagtrain.machine_config import Classifications
from tagtrain.package import zip_package
from tagtrain.runtime import Classifier
from tagtrain.runtime.tensors import decode_tensors, encode_tensors
from tagtrain.server.deps import CurrentUser, SettingsDep, StoreDep
from tagtrain.settings import Settings
from tagtrain.store import Store, model_versions
from tagtrain.store.tables import ModelVersion

router = APIRouter(tags=["models"])
_load_lock = threading.Lock()


class VersionOut(BaseModel):
    version: int
    dataset: str
    labels: list[str]
    metrics: dict[str, Any]
    job_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, row: ModelVersion) -> VersionOut:
        return cls(
            version=row.version,
            dataset=row.dataset,
            labels=json.loads(row.labels),
            metrics=json.loads(row.metrics),
            job_id=row.job_id,
            created_at=row.created_at,
        )


class VersionDetail(VersionOut):
    report: dict[str, Any]


class ModelOut(BaseModel):
    name: str
    task: str
    versions: list[VersionOut]


@router.get("/api/v1/models", response_model=list[ModelOut])
def list_models(store: StoreDep, _user: CurrentUser) -> list[ModelOut]:
    with store.transaction() as session:
        return [
            ModelOut(name=m.name, task=m.task, versions=[VersionOut.of(v) for v in versions])
            for m, versions in model_versions.list_models(session)
        ]


@router.get("/api/v1/models/{name}/versions/{version}", response_model=VersionDetail)
def get_version(store: StoreDep, _user: CurrentUser, name: str, version: int) -> VersionDetail:
    """One version with its report: curves, per-class figures, test predictions, warnings."""
    with store.transaction() as session:
        _model, row = model_versions.resolve(session, f"{name}@{version}")
        return VersionDetail(**VersionOut.of(row).model_dump(), report=json.loads(row.report))


@router.get("/api/v1/models/{name}/versions/{version}/package.zip", response_class=Response)
def package_zip(
    store: StoreDep, settings: SettingsDep, _user: CurrentUser, name: str, version: int
) -> Response:
    """The model package as a zip (model.onnx, model.int8.onnx, labels.txt, manifest.json...)."""
    folder = _package_dir(store, settings, f"{name}@{version}")
    return Response(
        zip_package(folder),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}-{version}.zip"'},
    )


def _package_dir(store: Store, settings: Settings, ref: str) -> Path:
    with store.transaction() as session:
        _model, row = model_versions.resolve(session, ref)
        return settings.data / row.package_dir


def classifier_for(request: Request, ref: str) -> Classifier:
    """The loaded runtime of a model version, verified once and kept for later requests."""
    app = request.app
    folder = _package_dir(app.state.store, app.state.settings, ref)
    cache: dict[Path, Classifier] = app.state.__dict__.setdefault("classifiers", {})
    with _load_lock:
        if folder not in cache:
            cache[folder] = Classifier.load(folder)
        return cache[folder]


@router.post("/api/v1/vision/{name}/classifications", response_model=Classifications)
async def classifications(
    request: Request,
    _user: CurrentUser,
    name: str,
    image: Annotated[bytes, Body(media_type="application/octet-stream")],
    n: Annotated[int, Query(description="Top n; 0 or less returns all.")] = 3,
) -> Classifications:
    """GetClassifications: the body is the image bytes (JPEG or PNG)."""
    classifier = await run_in_threadpool(classifier_for, request, name)
    found = await run_in_threadpool(classifier.classify_bytes, image, n, name="the uploaded image")
    return Classifications.of(found)


@router.get("/api/v1/vision/{name}/properties")
async def properties(request: Request, _user: CurrentUser, name: str) -> dict[str, bool]:
    await run_in_threadpool(classifier_for, request, name)
    return {
        "classifications_supported": True,
        "detections_supported": False,
        "object_point_clouds_supported": False,
    }


@router.get("/api/v1/mlmodel/{name}/metadata")
async def metadata(request: Request, _user: CurrentUser, name: str) -> dict[str, Any]:
    classifier = await run_in_threadpool(classifier_for, request, name)
    return classifier.metadata()


@router.post("/api/v1/mlmodel/{name}/infer")
async def infer(
    request: Request, _user: CurrentUser, name: str, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Infer: ``{"tensors": {"image": {"dtype": "uint8", "shape": [N, H, W, 3], "data": base64}}}``
    -> ``{"tensors": {"probability": ...}}`` in the same form."""
    tensors = decode_tensors(body.get("tensors"))
    classifier = await run_in_threadpool(classifier_for, request, name)
    return {"tensors": encode_tensors(await run_in_threadpool(classifier.infer, tensors))}
