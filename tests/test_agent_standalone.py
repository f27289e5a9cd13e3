"""The stand-alone agent: a real package, an image-folder camera and a video-file camera, the local
HTTP services spoken to through ``tagtrain.client``, the MJPEG stream, and the command itself."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from tagtrain.agent.cameras import FolderCamera
from tagtrain.agent.standalone import StandaloneAgent
from tagtrain.client import MLModelClient, VisionClient
from tagtrain.errors import BadInput, NotFound
from tagtrain.machine_config import StandaloneConfig, load_standalone_config
from tagtrain.runtime import Classifier
from tests.camera_sources import image_folder, video_file
from tests.conftest import trashnet_photos
from tests.packages import built, photo_inputs
from tests.running import eventually, tagtrain_exe


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built("tiny", "single_label", tmp_path_factory)


@pytest.fixture
def agent(package: Path, tmp_path: Path) -> Iterator[StandaloneAgent]:
    config = StandaloneConfig(
        package=package,
        listen="127.0.0.1:0",
        cameras=[
            {"name": "folder", "source": str(image_folder(tmp_path / "frames", 6))},
            {"name": "video", "source": str(video_file(tmp_path / "clip.avi", 6))},
        ],
        vision={"name": "classifier"},
    )
    running = StandaloneAgent(config)
    running.start()
    yield running
    running.machine.stop()


def test_vision_service_answers_like_the_runtime(agent: StandaloneAgent, package: Path) -> None:
    classifier = Classifier.load(package)
    photo = trashnet_photos(1)[0].read_bytes()
    with VisionClient(agent.machine.http.url, "classifier") as vision:
        got = vision.get_classifications(photo, 3)
        assert got == classifier.classify_bytes(photo, 3)
        assert len(vision.get_classifications(photo, 0)) == len(classifier.classify_bytes(photo, 0))
        assert vision.get_properties()["classifications_supported"] is True
        with pytest.raises(BadInput, match="not an image"):
            vision.get_classifications(b"this is not a picture", 3)
    with VisionClient(agent.machine.http.url, "other") as wrong, pytest.raises(NotFound):
        wrong.get_properties()


def test_cameras_are_classified_live(agent: StandaloneAgent) -> None:
    with VisionClient(agent.machine.http.url, "classifier") as vision:
        for camera in ("folder", "video"):
            found = eventually(lambda c=camera: vision.get_classifications_from_camera(c, 2))
            assert 1 <= len(found) <= 2
            capture = vision.capture_all_from_camera(camera)
            assert capture.image is not None and capture.image[:2] == b"\xff\xd8"
            assert capture.classifications
        with pytest.raises(NotFound, match="no camera named 'nope'"):
            vision.get_classifications_from_camera("nope", 1)
    statuses = {c.name: c for c in eventually(lambda: _all_flowing(agent))}
    assert statuses["video"].ok and statuses["folder"].ok


def _all_flowing(agent: StandaloneAgent) -> list[Any]:
    cameras = agent.machine.status().cameras
    assert all(c.fps > 0 for c in cameras), cameras
    return cameras


def test_mlmodel_service_metadata_and_infer(agent: StandaloneAgent, package: Path) -> None:
    classifier = Classifier.load(package)
    batch = photo_inputs(3, classifier.input_size)
    with MLModelClient(agent.machine.http.url, "classifier") as mlmodel:
        assert mlmodel.metadata() == classifier.metadata()
        out = mlmodel.infer({"image": batch})
        want = classifier.infer({"image": batch})["probability"]
        np.testing.assert_allclose(out["probability"], want, atol=1e-6)
        with pytest.raises(BadInput, match="infer takes one tensor named 'image'"):
            mlmodel.infer({"pixels": batch})


def test_mjpeg_stream_sends_annotated_jpeg_parts(agent: StandaloneAgent) -> None:
    url = f"{agent.machine.http.url}/stream/video.mjpg"
    with httpx.stream("GET", url, timeout=15) as response:
        assert response.headers["content-type"].startswith("multipart/x-mixed-replace")
        seen = b""
        for chunk in response.iter_bytes():
            seen += chunk
            if seen.count(b"--tagtrainframe") >= 2:
                break
    assert b"Content-Type: image/jpeg" in seen and b"\xff\xd8" in seen
    assert httpx.get(f"{agent.machine.http.url}/stream/nope.mjpg").status_code == 404


def test_minimum_confidence_hides_weak_labels(package: Path, tmp_path: Path) -> None:
    config = StandaloneConfig(
        package=package,
        listen="127.0.0.1:0",
        vision={"name": "strict", "default_minimum_confidence": 0.99},
    )
    running = StandaloneAgent(config)
    running.start()
    try:
        photo = trashnet_photos(1)[0].read_bytes()
        with VisionClient(running.machine.http.url, "strict") as vision:
            assert all(c.confidence >= 0.99 for c in vision.get_classifications(photo, 0))
    finally:
        running.machine.stop()


def test_a_folder_camera_that_empties_keeps_its_last_frame_and_recovers(tmp_path: Path) -> None:
    folder = image_folder(tmp_path / "cam", 2)
    (folder / "zz_garbage.jpg").write_bytes(b"not a jpeg at all")
    camera = FolderCamera("cam", folder)
    frames = [camera.read() for _ in range(4)]  # the garbage file is skipped, not fatal
    assert all(f.ndim == 3 for f in frames)
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(Exception, match="no readable images"):
        camera.read()
    image_folder(folder, 1)
    assert camera.read().ndim == 3


def test_config_file_errors_are_one_clear_sentence(tmp_path: Path, package: Path) -> None:
    path = tmp_path / "machine.yaml"
    path.write_text("package: [unclosed")
    with pytest.raises(BadInput, match="not valid YAML"):
        load_standalone_config(path)
    path.write_text(yaml.safe_dump({"package": str(package), "listen": "nowhere"}))
    with pytest.raises(BadInput, match=r"listen.*host:port"):
        load_standalone_config(path)
    path.write_text(yaml.safe_dump({"package": str(package), "camras": []}))
    with pytest.raises(BadInput, match="camras"):
        load_standalone_config(path)
    cams = [{"name": "a", "source": "x"}, {"name": "a", "source": "y"}]
    path.write_text(yaml.safe_dump({"package": str(package), "cameras": cams}))
    with pytest.raises(BadInput, match="repeated: a"):
        load_standalone_config(path)


@pytest.mark.slow
def test_the_agent_command_serves_a_package_and_stops_on_sigterm(
    package: Path, tmp_path: Path
) -> None:
    shutil.copytree(package, tmp_path / "pkg")
    image_folder(tmp_path / "frames", 3)
    port = _free_port()
    (tmp_path / "machine.yaml").write_text(
        yaml.safe_dump(
            {
                "package": "pkg",  # relative to the config file
                "listen": f"127.0.0.1:{port}",
                "cameras": [{"name": "cam", "source": "frames"}],
            }
        )
    )
    exe = tagtrain_exe()
    proc = subprocess.Popen(
        [exe, "agent", "--config", str(tmp_path / "machine.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path / "frames",  # not the config's folder: paths must resolve from the file
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with VisionClient(url, "classifier") as vision:
            found = eventually(lambda: vision.get_classifications_from_camera("cam", 1), 60)
        assert len(found) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()

    bad = subprocess.run(
        [exe, "agent", "--config", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "cannot read the config" in bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_viam_sdk_talks_to_a_standalone_agent_over_grpc(package: Path, tmp_path: Path) -> None:
    """Code written for Viam, unchanged, against a tagtrain machine: its own VisionClient and
    MLModelClient over a grpclib channel to the port the config names."""
    import asyncio

    from grpclib.client import Channel
    from viam.media.video import CameraMimeType, ViamImage
    from viam.services.mlmodel import MLModelClient as ViamMLModel
    from viam.services.vision import VisionClient as ViamVision

    config = StandaloneConfig(
        package=package,
        listen="127.0.0.1:0",
        viam_grpc="127.0.0.1:0",
        cameras=[{"name": "cam", "source": str(image_folder(tmp_path / "frames", 3))}],
    )
    running = StandaloneAgent(config)
    running.start()
    photo = trashnet_photos(1)[0].read_bytes()
    want = Classifier.load(package).classify_bytes(photo, 3)

    async def ask() -> tuple[list[Any], list[Any], dict[str, Any]]:
        channel = Channel("127.0.0.1", running.machine.viam.port)
        try:
            vision = ViamVision("classifier", channel)
            found = await vision.get_classifications(ViamImage(photo, CameraMimeType.JPEG), 3)
            from_cam = await vision.get_classifications_from_camera("cam", 2)
            meta = await ViamMLModel("classifier", channel).metadata()
            return list(found), list(from_cam), {"name": meta.name, "inputs": meta.input_info}
        finally:
            channel.close()

    try:
        eventually(lambda: running.machine.hub.loop("cam").latest)
        found, from_cam, meta = asyncio.run(ask())
    finally:
        running.machine.stop()
    assert [c.class_name for c in found] == [c.class_name for c in want]
    assert all(abs(a.confidence - b.confidence) < 1e-5 for a, b in zip(found, want, strict=True))
    assert len(from_cam) == 2
    assert meta["name"] == "tiny-trash" and meta["inputs"][0].name == "image"


def test_a_camera_that_is_gone_is_reported_and_the_rest_keeps_serving(
    package: Path, tmp_path: Path
) -> None:
    clip = video_file(tmp_path / "clip.avi", 3)
    config = StandaloneConfig(
        package=package,
        listen="127.0.0.1:0",
        cameras=[
            {"name": "gone", "source": str(tmp_path / "unplugged.avi")},
            {"name": "rtsp", "source": "rtsp://127.0.0.1:9/nothing-listens-here"},
            {"name": "ok", "source": str(clip)},
        ],
    )
    running = StandaloneAgent(config)
    running.start()
    try:
        statuses = eventually(lambda: _faulty(running, {"gone", "rtsp"}), 30)
        assert "neither a folder of images, a video file" in statuses["gone"].error
        assert "cannot open" in statuses["rtsp"].error
        with VisionClient(running.machine.http.url, "classifier") as vision:
            assert eventually(lambda: vision.get_classifications_from_camera("ok", 1))
            with pytest.raises(Exception, match="has no frame yet"):
                vision.get_classifications_from_camera("gone", 1)
    finally:
        running.machine.stop()


def _faulty(agent: StandaloneAgent, names: set[str]) -> dict[str, Any]:
    statuses = {c.name: c for c in agent.machine.status().cameras}
    return statuses if all(statuses[n].error for n in names) else {}
