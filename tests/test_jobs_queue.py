"""The job queue without training: submit checks, claiming, cancel, orphan recovery, the API."""

from __future__ import annotations

import json
import os

import pytest
from fastapi.testclient import TestClient

from tagtrain.errors import BadInput, Conflict
from tagtrain.ingest import ImportOptions, import_paths
from tagtrain.jobs.submit import TrainSpec, submit_training
from tagtrain.settings import Settings
from tagtrain.store import Store, jobs
from tests.conftest import TRASHNET


@pytest.fixture
def trash(store: Store, settings: Settings) -> Store:
    """The trashnet photos of two classes (20 each) in dataset 'trash'."""
    folders = [TRASHNET / "glass", TRASHNET / "metal"]
    paths = [p for f in folders for p in sorted(f.glob("*.jpg"))[:20]]
    options = ImportOptions(dataset="trash", tags_from_folders=True)
    report = import_paths(store, settings, paths, options)
    assert report.added == 40
    return store


def test_submit_queues_a_job_with_a_frozen_snapshot(trash: Store) -> None:
    with trash.transaction() as session:
        job = submit_training(session, TrainSpec("trash", "single", "trash-model"))
        params = json.loads(job.params)
    assert job.state == "queued"
    assert params["labels"] == ["glass", "metal"]
    assert params["task"] == "single_label"
    with trash.transaction() as session:
        from tagtrain.store import snapshots

        assert job.snapshot_id is not None
        items = snapshots.load(session, job.snapshot_id)
    assert len(items) == 40
    assert {t for it in items for t in it.tags} == {"glass", "metal"}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (TrainSpec("trash", "single", "m", ("glass",)), "at least 2 labels"),
        (TrainSpec("trash", "single", "m", ("glass", "paper")), "no image carries 'paper'"),
        (TrainSpec("trash", "both", "m"), "task must be"),
        (TrainSpec("trash", "single", "bad name!"), "model name"),
    ],
)
def test_submit_refuses_what_cannot_train(trash: Store, spec: TrainSpec, words: str) -> None:
    with pytest.raises(BadInput, match=words), trash.transaction() as session:
        submit_training(session, spec)


def test_submit_refuses_labels_below_ten_images(store: Store, settings: Settings) -> None:
    paths = (
        sorted((TRASHNET / "glass").glob("*.jpg"))[:12]
        + sorted((TRASHNET / "metal").glob("*.jpg"))[:5]
    )
    import_paths(store, settings, paths, ImportOptions(dataset="small", tags=("x",)))
    with store.transaction() as session:
        from tagtrain.store.images import by_ids
        from tagtrain.store.tags import add_tags

        add_tags(session, by_ids(range(1, 13)), ["glass"])
        add_tags(session, by_ids(range(13, 18)), ["metal"])
    with pytest.raises(BadInput, match="'metal' must have at least 10"), store.transaction() as s:
        submit_training(s, TrainSpec("small", "single", "m", ("glass", "metal")))


def test_claim_is_exclusive_and_cancel_and_recovery_work(trash: Store) -> None:
    with trash.transaction() as session:
        a = submit_training(session, TrainSpec("trash", "single", "m")).id
        b = submit_training(session, TrainSpec("trash", "single", "m")).id
    with trash.transaction() as session:
        assert jobs.next_queued(session) == a
        assert jobs.claim(session, a)
        assert not jobs.claim(session, a)
        jobs.request_cancel(session, b)  # queued: canceled at once
        assert jobs.get(session, b).state == "canceled"
        with pytest.raises(Conflict):
            jobs.request_cancel(session, b)
        jobs.request_cancel(session, a)  # running: asked to stop
        assert jobs.cancel_requested(session, a)
        jobs.get(session, a).worker_pid = 2**22 + 12345  # no such process
        assert jobs.recover_orphans(session) == [a]
        assert jobs.get(session, a).state == "failed"
        assert "stopped unexpectedly" in (jobs.get(session, a).error or "")
    with trash.transaction() as session:
        c = submit_training(session, TrainSpec("trash", "single", "m")).id
        assert jobs.claim(session, c, pid=os.getpid())
        assert jobs.recover_orphans(session) == []  # our own process is alive


def test_jobs_api_submit_list_cancel_and_events(api: TestClient, trash: Store) -> None:
    bad = api.post(
        "/api/v1/jobs/train",
        json={"dataset": "trash", "task": "single", "model": "m", "labels": ["glass"]},
    )
    assert bad.status_code == 400
    assert "at least 2 labels" in bad.json()["detail"]
    res = api.post("/api/v1/jobs/train", json={"dataset": "trash", "task": "single", "model": "m"})
    assert res.status_code == 202, res.text
    job = res.json()
    assert job["state"] == "queued"
    assert [j["id"] for j in api.get("/api/v1/jobs").json()] == [job["id"]]
    canceled = api.post(f"/api/v1/jobs/{job['id']}/cancel").json()
    assert canceled["state"] == "canceled"
    with api.stream("GET", f"/api/v1/jobs/{job['id']}/events") as stream:
        body = "".join(stream.iter_text())
    assert "event: end" in body
    assert '"state":"canceled"' in body
    assert api.get("/api/v1/jobs/999").status_code == 404
