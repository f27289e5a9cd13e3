"""/api/v1/jobs: submit training, follow it (Server-Sent Events), cancel it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tagtrain.jobs.submit import TrainSpec, submit_training
from tagtrain.server.deps import CurrentUser, StoreDep
from tagtrain.store import Store, jobs
from tagtrain.store.tables import Job

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
POLL_S = 0.5


class TrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    task: str = Field(description="'single' or 'multi'")
    model: str = Field(description="Model name; each training adds a version.")
    labels: list[str] = Field(default=[], description="Default: every tag in the dataset.")
    config: dict[str, Any] = Field(default={}, description="Advanced training settings.")


class JobOut(BaseModel):
    id: int
    kind: str
    state: str
    params: dict[str, Any]
    progress: dict[str, Any]
    warnings: list[str]
    error: str | None
    result_version_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            kind=job.kind,
            state=job.state,
            params=json.loads(job.params),
            progress=json.loads(job.progress),
            warnings=json.loads(job.warnings),
            error=job.error,
            result_version_id=job.result_version_id,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


@router.post("/train", response_model=JobOut, status_code=202)
def submit(store: StoreDep, _user: CurrentUser, body: TrainIn) -> JobOut:
    """Queue a training job; a worker process runs it. Refused (400) below the minimums."""
    spec = TrainSpec(body.dataset, body.task, body.model, tuple(body.labels), body.config)
    with store.transaction() as session:
        return JobOut.of(submit_training(session, spec))


@router.get("", response_model=list[JobOut])
def list_jobs(store: StoreDep, _user: CurrentUser) -> list[JobOut]:
    with store.transaction() as session:
        return [JobOut.of(j) for j in jobs.list_jobs(session)]


@router.get("/{job_id}", response_model=JobOut)
def get_job(store: StoreDep, _user: CurrentUser, job_id: int) -> JobOut:
    with store.transaction() as session:
        return JobOut.of(jobs.get(session, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel(store: StoreDep, _user: CurrentUser, job_id: int) -> JobOut:
    """Cancel: a queued job at once, a running one at its next check (about a second)."""
    with store.transaction() as session:
        return JobOut.of(jobs.request_cancel(session, job_id))


@router.get("/{job_id}/events")
async def events(
    request: Request, store: StoreDep, _user: CurrentUser, job_id: int
) -> StreamingResponse:
    """Server-Sent Events: each progress event as `data: {...}`, then one `event: end` with the
    job's final state."""
    await run_in_threadpool(_job, store, job_id)  # 404 before the stream starts
    return StreamingResponse(_stream(request, store, job_id), media_type="text/event-stream")


def _job(store: Store, job_id: int) -> JobOut:
    with store.transaction() as session:
        return JobOut.of(jobs.get(session, job_id))


def _new_events(store: Store, job_id: int, after: int) -> list[tuple[int, dict[str, Any]]]:
    with store.transaction() as session:
        return jobs.events_after(session, job_id, after)


async def _stream(request: Request, store: Store, job_id: int) -> AsyncIterator[str]:
    last = 0
    while not await request.is_disconnected():
        for event_id, payload in await run_in_threadpool(_new_events, store, job_id, last):
            last = event_id
            yield f"id: {event_id}\ndata: {json.dumps(payload)}\n\n"
        job = await run_in_threadpool(_job, store, job_id)
        if job.state in jobs.FINISHED:
            yield f"event: end\ndata: {job.model_dump_json()}\n\n"
            return
        await asyncio.sleep(POLL_S)
