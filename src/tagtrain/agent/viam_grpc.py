"""The agent's vision and ML-model services over Viam's own gRPC API, so code written for Viam
(``VisionClient``, ``MLModelClient``) works unchanged against a tagtrain machine.

The handlers subclass the service bases viam-sdk generates and answer on a grpclib server; every
answer comes from :class:`~tagtrain.agent.services.Services`, so the HTTP API, the live view and
this API report the same labels. A sliver of Viam's robot service (``ResourceNames``) lets
``RobotClient.at_address(...)`` connect directly (``DialOptions(insecure=True,
disable_webrtc=True)``) and find both services by name. tagtrain classifies whole images: the detection and point-cloud
calls answer UNIMPLEMENTED with a sentence saying so.

Errors map to gRPC statuses as the HTTP API maps them to HTTP ones: bad input (an image that
does not decode, a wrong tensor) -> INVALID_ARGUMENT, an unknown service or camera ->
NOT_FOUND, no model deployed or no frame yet -> UNAVAILABLE, each with our sentence; anything
unexpected -> INTERNAL with a generic sentence, the details logged here.

This is the only module that imports viam (the ``viam`` extra); the agent imports it only when a
machine's config asks for ``viam_grpc``.
"""

# ruff: noqa: N802 - the handlers carry the names of Viam's gRPC methods

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from tagtrain.agent.services import Services
from tagtrain.errors import (
    BadInput,
    Cancelled,
    Conflict,
    Forbidden,
    InvalidImage,
    NotFound,
    TagtrainError,
    Unauthorized,
    Unavailable,
)
from tagtrain.runtime import Classification

_excepthook = sys.excepthook
try:
    from grpclib.const import Status
    from grpclib.exceptions import GRPCError
    from grpclib.server import Server, Stream
    from viam.media.viam_rgba import RGBA_HEADER_LENGTH, RGBA_MAGIC_NUMBER
    from viam.proto.common import (
        DoCommandRequest,
        DoCommandResponse,
        GetStatusRequest,
        GetStatusResponse,
        ResourceName,
    )
    from viam.proto.component.camera import Image
    from viam.proto.robot import (
        ResourceNamesRequest,
        ResourceNamesResponse,
        UnimplementedRobotServiceBase,
    )
    from viam.proto.service.mlmodel import (
        File,
        InferRequest,
        InferResponse,
        LabelType,
        Metadata,
        MetadataRequest,
        MetadataResponse,
        MLModelServiceBase,
        TensorInfo,
    )
    from viam.proto.service.vision import (
        CaptureAllFromCameraRequest,
        CaptureAllFromCameraResponse,
        GetClassificationsFromCameraRequest,
        GetClassificationsFromCameraResponse,
        GetClassificationsRequest,
        GetClassificationsResponse,
        GetDetections3DRequest,
        GetDetections3DResponse,
        GetDetectionsFromCameraRequest,
        GetDetectionsFromCameraResponse,
        GetDetectionsRequest,
        GetDetectionsResponse,
        GetObjectPointCloudsRequest,
        GetObjectPointCloudsResponse,
        GetPropertiesRequest,
        GetPropertiesResponse,
        VisionServiceBase,
    )
    from viam.proto.service.vision import Classification as ViamClassification
    from viam.services.mlmodel.utils import flat_tensors_to_ndarrays, ndarrays_to_flat_tensors
    from viam.utils import dict_to_struct
except ImportError as exc:  # the optional extra is missing
    raise BadInput(
        "serving Viam's gRPC API (viam_grpc) needs viam-sdk, which is not installed; "
        "install tagtrain[viam] (pip install 'tagtrain[viam]') or remove viam_grpc from the "
        "machine config"
    ) from exc
finally:
    # importing viam replaces sys.excepthook with one that logs through viam's own handlers;
    # the agent keeps Python's, so an uncaught error is reported once, in one format.
    sys.excepthook = _excepthook

log = logging.getLogger(__name__)

NO_DETECTIONS = "tagtrain classifies whole images; detections are not supported"
NO_POINT_CLOUDS = (
    "tagtrain classifies whole images; 3D detections and point clouds are not supported"
)
NO_COMMANDS = "tagtrain's {} service takes no commands (DoCommand is not supported)"
INTERNAL = "the machine failed to answer; its agent log has the details"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0

