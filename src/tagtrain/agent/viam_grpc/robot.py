"""The sliver of Viam's robot service that lets ``RobotClient`` connect to a tagtrain machine."""

# ruff: noqa: N802 - the handlers carry the names of Viam's gRPC methods

from __future__ import annotations

from grpclib.server import Stream
from viam.proto.common import ResourceName
from viam.proto.robot import (
    ResourceNamesRequest,
    ResourceNamesResponse,
    UnimplementedRobotServiceBase,
)

from tagtrain.agent.viam_grpc.errors import answer


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
        await answer(stream, lambda _request: ResourceNamesResponse(resources=self.resources))
