"""Viam's own clients (viam-sdk's VisionClient and MLModelClient, unmodified, over a grpclib
channel) against a tagtrain machine's gRPC server: the same answers as the services facade and the
classifier give, and errors as gRPC statuses carrying our sentences."""

from __future__ import annotations

import asyncio
import importlib
import io
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from numpy.typing import NDArray
from PIL import Image
from viam.media.video import CameraMimeType, ViamImage
from viam.proto.service.mlmodel import LabelType
from viam.proto.service.vision import Classification as ViamClassification
from viam.robot.client import RobotClient
from viam.rpc.dial import DialOptions
from viam.services.mlmodel import MLModelClient
from viam.services.vision import VisionClient

from tagtrain.agent.model_slot import ModelSlot
from tagtrain.agent.services import Frame, Services
from tagtrain.agent.viam_grpc import INTERNAL, NO_DETECTIONS, ViamGrpcServer
from tagtrain.errors import BadInput, InvalidImage, NotFound, Unavailable
from tagtrain.machine_config import VisionConfig
from tagtrain.media import ImageLimits, decode_image
from tagtrain.runtime import Classification, Classifier
from tests import badfiles
from tests.conftest import trashnet_photos
from tests.packages import CLASSES, TINY, built, photo_inputs

T = TypeVar("T")
CAMERA = "cam"


class PhotoCamera:
    """One camera whose newest frame is a real photo, classified as the camera loop would."""

    def __init__(self, classifier: Classifier, photo: Path) -> None:
        rgb = np.asarray(decode_image(photo.read_bytes(), photo.name, ImageLimits())[1])
        self.frame = Frame(
            rgb=rgb,
            at=datetime(2025, 5, 1, 12, 0, tzinfo=UTC),
            classifications=classifier.classify_array(rgb, 0),
            model="tiny-trash@1",
        )

    def names(self) -> list[str]:
        return [CAMERA]

    def latest(self, camera: str) -> Frame:
        if camera != CAMERA:
            raise NotFound(f"this machine has no camera named {camera!r}; it has {CAMERA!r}")
        return self.frame


class BrokenCamera(PhotoCamera):
    def latest(self, camera: str) -> Frame:
        raise RuntimeError("the capture card fell off")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    return Classifier.load(built("tiny", "single_label", tmp_path_factory))


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    return [p.read_bytes() for p in trashnet_photos(3)]


@pytest.fixture
def services(classifier: Classifier) -> Services:
    return Services(
        ModelSlot(classifier), PhotoCamera(classifier, trashnet_photos(1)[0]), VisionConfig()
    )


@pytest.fixture
def server(services: Services) -> Iterator[ViamGrpcServer]:
    with ViamGrpcServer(services, "127.0.0.1", 0) as running:
        yield running


def ask(server: ViamGrpcServer, call: Callable[[Channel], Awaitable[T]]) -> T:
    """Run one client call on a fresh channel, as a Viam program would."""

    async def go() -> T:
        channel = Channel(server.host, server.port)
        try:
            return await call(channel)
        finally:
            channel.close()

    return asyncio.run(go())


def vision(name: str = "classifier") -> Callable[[Channel], VisionClient]:
    return lambda channel: VisionClient(name, channel)


def classify(
    data: bytes, n: int, mime: CameraMimeType = CameraMimeType.JPEG, *, name: str = "classifier"
) -> Callable[[Channel], Awaitable[list[ViamClassification]]]:
    """VisionClient.get_classifications of ``data`` as a Viam program calls it."""
    return lambda channel: VisionClient(name, channel).get_classifications(ViamImage(data, mime), n)


def refused(server: ViamGrpcServer, call: Callable[[Channel], Awaitable[object]]) -> GRPCError:
    with pytest.raises(GRPCError) as caught:
        ask(server, call)
    return caught.value


def assert_same(got: Sequence[ViamClassification], want: list[Classification]) -> None:
    assert [c.class_name for c in got] == [c.class_name for c in want]
    assert [c.confidence for c in got] == pytest.approx([c.confidence for c in want], abs=1e-5)


def viam_rgba(rgb: NDArray[np.uint8]) -> bytes:
    """A frame as a Viam camera hands it over raw: image/vnd.viam.rgba."""
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    alpha = np.full((height, width, 1), 255, np.uint8)
    header = b"RGBA" + width.to_bytes(4, "big") + height.to_bytes(4, "big")
    pixels: bytes = np.concatenate([rgb, alpha], axis=2).tobytes()
    return header + pixels


# -- vision ------------------------------------------------------------------------------------