_STATUSES: dict[type[TagtrainError], Status] = {
    BadInput: Status.INVALID_ARGUMENT,
    NotFound: Status.NOT_FOUND,
    Unavailable: Status.UNAVAILABLE,
    Unauthorized: Status.UNAUTHENTICATED,
    Forbidden: Status.PERMISSION_DENIED,
    Conflict: Status.FAILED_PRECONDITION,
    Cancelled: Status.CANCELLED,
}

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def grpc_error(exc: Exception, call: str = "a Viam gRPC call") -> GRPCError:
    """The gRPC answer for an error: our sentence for the errors a person can act on, a generic
    one (the details logged) for anything else."""
    if isinstance(exc, GRPCError):
        return exc
    if isinstance(exc, TagtrainError):
        for kind in type(exc).__mro__:
            if kind in _STATUSES:
                return GRPCError(_STATUSES[kind], exc.message)
    log.error("%s failed", call, exc_info=exc)
    return GRPCError(Status.INTERNAL, INTERNAL)


async def _answer(stream: Stream[Req, Resp], handle: Callable[[Req], Resp]) -> None:
    """Read one request, answer it with ``handle`` run off the event loop (onnxruntime and image
    decoding block), and map errors to gRPC statuses."""
    request = await stream.recv_message()
    if request is None:
        raise GRPCError(Status.INVALID_ARGUMENT, "the request carried no message")
    try:
        response = await asyncio.to_thread(handle, request)
    except Exception as exc:
        raise grpc_error(exc, f"Viam gRPC {handle.__name__.strip('_')}") from exc
    await stream.send_message(response)


def _check_name(kind: str, asked: str, served: str) -> None:
    if asked != served:
        raise NotFound(
            f"this machine has no {kind} service named {asked!r}; its {kind} service is "
            f"named {served!r}"
        )


class RobotService(UnimplementedRobotServiceBase):
    """The least of Viam's ``RobotService`` that lets ``RobotClient`` connect: the resources this
    machine serves (``ResourceNames``), so ``VisionClient.from_robot(machine, name)`` finds them.
    Everything else, sessions included, answers UNIMPLEMENTED, which the client accepts."""

    def __init__(self, vision_name: str, mlmodel_name: str) -> None:
        self.resources = [
            ResourceName(namespace="rdk", type="service", subtype="vision", name=vision_name),
            ResourceName(namespace="rdk", type="service", subtype="mlmodel", name=mlmodel_name),
        ]

    async def ResourceNames(
        self, stream: Stream[ResourceNamesRequest, ResourceNamesResponse]
    ) -> None:
        await _answer(stream, lambda _request: ResourceNamesResponse(resources=self.resources))


