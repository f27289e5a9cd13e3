"""/api/v1/machines/{id}/cameras/{camera}/...: a machine's live view, relayed by the server.

For browsers that cannot reach the machine itself. Every request here marks the machine watched,
which tells its agent (in its next config) to push frames; ``live_frames`` keeps the newest.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from tagtrain.errors import BadInput, NotFound
from tagtrain.machine_config import NAME_PATTERN
from tagtrain.server.deps import CurrentUser, StoreDep
from tagtrain.server.live_frames import MEDIA_TYPE, LiveFramesDep
from tagtrain.store import machines as machine_store

router = APIRouter(prefix="/api/v1/machines", tags=["machines"])
NO_STORE = {"Cache-Control": "no-store"}  # a live picture: never show a cached one


def _machine_name(store: StoreDep, machine_id: int, camera: str) -> str:
    """The machine's name (404 if there is none), once the camera's name is a valid one."""
    if not re.fullmatch(NAME_PATTERN, camera):
        raise BadInput(
            f"camera {camera!r} must be a camera name: 1-64 letters, digits, '_', '.' or '-'"
        )
    with store.transaction() as session:
        return machine_store.get(session, machine_id).name


@router.get("/{machine_id}/cameras/{camera}/frame.jpg", response_class=Response)
def live_frame(
    store: StoreDep, live: LiveFramesDep, _user: CurrentUser, machine_id: int, camera: str
) -> Response:
    """The newest frame the machine relayed for this camera (with its labels drawn on)."""
    name = _machine_name(store, machine_id, camera)
    live.watch(machine_id)
    found = live.latest(machine_id, camera)
    if found is None:
        raise NotFound(
            f"machine {name!r} has relayed no frame of camera {camera!r} yet: its agent starts "
            "sending frames when someone watches (within a few seconds while it is online); "
            "try again in a moment"
        )
    headers = NO_STORE | {"X-Frame-At": found.at.isoformat()}
    return Response(found.jpeg, media_type="image/jpeg", headers=headers)


@router.get("/{machine_id}/cameras/{camera}/live.mjpg", response_class=StreamingResponse)
def live_stream(
    request: Request,
    store: StoreDep,
    live: LiveFramesDep,
    _user: CurrentUser,
    machine_id: int,
    camera: str,
) -> StreamingResponse:
    """The relayed frames as an MJPEG stream (``multipart/x-mixed-replace``), as they arrive,
    until the viewer goes."""
    _machine_name(store, machine_id, camera)
    live.watch(machine_id)
    stream = live.stream(machine_id, camera, request.is_disconnected)
    return StreamingResponse(stream, media_type=MEDIA_TYPE, headers=NO_STORE)
