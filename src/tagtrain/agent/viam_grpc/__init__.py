"""The agent's vision and ML-model services over Viam's own gRPC API, so code written for Viam
(``VisionClient``, ``MLModelClient``) works unchanged against a tagtrain machine.

The handlers subclass the service bases viam-sdk generates and answer on a grpclib server; every
answer comes from :class:`~tagtrain.agent.services.Services`, so the HTTP API, the live view and
this API report the same labels. A sliver of Viam's robot service (``ResourceNames``) lets
``RobotClient.at_address(...)`` connect directly (``DialOptions(insecure=True,
disable_webrtc=True)``) and find both services by name. tagtrain classifies whole images: the
detection and point-cloud calls answer UNIMPLEMENTED with a sentence saying so.

Errors map to gRPC statuses as the HTTP API maps them to HTTP ones: bad input (an image that
does not decode, a wrong tensor) -> INVALID_ARGUMENT, an unknown service or camera ->
NOT_FOUND, no model deployed or no frame yet -> UNAVAILABLE, each with our sentence; anything
unexpected -> INTERNAL with a generic sentence, the details logged here.

The parts, one job each:

- :mod:`.server` -- :class:`ViamGrpcServer`: binds, serves the handlers on its own thread.
- :mod:`.vision`, :mod:`.mlmodel`, :mod:`.robot` -- the handlers of Viam's three services.
- :mod:`.convert` -- Viam's messages <-> ours (RGBA frames, classifications, tensors, metadata).
- :mod:`.errors` -- the sentences, and how a call's failure becomes a gRPC status.

This package is the only place that imports viam (the ``viam`` extra); the agent imports it only
when a machine's config asks for ``viam_grpc``.
"""

from __future__ import annotations

import importlib
import sys

from tagtrain.errors import BadInput

# Every viam and grpclib module the parts use, imported first so that a missing extra fails every
# import of this package (not only the first, while the parts are not yet loaded) with one sentence.
_NEEDS = (
    "grpclib.const",
    "grpclib.exceptions",
    "grpclib.server",
    "viam.media.viam_rgba",
    "viam.proto.common",
    "viam.proto.component.camera",
    "viam.proto.robot",
    "viam.proto.service.mlmodel",
    "viam.proto.service.vision",
    "viam.services.mlmodel.utils",
    "viam.utils",
)

_excepthook = sys.excepthook
try:
    for _module in _NEEDS:
        importlib.import_module(_module)

    from tagtrain.agent.viam_grpc.convert import (
        classify_image_bytes,
        decode_viam_rgba,
        viam_metadata,
    )
    from tagtrain.agent.viam_grpc.errors import (
        INTERNAL,
        NO_COMMANDS,
        NO_DETECTIONS,
        NO_POINT_CLOUDS,
        grpc_error,
    )
    from tagtrain.agent.viam_grpc.mlmodel import MLModelService
    from tagtrain.agent.viam_grpc.robot import RobotService
    from tagtrain.agent.viam_grpc.server import START_TIMEOUT_S, STOP_TIMEOUT_S, ViamGrpcServer
    from tagtrain.agent.viam_grpc.vision import VisionService
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

__all__ = [
    "INTERNAL",
    "NO_COMMANDS",
    "NO_DETECTIONS",
    "NO_POINT_CLOUDS",
    "START_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "MLModelService",
    "RobotService",
    "ViamGrpcServer",
    "VisionService",
    "classify_image_bytes",
    "decode_viam_rgba",
    "grpc_error",
    "viam_metadata",
]