def test_classifications_are_the_services_and_the_classifiers(
    server: ViamGrpcServer, services: Services, classifier: Classifier, photos: list[bytes]
) -> None:
    for jpeg in photos:
        got = ask(server, classify(jpeg, 3))
        assert len(got) == 3
        assert_same(got, services.get_classifications(jpeg, 3))
        assert_same(got, classifier.classify_bytes(jpeg, 3))
    every = ask(server, classify(photos[0], 0))
    assert sorted(c.class_name for c in every) == CLASSES  # n <= 0: every label


def test_png_and_raw_viam_rgba_images_are_classified(
    server: ViamGrpcServer, services: Services, photos: list[bytes]
) -> None:
    rgb = np.asarray(Image.open(io.BytesIO(photos[1])).convert("RGB"))
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")
    # viam-sdk's client labels every image image/jpeg, so the server must look at the bytes
    got = ask(server, classify(png.getvalue(), 2, CameraMimeType.PNG))
    assert_same(got, services.get_classifications(png.getvalue(), 2))
    got = ask(server, classify(viam_rgba(rgb), 2, CameraMimeType.VIAM_RGBA))
    assert_same(got, services.classify_frame(rgb, 2))


def test_the_vision_configs_floors_apply_as_in_every_view(
    classifier: Classifier, photos: list[bytes]
) -> None:
    want = classifier.classify_bytes(photos[0], 0)
    floor = (want[1].confidence + want[2].confidence) / 2  # keeps exactly the top two
    floored = Services(
        ModelSlot(classifier),
        PhotoCamera(classifier, trashnet_photos(1)[0]),
        VisionConfig(default_minimum_confidence=floor),
    )
    with ViamGrpcServer(floored) as server:
        got = ask(server, classify(photos[0], 0))
    assert_same(got, want[:2])


def test_classifications_from_camera(server: ViamGrpcServer, services: Services) -> None:
    got = ask(server, lambda ch: vision()(ch).get_classifications_from_camera(CAMERA, 2))
    assert_same(got, services.get_classifications_from_camera(CAMERA, 2))
    error = refused(server, lambda ch: vision()(ch).get_classifications_from_camera("door", 2))
    assert error.status is Status.NOT_FOUND
    assert error.message == "this machine has no camera named 'door'; it has 'cam'"


def test_properties_say_classifications_only(server: ViamGrpcServer) -> None:
    props = ask(server, lambda ch: vision()(ch).get_properties())
    assert props.classifications_supported
    assert not props.detections_supported
    assert not props.object_point_clouds_supported


def test_capture_all_returns_the_frame_as_jpeg_and_its_classifications(
    server: ViamGrpcServer, services: Services
) -> None:
    frame = services.frames.latest(CAMERA)
    got = ask(
        server,
        lambda ch: vision()(ch).capture_all_from_camera(
            CAMERA, return_image=True, return_classifications=True
        ),
    )
    assert got.image is not None and got.image.mime_type == CameraMimeType.JPEG
    decoded = Image.open(io.BytesIO(got.image.data))
    assert decoded.format == "JPEG" and decoded.size == (frame.rgb.shape[1], frame.rgb.shape[0])
    assert got.classifications is not None
    assert_same(got.classifications, frame.classifications)
    assert got.extra == {"captured_at": "2025-05-01T12:00:00+00:00"}

    bare = ask(
        server, lambda ch: vision()(ch).capture_all_from_camera(CAMERA, return_classifications=True)
    )
    assert bare.image is None
    assert bare.classifications is not None and len(bare.classifications) == len(CLASSES)


def test_detections_are_refused_with_a_sentence(
    server: ViamGrpcServer, photos: list[bytes]
) -> None:
    image = ViamImage(photos[0], CameraMimeType.JPEG)
    calls: list[Callable[[Channel], Awaitable[object]]] = [
        lambda ch: vision()(ch).get_detections(image),
        lambda ch: vision()(ch).get_detections_from_camera(CAMERA),
        lambda ch: vision()(ch).capture_all_from_camera(
            CAMERA, return_image=True, return_detections=True
        ),
    ]
    for call in calls:
        error = refused(server, call)
        assert error.status is Status.UNIMPLEMENTED
        assert error.message is not None and error.message.startswith(NO_DETECTIONS)
    for call in [
        lambda ch: vision()(ch).get_object_point_clouds(CAMERA),
        lambda ch: vision()(ch).get_detections_3d(CAMERA),
        lambda ch: vision()(ch).do_command({"reload": True}),
    ]:
        assert refused(server, call).status is Status.UNIMPLEMENTED


