"""The job queue in the database: enqueue, claim, progress events, finish, cancel, recover.

States: queued -> running -> completed | failed | canceled. A job is claimed with one conditional
UPDATE, so two workers (or a worker and the CLI) never run the same job. Jobs left 'running' by a
process that no longer exists are marked failed by :func:`recover_orphans` when a worker starts;
queued jobs simply wait, so they survive a server restart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tagtrain.errors import Conflict, NotFound
from tagtrain.processes import pid_alive
from tagtrain.store.tables import Job, JobEvent, utcnow

FINISHED = ("completed", "failed", "canceled")


def enqueue(
    session: Session,
    *,
    kind: str,
    params: dict[str, Any],
    snapshot_id: int | None,
    warnings: Sequence[str] = (),
) -> Job:
    job = Job(
        kind=kind,
        params=json.dumps(params),
        snapshot_id=snapshot_id,
        warnings=json.dumps(list(warnings)),
    )
    session.add(job)
    session.flush()
    return job


def get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}")
    return job


def list_jobs(session: Session, limit: int = 50) -> list[Job]:
    return list(session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)))


def claim(session: Session, job_id: int, pid: int | None = None) -> bool:
    """Mark a queued job running for this process; False if someone else has it."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == "queued")
        .values(state="running", started_at=utcnow(), worker_pid=pid or os.getpid())
    )
    return bool(getattr(result, "rowcount", 0))


def next_queued(session: Session) -> int | None:
    return session.scalar(select(Job.id).where(Job.state == "queued").order_by(Job.id).limit(1))


def add_event(session: Session, job_id: int, payload: dict[str, Any]) -> None:
    text = json.dumps(payload)
    session.add(JobEvent(job_id=job_id, payload=text))
    session.execute(update(Job).where(Job.id == job_id).values(progress=text))


def events_after(session: Session, job_id: int, after_id: int) -> list[tuple[int, dict[str, Any]]]:
    rows = session.execute(
        select(JobEvent.id, JobEvent.payload)
        .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
        .order_by(JobEvent.id)
    ).all()
    return [(i, json.loads(p)) for i, p in rows]


def finish(
    session: Session,
    job_id: int,
    state: str,
    *,
    error: str | None = None,
    version_id: int | None = None,
) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(state=state, error=error, finished_at=utcnow(), result_version_id=version_id)
    )


def add_warnings(session: Session, job_id: int, warnings: Sequence[str]) -> None:
    job = get(session, job_id)
    job.warnings = json.dumps([*json.loads(job.warnings), *warnings])


def request_cancel(session: Session, job_id: int) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next check."""
    job = get(session, job_id)
    if job.state in FINISHED:
        raise Conflict(f"job {job_id} has {job.state} already")
    if job.state == "queued":
        finish(session, job_id, "canceled", error="canceled before it started")
    else:
        job.cancel_requested = True
    return job


def cancel_requested(session: Session, job_id: int) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def recover_orphans(session: Session) -> list[int]:
    """Fail 'running' jobs whose process is gone (killed worker, power loss)."""
    orphans = [
        job.id
        for job in session.scalars(select(Job).where(Job.state == "running"))
        if not pid_alive(job.worker_pid)
    ]
    for job_id in orphans:
        finish(session, job_id, "failed", error="the worker running this job stopped unexpectedly")
    return orphans
    return True
