"""Run one queued training job: snapshot -> train -> package -> model version.

Progress events go to the job's event table (throttled), cancellation is read from the job row,
and every way a job can end (done, canceled, bad input, crash) is recorded on it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tagtrain.errors import Cancelled, TagtrainError
from tagtrain.package.write import write_package
from tagtrain.settings import Settings
from tagtrain.store import Store, jobs, model_versions, snapshots
from tagtrain.train.config import TrainConfig
from tagtrain.train.examples import Example, TrainRequest
from tagtrain.train.progress import ProgressEvent
from tagtrain.train.trainer import TrainResult, train

log = logging.getLogger(__name__)
EVENT_EVERY_S = 0.5
CANCEL_CHECK_EVERY_S = 1.0


@dataclass
class _Reporter:
    """Stores progress events (at most every EVENT_EVERY_S, always on a phase change) and
    answers "should I stop?" from the job row (at most every CANCEL_CHECK_EVERY_S)."""

    store: Store
    job_id: int
    on_event: Callable[[ProgressEvent], None] | None = None
    _last_phase: str = ""
    _last_write: float = 0.0
    _last_check: float = 0.0
    _stop: bool = False
    started: float = field(default_factory=time.monotonic)

    def __call__(self, event: ProgressEvent) -> None:
        if self.on_event:
            self.on_event(event)
        now = time.monotonic()
        if event.phase == self._last_phase and now - self._last_write < EVENT_EVERY_S:
            return
        self._last_phase, self._last_write = event.phase, now
        payload = asdict(event) | {"elapsed_s": round(now - self.started, 2)}
        with self.store.transaction() as session:
            jobs.add_event(session, self.job_id, payload)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._last_check >= CANCEL_CHECK_EVERY_S:
            self._last_check = now
            with self.store.transaction() as session:
                self._stop = jobs.cancel_requested(session, self.job_id)
        return self._stop


def run_training_job(
    store: Store,
    settings: Settings,
    job_id: int,
    on_event: Callable[[ProgressEvent], None] | None = None,
) -> int | None:
    """Run a claimed job to its end; returns the new model version id, or None if it did not
    complete (the job row says why)."""
    reporter = _Reporter(store, job_id, on_event)
    try:
        version_id = _run(store, settings, job_id, reporter)
    except Cancelled:
        _end(store, job_id, "canceled", "canceled by request")
        return None
    except TagtrainError as exc:
        _end(store, job_id, "failed", exc.message)
        return None
    except Exception as exc:  # a bug or an environment failure: record it, keep the worker alive
        log.exception("training job %s crashed", job_id)
        _end(store, job_id, "failed", f"unexpected error: {type(exc).__name__}: {exc}")
        return None
    return version_id


def _end(store: Store, job_id: int, state: str, reason: str) -> None:
    with store.transaction() as session:
        jobs.finish(session, job_id, state, error=reason)


def _run(store: Store, settings: Settings, job_id: int, reporter: _Reporter) -> int:
    with store.transaction() as session:
        job = jobs.get(session, job_id)
        params: dict[str, Any] = _json(job.params)
        items = snapshots.load(session, job.snapshot_id) if job.snapshot_id else []
        snapshot_id = job.snapshot_id
    request = TrainRequest(
        task=params["task"],
        labels=tuple(params["labels"]),
        examples=tuple(
            Example(i.image_id, i.sha256, i.tags, i.machine, i.captured_at) for i in items
        ),
    )
    config = _config(settings, params.get("config") or {})
    result = train(
        request,
        load_image=store.originals.get,
        cache_dir=settings.cache_dir / "embeddings",
        config=config,
        progress=reporter,
        should_stop=reporter.should_stop,
    )
    reporter(ProgressEvent(phase="export", step=0, total=1, message="writing the model package"))
    counts = snapshots.label_counts(items)
    label_counts = {lb: counts.get(lb, 0) for lb in params["labels"]}
    return _publish(store, settings, job_id, snapshot_id, params, label_counts, result)


def _config(settings: Settings, overrides: dict[str, Any]) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise TagtrainError(f"unknown training settings: {', '.join(sorted(unknown))}")
    merged = {"time_budget_s": settings.train_time_budget_s} | overrides
    return TrainConfig(**merged)


def _publish(
    store: Store,
    settings: Settings,
    job_id: int,
    snapshot_id: int | None,
    params: dict[str, Any],
    label_counts: dict[str, int],
    result: TrainResult,
) -> int:
    with store.transaction() as session:
        model = model_versions.get_or_create_model(session, params["model"], params["task"])
        version = model_versions.next_version(session, model)
        model_id, model_name = model.id, model.name
    relative = f"packages/{model_id}/{version}"
    write_package(
        settings.data / relative,
        model=result.model,
        name=model_name,
        version=version,
        task=result.task,
        labels=list(result.labels),
        thresholds=result.thresholds,
        metrics=result.metrics,
        dataset={"name": params["dataset"], "snapshot": snapshot_id, "counts": label_counts},
        backbone=result.backbone,
        input_size=int(result.golden.shape[1]),
        calibration=result.calibration,
        golden=result.golden,
        test_inputs=result.test_inputs,
    )
    report = {
        "curves": result.curves,
        "splits": result.splits,
        "split_sizes": {name: len(ids) for name, ids in result.splits.items()},
        "test_predictions": result.test_predictions,
        "warnings": result.warnings,
        "thresholds": result.thresholds,
        "seconds": result.seconds,
        "selection": result.selection,  # what validation chose and why: shown on the report
    }
    with store.transaction() as session:
        model = model_versions.get_model(session, model_name)
        row = model_versions.add_version(
            session,
            model=model,
            version=version,
            job_id=job_id,
            snapshot_id=snapshot_id,
            dataset=params["dataset"],
            labels=list(result.labels),
            metrics=result.metrics,
            report=report,
            package_dir=relative,
        )
        jobs.add_warnings(session, job_id, result.warnings)
        jobs.finish(session, job_id, "completed", version_id=row.id)
        return row.id


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
