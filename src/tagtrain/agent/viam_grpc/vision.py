"""Viam's vision service over :class:`~tagtrain.agent.services.Services`: classifications, from
an image or a camera; the detection and point-cloud calls answer UNIMPLEMENTED."""

# ruff: noqa: N802 - the handlers carry the names of Viam's gRPC methods

from __future__ import annotations

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream
from viam.proto.common import (
    DoCommandRequest,
    DoCommandResponse,
    GetStatusRequest,
    GetStatusResponse,
)
from viam.proto.component.camera import Image
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
from viam.utils import dict_to_struct

from tagtrain.agent.services import Services
from tagtrain.agent.viam_grpc.convert import classify_image_bytes, status, to_viam
from tagtrain.agent.viam_grpc.errors import (
    NO_COMMANDS,
    NO_DETECTIONS,
    NO_POINT_CLOUDS,
    answer,
    check_name,
)


class VisionService(VisionServiceBase):
    """Viam's ``VisionService`` over :class:`Services` (classifications only)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _check(self, name: str) -> None:
        check_name("vision", name, self.services.name)

    # -- what tagtrain answers ---------------------------------------------------------------

    async def GetClassifications(
        self, stream: Stream[GetClassificationsRequest, GetClassificationsResponse]
    ) -> None:
        await answer(stream, self._classifications)

    def _classifications(self, request: GetClassificationsRequest) -> GetClassificationsResponse:
        self._check(request.name)
        found = classify_image_bytes(self.services, request.image, request.n)
        return GetClassificationsResponse(classifications=to_viam(found))

    async def GetClassificationsFromCamera(
        self,
        stream: Stream[GetClassificationsFromCameraRequest, GetClassificationsFromCameraResponse],
    ) -> None:
        await answer(stream, self._classifications_from_camera)

    def _classifications_from_camera(
        self, request: GetClassificationsFromCameraRequest
    ) -> GetClassificationsFromCameraResponse:
        self._check(request.name)
        found = self.services.get_classifications_from_camera(request.camera_name, request.n)
        return GetClassificationsFromCameraResponse(classifications=to_viam(found))

    async def GetProperties(
        self, stream: Stream[GetPropertiesRequest, GetPropertiesResponse]
    ) -> None:
        await answer(stream, self._properties)

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
        await answer(stream, self._capture_all)

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
            classifications=to_viam(capture.classifications or []),
            extra=dict_to_struct({"captured_at": capture.at.isoformat()}),
        )

    async def GetStatus(self, stream: Stream[GetStatusRequest, GetStatusResponse]) -> None:
        await answer(stream, self._status)

    def _status(self, request: GetStatusRequest) -> GetStatusResponse:
        self._check(request.name)
        return GetStatusResponse(result=dict_to_struct(status(self.services)))

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