class VisionService(VisionServiceBase):
    """Viam's ``VisionService`` over :class:`Services` (classifications only)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _check(self, name: str) -> None:
        _check_name("vision", name, self.services.name)

    # -- what tagtrain answers ---------------------------------------------------------------

    async def GetClassifications(
        self, stream: Stream[GetClassificationsRequest, GetClassificationsResponse]
    ) -> None:
        await _answer(stream, self._classifications)

    def _classifications(self, request: GetClassificationsRequest) -> GetClassificationsResponse:
        self._check(request.name)
        found = classify_image_bytes(self.services, request.image, request.n)
        return GetClassificationsResponse(classifications=_to_viam(found))

    async def GetClassificationsFromCamera(
        self,
        stream: Stream[GetClassificationsFromCameraRequest, GetClassificationsFromCameraResponse],
    ) -> None:
        await _answer(stream, self._classifications_from_camera)

    def _classifications_from_camera(
        self, request: GetClassificationsFromCameraRequest
    ) -> GetClassificationsFromCameraResponse:
        self._check(request.name)
        found = self.services.get_classifications_from_camera(request.camera_name, request.n)
        return GetClassificationsFromCameraResponse(classifications=_to_viam(found))

    async def GetProperties(
        self, stream: Stream[GetPropertiesRequest, GetPropertiesResponse]
    ) -> None:
        await _answer(stream, self._properties)

    def _properties(self, request: GetPropertiesRequest) -> GetPropertiesResponse:
        self._check(request.name)
        props = self.services.get_properties()
        return GetPropertiesResponse(
            classifications_supported=props["classifications_supported"],
            detections_supported=props["detections_supported"],
            object_point_clouds_supported=props["object_point_clouds_supported"],
        )

    async def CaptureAllFromCamera(
        self, stream: Stream[CaptureAllFromCameraRequest, CaptureAllFromCameraResponse]
    ) -> None:
        await _answer(stream, self._capture_all)

    def _capture_all(self, request: CaptureAllFromCameraRequest) -> CaptureAllFromCameraResponse:
        self._check(request.name)
        if (
            request.return_detections
            or request.return_object_point_clouds
            or request.return_detections_3d
        ):
            raise GRPCError(
                Status.UNIMPLEMENTED, f"{NO_DETECTIONS}; ask for the image and classifications"
            )
        capture = self.services.capture_all_from_camera(
            request.camera_name,
            return_image=request.return_image,
            return_classifications=request.return_classifications,
        )
        image = None
        if capture.jpeg is not None:
            image = Image(source_name=capture.camera, image=capture.jpeg, mime_type="image/jpeg")
        # Viam's answer has no field for when the frame was read; extra carries it.
        return CaptureAllFromCameraResponse(
            image=image,
            classifications=_to_viam(capture.classifications or []),
            extra=dict_to_struct({"captured_at": capture.at.isoformat()}),
        )

    async def GetStatus(self, stream: Stream[GetStatusRequest, GetStatusResponse]) -> None:
        await _answer(stream, self._status)

    def _status(self, request: GetStatusRequest) -> GetStatusResponse:
        self._check(request.name)
        return GetStatusResponse(result=dict_to_struct(_status(self.services)))

    # -- what it does not --------------------------------------------------------------------

    async def GetDetections(
        self, stream: Stream[GetDetectionsRequest, GetDetectionsResponse]
    ) -> None:
        raise GRPCError(Status.UNIMPLEMENTED, NO_DETECTIONS)

    async def GetDetectionsFromCamera(
        self, stream: Stream[GetDetectionsFromCameraRequest, GetDetectionsFromCameraResponse]
    ) -> None:
        raise GRPCError(Status.UNIMPLEMENTED, NO_DETECTIONS)

    async def GetDetections3D(
        self, stream: Stream[GetDetections3DRequest, GetDetections3DResponse]
    ) -> None:
        raise GRPCError(Status.UNIMPLEMENTED, NO_POINT_CLOUDS)

    async def GetObjectPointClouds(
        self, stream: Stream[GetObjectPointCloudsRequest, GetObjectPointCloudsResponse]
    ) -> None:
        raise GRPCError(Status.UNIMPLEMENTED, NO_POINT_CLOUDS)

    async def DoCommand(self, stream: Stream[DoCommandRequest, DoCommandResponse]) -> None:
        raise GRPCError(Status.UNIMPLEMENTED, NO_COMMANDS.format("vision"))


class MLModelService(MLModelServiceBase):
    """Viam's ``MLModelService`` over :class:`Services`: the package's ONNX model, tensor in,
    tensor out (``image`` uint8 ``(N, S, S, 3)`` -> ``probability`` float32 ``(N, K)``)."""

    def __init__(self, services: Services, name: str) -> None:
        self.services = services
        self.name = name

    def _check(self, name: str) -> None:
        _check_name("ML model", name, self.name)

    async def Metadata(self, stream: Stream[MetadataRequest, MetadataResponse]) -> None:
        await _answer(stream, self._metadata)

    def _metadata(self, request: MetadataRequest) -> MetadataResponse:
        self._check(request.name)
        return MetadataResponse(metadata=viam_metadata(self.services.metadata()))

    async def Infer(self, stream: Stream[InferRequest, InferResponse]) -> None:
        await _answer(stream, self._infer)

    def _infer(self, request: InferRequest) -> InferResponse:
        self._check(request.name)
        tensors = _from_flat_tensors(request)
        out: dict[str, NDArray[Any]] = dict(self.services.infer(tensors))
        return InferResponse(output_tensors=ndarrays_to_flat_tensors(out))

    async def GetStatus(self, stream: Stream[GetStatusRequest, GetStatusResponse]) -> None:
        await _answer(stream, self._status)

    def _status(self, request: GetStatusRequest) -> GetStatusResponse:
        self._check(request.name)
        return GetStatusResponse(result=dict_to_struct(_status(self.services)))


# -- conversions -----------------------------------------------------------------------------


def classify_image_bytes(services: Services, data: bytes, n: int) -> list[Classification]:
    """Classify what a Viam client sent. Its ``mime_type`` is not trusted (viam-sdk's
    VisionClient sends ``image/jpeg`` whatever the image is): Viam's raw RGBA frames are told by
    their magic number, anything else is decoded as an image file (JPEG, PNG...)."""
    if data.startswith(RGBA_MAGIC_NUMBER):
        return services.classify_frame(decode_viam_rgba(data), n)
    return services.get_classifications(data, n)


def decode_viam_rgba(data: bytes, name: str = "the image") -> NDArray[np.uint8]:
    """Viam's ``image/vnd.viam.rgba``: "RGBA", width and height as big-endian uint32, then the
    pixels, 4 bytes each -> uint8 ``(H, W, 3)`` RGB (alpha dropped)."""
    if len(data) < RGBA_HEADER_LENGTH:
        raise InvalidImage(name, "a Viam RGBA image shorter than its 12-byte header")
    width = int.from_bytes(data[4:8], "big")
    height = int.from_bytes(data[8:12], "big")
    want = RGBA_HEADER_LENGTH + width * height * 4
    if width == 0 or height == 0 or len(data) != want:
        raise InvalidImage(
            name,
            f"a Viam RGBA image of {width}x{height} pixels needs {want} bytes, got {len(data)}",
        )
    pixels = np.frombuffer(data, np.uint8, offset=RGBA_HEADER_LENGTH).reshape(height, width, 4)
    return np.ascontiguousarray(pixels[..., :3])


def _to_viam(found: list[Classification]) -> list[ViamClassification]:
    return [ViamClassification(class_name=c.class_name, confidence=c.confidence) for c in found]


def viam_metadata(meta: dict[str, Any]) -> Metadata:
    """``Classifier.metadata()``'s dict -> Viam's ``Metadata`` message."""
    return Metadata(
        name=meta["name"],
        type=meta["type"],
        description=meta["description"],
        input_info=[_tensor_info(t) for t in meta["input_info"]],
        output_info=[_tensor_info(t) for t in meta["output_info"]],
    )


def _tensor_info(info: dict[str, Any]) -> TensorInfo:
    files = [
        File(
            name=f["name"],
            description=f["description"],
            label_type=LabelType.Value(f.get("label_type", "LABEL_TYPE_UNSPECIFIED")),
        )
        for f in info.get("associated_files", [])
    ]
    return TensorInfo(
        name=info["name"],
        description=info["description"],
        data_type=info["data_type"],
        shape=info["shape"],
        associated_files=files,
        extra=dict_to_struct(info.get("extra") or {}),
    )


def _from_flat_tensors(request: InferRequest) -> dict[str, NDArray[Any]]:
    """Viam's flat tensors -> arrays; a tensor whose data does not fill its shape is bad input."""
    try:
        return dict(flat_tensors_to_ndarrays(request.input_tensors))
    except ValueError as exc:  # numpy cannot reshape the data to the stated shape
        shapes = {k: list(t.shape) for k, t in request.input_tensors.tensors.items()}
        raise BadInput(f"an input tensor's data does not match its shape {shapes}: {exc}") from exc


