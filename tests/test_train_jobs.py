"""Training end to end, as a person runs it: the CLI (train, export, predict, evaluate) and the
worker process (progress events, cancel mid-way, a training process killed mid-job). Real photos,
real torch, real packages; slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tagtrain.ingest import ImportOptions, import_paths
from tagtrain.jobs.submit import TrainSpec, submit_training
from tagtrain.settings import Settings
from tagtrain.store import Store, jobs, open_store
from tests.conftest import ROOT, TRASHNET

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("training")]
TAGTRAIN = str(Path(sys.executable).with_name("tagtrain"))
CLASSES = ("cardboard", "glass", "metal")
PER_CLASS = 20


def _env(data: Path) -> dict[str, str]:
    # A short fine-tune budget keeps the test quick; the defaults are measured by `make bench`.
    return dict(os.environ, TAGTRAIN_DATA=str(data), TAGTRAIN_TRAIN_TIME_BUDGET_S="6")


def _run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TAGTRAIN, *args], capture_output=True, text=True, env=_env(data), timeout=600, check=False
    )


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """60 trashnet photos of three classes, a folder per class."""
    root = tmp_path / "photos"
    for cls in CLASSES:
        (root / cls).mkdir(parents=True)
        for src in sorted((TRASHNET / cls).glob("*.jpg"))[:PER_CLASS]:
            (root / cls / src.name).write_bytes(src.read_bytes())
    return root


def test_cli_train_export_predict_evaluate(tmp_path: Path, photos: Path) -> None:
    data = tmp_path / "data"
    assert (
        _run(data, "import", str(photos), "--dataset", "trash", "--tags-from-folders").returncode
        == 0
    )

    trained = _run(
        data, "train", "--dataset", "trash", "--task", "single", "--model", "trash", "--json"
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["model"] == "trash"
    assert summary["version"] == 1
    assert summary["labels"][:3] == list(CLASSES)
    assert summary["metrics"]["accuracy"] > 1 / len(CLASSES)  # better than chance, out of fold
    assert summary["evaluation"]["method"] == "cross-validation"
    assert summary["metrics"]["n"] == sum(1 for _ in photos.rglob("*.jpg"))  # every photo scored

    out = tmp_path / "pkg"
    assert _run(data, "export", "trash@1", "--out", str(out)).returncode == 0
    assert {p.name for p in out.iterdir()} >= {
        "model.onnx", "model.int8.onnx", "labels.txt", "manifest.json", "golden.npz",
    }  # fmt: skip
    photo = next((photos / "glass").glob("*.jpg"))
    predicted = _run(data, "predict", str(out), str(photo), "--json", "-n", "0")
    assert predicted.returncode == 0, predicted.stderr
    found = json.loads(predicted.stdout)["predictions"][0]["classifications"]
    assert sum(c["confidence"] for c in found) == pytest.approx(1.0, abs=1e-4)

    scored = _run(data, "evaluate", str(out), str(photos), "--tags-from-folders", "--json")
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["scored"] == len(CLASSES) * PER_CLASS
    # A plain onnxruntime script reading only manifest.json and labels.txt scores it the same.
    assert _plain_accuracy(out, photos) == pytest.approx(report["metrics"]["accuracy"], abs=1e-9)

    again = _run(
        data,
        "train",
        "--dataset",
        "trash",
        "--task",
        "single",
        "--model",
        "trash",
        "--labels",
        "glass",
    )
    assert again.returncode == 2
    assert "at least 2 labels" in again.stderr


def _plain_accuracy(package: Path, photos: Path) -> float:
    files = sorted(photos.glob("*/*.jpg"))
    res = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "plain_score.py"), str(package), *map(str, files)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    right = 0
    for line in res.stdout.splitlines():
        row = json.loads(line)
        best = max(row["probabilities"], key=row["probabilities"].get)
        right += best == Path(row["file"]).parent.name
    return right / len(files)


@pytest.fixture
def worker_store(
    tmp_path: Path, photos: Path
) -> Iterator[tuple[Store, Settings, subprocess.Popen[bytes]]]:
    settings = Settings(data=tmp_path / "data", worker=False, worker_poll_s=0.2)
    store = open_store(settings)
    import_paths(store, settings, [photos], ImportOptions(dataset="trash", tags_from_folders=True))
    worker = subprocess.Popen(  # the same command the web app's LocalWorkerRunner starts
        [sys.executable, "-m", "tagtrain.train.worker"], env=_env(settings.data)
    )
    yield store, settings, worker
    worker.terminate()
    worker.wait(timeout=30)
    store.close()


def _submit(store: Store) -> int:
    with store.transaction() as session:
        return submit_training(session, TrainSpec("trash", "single", "trash")).id


def _job(store: Store, job_id: int) -> Any:
    with store.transaction() as session:
        return jobs.get(session, job_id)


def _wait(store: Store, job_id: int, done: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _job(store, job_id)
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stuck in {_job(store, job_id).state}")


def test_worker_runs_cancels_and_survives_a_killed_training(
    worker_store: tuple[Store, Settings, subprocess.Popen[bytes]],
) -> None:
    store, _settings, worker = worker_store
    killed, canceled, completed = _submit(store), _submit(store), _submit(store)

    # A training process killed mid-job: the job is failed with the reason, the worker goes on.
    running = _wait(
        store,
        killed,
        lambda j: j.state == "running" and j.worker_pid != worker.pid and j.progress != "{}",
    )
    os.kill(running.worker_pid, signal.SIGKILL)
    failed = _wait(store, killed, lambda j: j.state != "running")
    assert failed.state == "failed"
    assert "killed (signal 9)" in failed.error

    # Canceled mid-way: stops at its next check, nothing published.
    _wait(store, canceled, lambda j: j.state == "running" and j.progress != "{}")
    with store.transaction() as session:
        jobs.request_cancel(session, canceled)
    stopped = _wait(store, canceled, lambda j: j.state != "running", timeout=120)
    assert stopped.state == "canceled"
    assert stopped.result_version_id is None

    # And the next queued job still completes, with progress events on the way.
    done = _wait(store, completed, lambda j: j.state in jobs.FINISHED)
    assert done.state == "completed", done.error
    assert done.result_version_id is not None
    with store.transaction() as session:
        phases = {e["phase"] for _, e in jobs.events_after(session, completed, 0)}
    assert len(phases) >= 3
    assert worker.poll() is None
