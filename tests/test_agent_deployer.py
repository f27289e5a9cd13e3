"""Swapping models on a machine: bad packages are refused while the last good model keeps
serving, the same bad version is not fetched on every poll, and a swap under load drops no
request."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from tagtrain.agent.deployer import RETRY_AFTER_S, Deployer
from tagtrain.agent.machine import Machine
from tagtrain.agent.model_slot import ModelSlot
from tagtrain.agent.server_link import Deployment
from tagtrain.package import GOLDEN, MANIFEST, zip_package
from tagtrain.runtime import Classifier
from tests.conftest import trashnet_photos
from tests.packages import built, rehash, write_tiny

URL = "/api/v1/agent/package/m/{}.zip"


def deployment_of(folder: Path, version: int) -> Deployment:
    sha = hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
    return Deployment("m", version, True, sha, URL.format(version))


@pytest.fixture
def good(tmp_path: Path) -> Path:
    write_tiny(tmp_path / "good", name="m", version=1)
    return tmp_path / "good"


def golden_that_differs(tmp_path: Path) -> Path:
    """A package whose golden outputs are not what its model computes (sha256s consistent)."""
    folder = tmp_path / "bad-golden"
    write_tiny(folder, name="m", version=2)
    with np.load(folder / GOLDEN) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["probability"] = arrays["probability"] + np.float32(0.01)
    np.savez(folder / GOLDEN, **arrays)
    rehash(folder, GOLDEN)
    return folder


class Server:
    """What the server would send: a zip per version, counting the downloads."""

    def __init__(self, folders: dict[int, Path]) -> None:
        self.zips = {v: zip_package(f) for v, f in folders.items()}
        self.downloads = 0

    def fetch(self, deployment: Deployment) -> bytes:
        self.downloads += 1
        return self.zips[deployment.version]


def test_a_package_whose_golden_outputs_differ_is_refused(good: Path, tmp_path: Path) -> None:
    bad = golden_that_differs(tmp_path)
    server = Server({1: good, 2: bad})
    slot = ModelSlot()
    deployer = Deployer(slot, tmp_path / "packages", server.fetch)
    assert deployer.apply(deployment_of(good, 1)) is True
    assert deployer.apply(deployment_of(bad, 2)) is False
    assert "could not switch to m@2" in (deployer.last_error or "")
    assert "golden" in (deployer.last_error or "") and "still serving m@1" in deployer.last_error
    assert slot.ref == "m@1"
    downloads = server.downloads
    assert deployer.apply(deployment_of(bad, 2)) is False  # polled again: not fetched again
    assert server.downloads == downloads and RETRY_AFTER_S >= 30


def test_a_corrupt_download_is_refused(good: Path, tmp_path: Path) -> None:
    slot = ModelSlot()
    deployer = Deployer(slot, tmp_path / "packages", lambda _d: b"PK\x03\x04 not really a zip")
    assert deployer.apply(deployment_of(good, 1)) is False
    assert "not a zip archive" in (deployer.last_error or "")
    assert slot.ref is None
    assert not any((tmp_path / "packages").glob("m-*")), "a half-unpacked package was left"


def test_a_tampered_file_in_the_zip_is_refused(good: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(good, tampered)
    (tampered / "labels.txt").write_text("cat\ndog\n")  # the manifest's sha256 no longer fits
    deployer = Deployer(ModelSlot(), tmp_path / "packages", lambda _d: zip_package(tampered))
    assert deployer.apply(deployment_of(tampered, 1)) is False
    assert "labels.txt" in (deployer.last_error or "")


def test_a_swap_under_load_drops_no_request(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = Classifier.load(built("tiny", "single_label", tmp_path_factory))
    write_tiny(tmp_path / "v2", name="m", version=2)
    second = Classifier.load(tmp_path / "v2")
    slot = ModelSlot(first)
    machine = Machine(slot, listen="127.0.0.1:0")
    machine.start()
    photo = trashnet_photos(1)[0].read_bytes()
    url = f"{machine.http.url}/api/v1/vision/classifier/classifications?n=1"
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                statuses.append(client.post(url, content=photo).status_code)

    clients = [threading.Thread(target=hammer) for _ in range(4)]
    for t in clients:
        t.start()
    try:
        for i in range(40):
            slot.swap(second if i % 2 == 0 else first)
            stop.wait(0.01)
    finally:
        stop.set()
        for t in clients:
            t.join()
        machine.stop()
    assert len(statuses) > 20 and set(statuses) == {200}