def test_status_names_the_model_and_cameras(server: ViamGrpcServer) -> None:
    assert ask(server, lambda ch: vision()(ch).get_status()) == {
        "ready": True,
        "model": "tiny-trash@1",
        "cameras": [CAMERA],
    }
    assert (
        ask(server, lambda ch: MLModelClient("classifier", ch).get_status())["model"]
        == "tiny-trash@1"
    )


# -- ML model ----------------------------------------------------------------------------------


def test_metadata_is_the_classifiers(server: ViamGrpcServer, classifier: Classifier) -> None:
    want = classifier.metadata()
    got = ask(server, lambda ch: MLModelClient("classifier", ch).metadata())
    assert (got.name, got.type, got.description) == (
        want["name"],
        want["type"],
        want["description"],
    )
    for infos, wanted in (
        (got.input_info, want["input_info"]),
        (got.output_info, want["output_info"]),
    ):
        assert [(i.name, i.description, i.data_type, list(i.shape)) for i in infos] == [
            (w["name"], w["description"], w["data_type"], w["shape"]) for w in wanted
        ]
    (image,), (probability,) = got.input_info, got.output_info
    assert list(image.shape) == [-1, TINY, TINY, 3]
    (labels,) = probability.associated_files
    assert labels.name == "labels.txt" and labels.label_type == LabelType.LABEL_TYPE_TENSOR_AXIS
    assert list(probability.extra["labels"]) == CLASSES


def test_infer_is_the_classifiers(server: ViamGrpcServer, classifier: Classifier) -> None:
    batch = np.array(photo_inputs(4, TINY))
    got = ask(server, lambda ch: MLModelClient("classifier", ch).infer({"image": batch}))
    want = classifier.infer({"image": batch})
    assert set(got) == {"probability"}
    assert got["probability"].dtype == np.float32 and got["probability"].shape == (4, len(CLASSES))
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=0, atol=1e-6)


def test_the_ml_model_service_answers_to_its_own_name(
    services: Services, classifier: Classifier
) -> None:
    with ViamGrpcServer(services, mlmodel_name="trash-model") as server:
        got = ask(server, lambda ch: MLModelClient("trash-model", ch).metadata())
        assert got.name == classifier.manifest.name
        error = refused(server, lambda ch: MLModelClient("classifier", ch).metadata())
    assert error.status is Status.NOT_FOUND
    assert error.message == (
        "this machine has no ML model service named 'classifier'; its ML model service is "
        "named 'trash-model'"
    )


def test_a_robot_client_finds_both_services_by_name(
    services: Services, classifier: Classifier, photos: list[bytes]
) -> None:
    """The usual Viam program: connect to the machine, then look services up by name."""

    async def program(address: str) -> tuple[list[str], list[ViamClassification], str]:
        direct = DialOptions(insecure=True, disable_webrtc=True)
        async with await RobotClient.at_address(
            address, RobotClient.Options(dial_options=direct)
        ) as machine:
            found = sorted(str(name) for name in machine.resource_names)
            labels = await VisionClient.from_robot(machine, "classifier").get_classifications(
                ViamImage(photos[0], CameraMimeType.JPEG), 2
            )
            model = await MLModelClient.from_robot(machine, "trash-model").metadata()
            return found, labels, model.name

    with ViamGrpcServer(services, mlmodel_name="trash-model") as server:
        found, labels, model = asyncio.run(program(server.address))
    assert found == ["rdk:service:mlmodel/trash-model", "rdk:service:vision/classifier"]
    assert_same(labels, classifier.classify_bytes(photos[0], 2))
    assert model == classifier.manifest.name


# -- errors ------------------------------------------------------------------------------------


def test_an_image_that_does_not_decode_is_invalid_argument_with_our_sentence(
    server: ViamGrpcServer, services: Services, photos: list[bytes]
) -> None:
    broken = badfiles.truncated(photos[0])
    with pytest.raises(InvalidImage) as direct:
        services.get_classifications(broken, 3)
    error = refused(server, classify(broken, 3))
    assert error.status is Status.INVALID_ARGUMENT
    assert error.message == direct.value.message and error.message.startswith("the image: ")

    short = viam_rgba(np.zeros((4, 4, 3), np.uint8))[:-5]
    error = refused(server, classify(short, 3, CameraMimeType.VIAM_RGBA))
    assert error.status is Status.INVALID_ARGUMENT
    assert error.message == "the image: a Viam RGBA image of 4x4 pixels needs 76 bytes, got 71"