def _status(services: Services) -> dict[str, Any]:
    """GetStatus's answer. No None in it: viam-sdk's client reads a Struct's null back as 0."""
    ref = services.slot.ref
    return {"ready": ref is not None, "model": ref or "", "cameras": services.frames.names()}


# -- the server ------------------------------------------------------------------------------


class ViamGrpcServer:
    """Viam's vision and ML-model services on ``host:port``, served by grpclib on its own thread
    and event loop, so the agent's (synchronous) threads can own one: :meth:`start` returns once
    it listens, :meth:`stop` closes it. ``port=0`` picks a free port; :attr:`port` tells which.
    The ML-model service answers to ``mlmodel_name`` (default: the vision service's name)."""

    def __init__(
        self,
        services: Services,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        mlmodel_name: str | None = None,
    ) -> None:
        self.services = services
        self.host = host
        self.mlmodel_name = mlmodel_name or services.name
        self._asked_port = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: Exception | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the picked one when asked for 0)."""
        if self._port is None:
            raise RuntimeError("the Viam gRPC server is not started")
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def handlers(self) -> list[VisionService | MLModelService | RobotService]:
        return [
            VisionService(self.services),
            MLModelService(self.services, self.mlmodel_name),
            RobotService(self.services.name, self.mlmodel_name),
        ]

    def start(self) -> None:
        """Bind and serve; raises BadInput naming the address when it cannot listen there."""
        if self._thread is not None:
            raise RuntimeError("the Viam gRPC server is already started")
        self._ready.clear()
        self._failure = None
        sock = _bind(self.host, self._asked_port)
        self._port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(sock),), name="viam-grpc", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise Unavailable(f"the Viam gRPC server on {self.address} did not start in time")
        if self._failure is not None:
            self._thread.join()
            self._thread = None
            raise self._failure

    def stop(self) -> None:
        """Stop listening, cancel requests in flight and wait for the thread (idempotent)."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed since the check
                loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_TIMEOUT_S)
        self._thread = None

    def __enter__(self) -> ViamGrpcServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = Server(self.handlers())
            await server.start(sock=sock)
        except Exception as exc:  # handed to start(), which raises it in the caller's thread
            sock.close()
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        log.info("serving Viam's vision and ML model services on %s", self.address)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            await server.wait_closed()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so that a busy or bad address fails in :meth:`start`
    with a sentence, and so that port 0 tells which port it got."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=100)
    except OSError as exc:
        raise BadInput(
            f"cannot serve Viam gRPC on {host}:{port}: {exc.strerror or exc}; pick another "
            "viam_grpc address in the machine config"
        ) from exc
