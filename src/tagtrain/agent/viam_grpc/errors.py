"""How a Viam gRPC call fails: the sentences for what tagtrain does not do, the gRPC status for
each of our errors, and :func:`answer`, which runs a handler and maps what it raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream

from tagtrain.errors import (
    BadInput,
    Cancelled,
    Conflict,
    Forbidden,
    NotFound,
    TagtrainError,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger("tagtrain.agent.viam_grpc")

NO_DETECTIONS = "tagtrain classifies whole images; detections are not supported"
NO_POINT_CLOUDS = (
    "tagtrain classifies whole images; 3D detections and point clouds are not supported"
)
NO_COMMANDS = "tagtrain's {} service takes no commands (DoCommand is not supported)"
INTERNAL = "the machine failed to answer; its agent log has the details"

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


async def answer(stream: Stream[Req, Resp], handle: Callable[[Req], Resp]) -> None:
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


def check_name(kind: str, asked: str, served: str) -> None:
    """NotFound unless the request names the ``kind`` service this machine serves."""
    if asked != served:
        raise NotFound(
            f"this machine has no {kind} service named {asked!r}; its {kind} service is "
            f"named {served!r}"
        )