def test_a_wrong_tensor_is_invalid_argument_with_our_sentence(
    server: ViamGrpcServer, classifier: Classifier
) -> None:
    floats = np.zeros((1, TINY, TINY, 3), np.float32)
    with pytest.raises(BadInput) as direct:
        classifier.infer({"image": floats})
    error = refused(server, lambda ch: MLModelClient("classifier", ch).infer({"image": floats}))
    assert error.status is Status.INVALID_ARGUMENT and error.message == direct.value.message
    error = refused(server, lambda ch: MLModelClient("classifier", ch).infer({"pixels": floats}))
    assert error.status is Status.INVALID_ARGUMENT
    assert error.message == "infer takes one tensor named 'image', got ['pixels']"


def test_a_wrong_service_name_is_not_found_naming_the_right_one(
    server: ViamGrpcServer, photos: list[bytes]
) -> None:
    for call in [
        classify(photos[0], 3, name="detector"),
        lambda ch: vision("detector")(ch).get_properties(),
        lambda ch: vision("detector")(ch).get_classifications_from_camera(CAMERA, 3),
    ]:
        error = refused(server, call)
        assert error.status is Status.NOT_FOUND
        assert error.message == (
            "this machine has no vision service named 'detector'; its vision service is named "
            "'classifier'"
        )
    assert (
        refused(server, lambda ch: MLModelClient("detector", ch).metadata()).status
        is Status.NOT_FOUND
    )


def test_no_model_deployed_is_unavailable(classifier: Classifier, photos: list[bytes]) -> None:
    empty = Services(ModelSlot(), PhotoCamera(classifier, trashnet_photos(1)[0]), VisionConfig())
    with pytest.raises(Unavailable) as direct:
        empty.metadata()
    batch = np.array(photo_inputs(1, TINY))
    with ViamGrpcServer(empty) as server:
        for call in [
            classify(photos[0], 3),
            lambda ch: vision()(ch).get_properties(),
            lambda ch: MLModelClient("classifier", ch).metadata(),
            lambda ch: MLModelClient("classifier", ch).infer({"image": batch}),
        ]:
            error = refused(server, call)
            assert error.status is Status.UNAVAILABLE and error.message == direct.value.message
        status = ask(server, lambda ch: vision()(ch).get_status())
    assert status == {"ready": False, "model": "", "cameras": [CAMERA]}


def test_an_unexpected_failure_is_internal_and_logged(
    classifier: Classifier, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Services(
        ModelSlot(classifier), BrokenCamera(classifier, trashnet_photos(1)[0]), VisionConfig()
    )
    with (
        ViamGrpcServer(broken) as server,
        caplog.at_level(logging.ERROR, "tagtrain.agent.viam_grpc"),
    ):
        error = refused(server, lambda ch: vision()(ch).get_classifications_from_camera(CAMERA, 1))
    assert error.status is Status.INTERNAL and error.message == INTERNAL
    assert "capture card fell off" not in INTERNAL
    assert any("capture card fell off" in str(r.exc_info) for r in caplog.records)


# -- the server --------------------------------------------------------------------------------


def test_requests_in_flight_together_all_get_their_answers(
    server: ViamGrpcServer, services: Services, photos: list[bytes]
) -> None:
    async def many(channel: Channel) -> list[list[ViamClassification]]:
        return list(await asyncio.gather(*(classify(p, 1)(channel) for p in photos * 4)))

    for got, jpeg in zip(ask(server, many), photos * 4, strict=True):
        assert_same(got, services.get_classifications(jpeg, 1))


def test_port_zero_picks_a_free_port_and_stop_closes_it(services: Services) -> None:
    server = ViamGrpcServer(services, "127.0.0.1", 0)
    with pytest.raises(RuntimeError):
        _ = server.port
    server.start()
    assert server.port > 0 and server.address == f"127.0.0.1:{server.port}"
    assert ask(server, lambda ch: vision()(ch).get_properties()).classifications_supported
    server.stop()
    server.stop()  # a second stop does nothing
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    with server:  # and it starts again
        assert ask(server, lambda ch: vision()(ch).get_properties()).classifications_supported


def test_a_busy_port_fails_start_with_a_sentence(services: Services) -> None:
    with ViamGrpcServer(services) as first:
        second = ViamGrpcServer(services, "127.0.0.1", first.port)
        with pytest.raises(
            BadInput, match=rf"cannot serve Viam gRPC on 127\.0\.0\.1:{first.port}: "
        ):
            second.start()


def test_without_the_viam_extra_the_import_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "viam.proto.common", None)  # as if viam-sdk were absent
    monkeypatch.delitem(sys.modules, "tagtrain.agent.viam_grpc")
    with pytest.raises(BadInput, match=r"needs viam-sdk.*install tagtrain\[viam\]"):
        importlib.import_module("tagtrain.agent.viam_grpc")
