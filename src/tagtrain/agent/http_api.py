"""The machine's local HTTP API: the vision and ML-model services at the same paths as on the
server (so ``tagtrain.client`` and scripts work against either), the live MJPEG stream of each
camera, and the agent's status. It listens on loopback unless told otherwise and has no login:
whoever can reach the port can use the model, as with Viam's local services."""

from __future__ import annotations

import base64
import html
import threading
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tagtrain.agent.live_frames import LiveFrames
from tagtrain.agent.services import Services
from tagtrain.agent.stream import MEDIA_TYPE, mjpeg
from tagtrain.errors import NotFound, TagtrainError
from tagtrain.machine_config import AgentStatus, Classifications
from tagtrain.runtime.tensors import decode_tensors, encode_tensors

CameraName = Annotated[str, Query(description="The camera's name in the machine config.")]
TopN = Annotated[int, Query(description="Top n; 0 or less returns all.")]


router = APIRouter()


def create_agent_app(
    services: Services,
    status: Callable[[], AgentStatus],
    *,
    closing: threading.Event | None = None,
    live: LiveFrames | None = None,
) -> FastAPI:
    """The app; set ``closing`` before stopping its server, so that the endless live streams end
    (the server waits for open responses before it stops). ``live``: the annotated frames its
    streams show, shared with whoever else shows them (else its own)."""
    app = FastAPI(title="tagtrain agent", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.live = live or LiveFrames(services)
    app.state.status = status
    app.state.closing = closing or threading.Event()
    app.add_exception_handler(TagtrainError, _error)  # type: ignore[arg-type]
    app.include_router(router)
    return app


async def _error(_request: Request, exc: TagtrainError) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


def _service(request: Request, name: str) -> Services:
    """The services, if ``name`` is this machine's service name (as Viam checks names)."""
    services: Services = request.app.state.services
    if name != services.name:
        raise NotFound(f"this machine's service is named {services.name!r}, not {name!r}")
    return services


ServiceDep = Annotated[Services, Depends(_service)]


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/status", response_model=AgentStatus)
def agent_status(request: Request) -> AgentStatus:
    status: AgentStatus = request.app.state.status()
    return status


@router.post("/api/v1/vision/{name}/classifications", response_model=Classifications)
async def classifications(
    services: ServiceDep,
    image: Annotated[bytes, Body(media_type="application/octet-stream")],
    n: TopN = 3,
) -> Classifications:
    found = await run_in_threadpool(
        services.get_classifications, image, n, name="the uploaded image"
    )
    return Classifications.of(found)


@router.get("/api/v1/vision/{name}/classifications-from-camera", response_model=Classifications)
def from_camera(services: ServiceDep, camera_name: CameraName, n: TopN = 3) -> Classifications:
    return Classifications.of(services.get_classifications_from_camera(camera_name, n))


@router.get("/api/v1/vision/{name}/properties")
def properties(services: ServiceDep) -> dict[str, bool]:
    return services.get_properties()


@router.get("/api/v1/vision/{name}/capture-all-from-camera")
async def capture_all(
    services: ServiceDep,
    camera_name: CameraName,
    return_image: bool = True,
    return_classifications: bool = True,
    n: TopN = 0,
) -> dict[str, Any]:
    """CaptureAllFromCamera: the newest frame (base64 JPEG) and its classifications."""
    capture = await run_in_threadpool(
        services.capture_all_from_camera,
        camera_name,
        return_image=return_image,
        return_classifications=return_classifications,
        n=n,
    )
    found = capture.classifications
    return {
        "camera": capture.camera,
        "captured_at": capture.at.isoformat(),
        "width": capture.width,
        "height": capture.height,
        "mime_type": "image/jpeg" if capture.jpeg is not None else None,
        "image": base64.b64encode(capture.jpeg).decode() if capture.jpeg else None,
        "classifications": None if found is None else Classifications.of(found).classifications,
    }


@router.get("/api/v1/mlmodel/{name}/metadata")
def metadata(services: ServiceDep) -> dict[str, Any]:
    return services.metadata()


@router.post("/api/v1/mlmodel/{name}/infer")
async def infer(services: ServiceDep, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Infer: ``{"tensors": {"image": {"dtype", "shape", "data" (base64)}}}``."""
    tensors = decode_tensors(body.get("tensors"))
    out = await run_in_threadpool(services.infer, tensors)
    return {"tensors": encode_tensors(out)}


@router.get("/stream/{camera}.mjpg")
def stream(request: Request, camera: str) -> StreamingResponse:
    services: Services = request.app.state.services
    if camera not in services.frames.names():
        known = ", ".join(services.frames.names()) or "none"
        raise NotFound(f"this machine has no camera named {camera!r} (it has: {known})")
    return StreamingResponse(
        mjpeg(request.app.state.live, camera, request.app.state.closing), media_type=MEDIA_TYPE
    )


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> str:
    return _index_page(request.app.state.services)


def _index_page(services: Services) -> str:
    cams = "".join(
        f'<figure><img src="/stream/{html.escape(c)}.mjpg" alt="{html.escape(c)}" width="480">'
        f"<figcaption>{html.escape(c)}</figcaption></figure>"
        for c in services.frames.names()
    )
    return (
        "<!doctype html><meta charset=utf-8><title>tagtrain agent</title>"
        f"<h1>tagtrain agent: {html.escape(services.slot.ref or 'no model yet')}</h1>"
        f"{cams or '<p>No cameras are configured.</p>'}"
        '<p><a href="/status">status (JSON)</a></p>'
    )
