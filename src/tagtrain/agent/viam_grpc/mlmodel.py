"""Viam's ML-model service over :class:`~tagtrain.agent.services.Services`: the package's ONNX
model, tensors in, tensors out, and its metadata."""

# ruff: noqa: N802 - the handlers carry the names of Viam's gRPC methods

from __future__ import annotations

from typing import Any

from grpclib.server import Stream
from numpy.typing import NDArray
from viam.proto.common import GetStatusRequest, GetStatusResponse
from viam.proto.service.mlmodel import (
    InferRequest,
    InferResponse,
    MetadataRequest,
    MetadataResponse,
    MLModelServiceBase,
)
from viam.services.mlmodel.utils import ndarrays_to_flat_tensors
from viam.utils import dict_to_struct

from tagtrain.agent.services import Services
from tagtrain.agent.viam_grpc.convert import from_flat_tensors, status, viam_metadata
from tagtrain.agent.viam_grpc.errors import answer, check_name


class MLModelService(MLModelServiceBase):
    """Viam's ``MLModelService`` over :class:`Services`: the package's ONNX model, tensor in,
    tensor out (``image`` uint8 ``(N, S, S, 3)`` -> ``probability`` float32 ``(N, K)``)."""

    def __init__(self, services: Services, name: str) -> None:
        self.services = services
        self.name = name

    def _check(self, name: str) -> None:
        check_name("ML model", name, self.name)

    async def Metadata(self, stream: Stream[MetadataRequest, MetadataResponse]) -> None:
        await answer(stream, self._metadata)

    def _metadata(self, request: MetadataRequest) -> MetadataResponse:
        self._check(request.name)
        return MetadataResponse(metadata=viam_metadata(self.services.metadata()))

    async def Infer(self, stream: Stream[InferRequest, InferResponse]) -> None:
        await answer(stream, self._infer)

    def _infer(self, request: InferRequest) -> InferResponse:
        self._check(request.name)
        tensors = from_flat_tensors(request)
        out: dict[str, NDArray[Any]] = dict(self.services.infer(tensors))
        return InferResponse(output_tensors=ndarrays_to_flat_tensors(out))

    async def GetStatus(self, stream: Stream[GetStatusRequest, GetStatusResponse]) -> None:
        await answer(stream, self._status)

    def _status(self, request: GetStatusRequest) -> GetStatusResponse:
        self._check(request.name)
        return GetStatusResponse(result=dict_to_struct(status(self.services)))
