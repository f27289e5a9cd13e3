"""/api/v1/agent: what a machine's agent calls with its machine key (``docs/agent-protocol.md``).

Only a machine key works here (a user's key or login does not), and it reaches only its own
machine: its config, the package deployed to it now, its own captures and status, and the live
frames it relays while someone watches it (``live_frames``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tagtrain.errors import BadInput, Forbidden, InvalidImage, TooLarge, Unauthorized
from tagtrain.ingest import ImportOptions, Item, import_entries, limits_from
from tagtrain.machine_config import NAME_PATTERN, AgentStatus
from tagtrain.package import zip_package
from tagtrain.server.deps import SettingsDep, StoreDep
from tagtrain.server.live_frames import LiveFramesDep
from tagtrain.server.routes.images import over_limit
from tagtrain.store import machines as machine_store
from tagtrain.store.machines import KEY_PREFIX, Deployment
from tagtrain.store.tables import utcnow

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])
CAPTURE_ID = re.compile(r"[0-9a-fA-F]{32}")
MAX_AHEAD = timedelta(days=1)
#: A relayed live frame: an annotated JPEG of up to 4K is well under this.
MAX_FRAME_BYTES = 4 * 2**20
JPEG_START = b"\xff\xd8\xff"


@dataclass(frozen=True)
class AgentMachine:
    id: int
    name: str


def current_machine(request: Request, store: StoreDep) -> AgentMachine:
    """The machine whose key is in ``Authorization: Bearer tm_...``."""
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    if not token:
        raise Unauthorized(
            "the agent API needs a machine key: send 'Authorization: Bearer tm_...' (people "
            "log in at /login for the rest of the API; a login does not open this part)"
        )
    if not token.startswith(KEY_PREFIX):
        raise Unauthorized(
            "the key is not valid for the agent API: it takes only machine keys (tm_...), "
            "not a user's API key"
        )
    with store.transaction() as session:
        machine = machine_store.machine_for_key(session, token)
        if machine is None:
            raise Unauthorized(
                "the machine key is not valid (wrong, or revoked); make a new key on the "
                "machine's page and restart the agent with it"
            )
        return AgentMachine(machine.id, machine.name)


MachineDep = Annotated[AgentMachine, Depends(current_machine)]


class DeploymentOut(BaseModel):
    model: str
    version: int
    pinned: bool
    manifest_sha256: str
    package_url: str

    @classmethod
    def of(cls, found: Deployment) -> DeploymentOut:
        return cls(
            model=found.model,
            version=found.version,
            pinned=found.pinned,
            manifest_sha256=found.manifest_sha256(),
            package_url=f"/api/v1/agent/package/{found.model}/{found.version}.zip",
        )


class CaptureOut(BaseModel):
    image_id: int
    existing: bool


@router.get("/config")
def agent_config(
    store: StoreDep, settings: SettingsDep, live: LiveFramesDep, me: MachineDep
) -> dict[str, Any]:
    """The machine, its config, what is deployed to it now (resolved to a version), and whether
    someone watches its live view through the server (then it sends frames to ``/frames``)."""
    with store.transaction() as session:
        machine = machine_store.get(session, me.id)
        found = machine_store.resolve_deployment(session, machine, data=settings.data)
        config = machine_store.config_of(machine)
    return {
        "machine": {"id": me.id, "name": me.name},
        "config": config.model_dump(mode="json"),
        "deployment": DeploymentOut.of(found).model_dump() if found else None,
        "live_view": live.watched(me.id),
    }


@router.get("/package/{name}/{version}.zip", response_class=Response)
async def package(
    store: StoreDep, settings: SettingsDep, me: MachineDep, name: str, version: int
) -> Response:
    """The package zip, only of the version deployed to this machine now."""
    with store.transaction() as session:
        machine = machine_store.get(session, me.id)
        found = machine_store.resolve_deployment(session, machine, data=settings.data)
    if found is None or (found.model, found.version) != (name, version):
        now = f"{found.model}@{found.version}" if found else "nothing"
        raise Forbidden(
            f"{name}@{version} is not deployed to machine {me.name!r} (deployed now: {now})"
        )
    data = await run_in_threadpool(zip_package, found.package_dir)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}-{version}.zip"'},
    )


def _capture_id(raw: str | None) -> str:
    if raw is None or not CAPTURE_ID.fullmatch(raw):
        raise BadInput(f"capture_id {raw!r} must be 32 hexadecimal characters")
    return raw.lower()


def _camera(raw: str | None) -> str:
    if raw is None or not re.fullmatch(NAME_PATTERN, raw):
        raise BadInput(
            f"camera {raw!r} must be a camera name: 1-64 letters, digits, '_', '.' or '-'"
        )
    return raw


def _captured_at(raw: str | None) -> datetime:
    try:
        at = datetime.fromisoformat(raw or "")
    except ValueError as exc:
        raise BadInput(
            f"captured_at {raw!r} is not an ISO-8601 time (e.g. 2026-05-01T12:00:00+00:00)"
        ) from exc
    if at.tzinfo is None:
        raise BadInput(f"captured_at {raw!r} has no time zone; add one, e.g. +00:00 or Z")
    if at - utcnow() > MAX_AHEAD:
        raise BadInput(
            f"captured_at {raw!r} is more than a day in the future; check the machine's clock"
        )
    return at


@router.post("/captures", response_model=CaptureOut)
async def capture(
    store: StoreDep,
    settings: SettingsDep,
    me: MachineDep,
    file: Annotated[UploadFile | None, File(description="The JPEG.")] = None,
    capture_id: Annotated[str | None, Form(description="The agent's id: 32 hex.")] = None,
    camera: Annotated[str | None, Form()] = None,
    captured_at: Annotated[str | None, Form(description="ISO-8601 with a zone.")] = None,
    tags: Annotated[list[str] | None, Form()] = None,
) -> CaptureOut:
    """Store a frame this machine captured. The same bytes twice store one image."""
    # Every field is optional to FastAPI so that a missing one is a 400 naming it, like a bad one.
    if file is None:
        raise BadInput("file is missing: send the captured image as the multipart field 'file'")
    cid, cam, at = _capture_id(capture_id), _camera(camera), _captured_at(captured_at)
    limits, image_limits = limits_from(settings)
    name = f"{cam}-{cid}.jpg"
    over = over_limit(file, limits.max_file_bytes)
    if over:
        raise TooLarge(f"{name}: {over}")
    data = await file.read()
    options = ImportOptions(
        source="machine",
        tags=tuple(tags or ()),
        machine_id=me.id,
        camera=cam,
        captured_at=at,
        thumbnail_size=settings.thumbnail_size,
        threads=1,
    )
    item = Item(name=name, key=name, folder=None, read=lambda: data)
    report = await run_in_threadpool(import_entries, store, [item], options, image_limits)
    if report.rejected:
        raise InvalidImage(name, report.rejected[0].reason)
    return CaptureOut(image_id=report.image_ids[0], existing=report.existing > 0)


@router.post("/status", status_code=204, response_class=Response)
def status(store: StoreDep, me: MachineDep, body: AgentStatus) -> Response:
    """Record what the agent reports, and that it was seen now."""
    with store.transaction() as session:
        machine = machine_store.get(session, me.id)
        machine_store.record_status(session, machine=machine, status=body)
    return Response(status_code=204)


@router.post("/frames", status_code=204, response_class=Response)
async def frame(
    live: LiveFramesDep,
    me: MachineDep,
    file: Annotated[UploadFile | None, File(description="The annotated JPEG.")] = None,
    camera: Annotated[str | None, Form()] = None,
) -> Response:
    """Relay a camera's newest annotated frame to whoever watches this machine's live view. Kept
    in memory only, newest per camera (frames are ephemeral: nothing is stored)."""
    # Optional to FastAPI so that a missing field is a 400 naming it, as for captures.
    if file is None:
        raise BadInput("file is missing: send the annotated frame as the multipart field 'file'")
    cam = _camera(camera)
    name = f"the live frame of camera {cam!r}"
    if (file.size or 0) > MAX_FRAME_BYTES:
        raise TooLarge(f"{name} is {file.size:,} bytes, over the {MAX_FRAME_BYTES:,}-byte limit")
    data = await file.read(MAX_FRAME_BYTES + 1)
    if len(data) > MAX_FRAME_BYTES:  # the declared size can be missing
        raise TooLarge(f"{name} is over the {MAX_FRAME_BYTES:,}-byte limit")
    if not data.startswith(JPEG_START):
        raise InvalidImage(name, "it is not a JPEG (it does not start like one)")
    live.put(me.id, cam, data)
    return Response(status_code=204)
