"""Model versions to deploy in the machine tests: stored the way a training job leaves them, each
with a copy of the real tiny package from :mod:`tests.packages` (built once per test process)."""

from __future__ import annotations

import shutil

import pytest

from tagtrain.settings import Settings
from tagtrain.store import Store, model_versions
from tests.packages import CLASSES, built


def seed_model(
    store: Store,
    settings: Settings,
    factory: pytest.TempPathFactory,
    name: str = "trash-tiny",
    versions: tuple[int, ...] = (1, 2),
) -> None:
    source = built("tiny", "single_label", factory)
    for version in versions:
        relative = f"packages/{name}/{version}"
        shutil.copytree(source, settings.data / relative)
        record_version(store, name, version, relative)


def record_version(store: Store, name: str, version: int, relative: str) -> None:
    """The model_versions row a training job writes, for a package under ``data/relative``."""
    with store.transaction() as session:
        model = model_versions.get_or_create_model(session, name, "single_label")
        model_versions.add_version(
            session, model=model, version=version, job_id=None, snapshot_id=None,
            dataset="trash", labels=CLASSES, metrics={"accuracy": 0.5}, report={},
            package_dir=relative,
        )  # fmt: skip
