"""The app factory: ``create_app(settings)`` wires the store, the routes and the error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from tagtrain import __version__
from tagtrain.errors import TagtrainError, TooLarge, Unauthorized
from tagtrain.jobs.runner import LocalWorkerRunner, NoRunner
from tagtrain.server.api_docs import install_docs
from tagtrain.server.live_frames import LiveFrames
from tagtrain.server.routes import (
    account,
    agent_api,
    browse,
    data_pages,
    dataset_pages,
    datasets,
    images,
    jobs,
    live_view,
    machine_pages,
    machines,
    model_pages,
    models,
    pages,
    tags,
)
from tagtrain.settings import Settings
from tagtrain.store import Store, open_store

HERE = Path(__file__).parent


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the app. The store is opened here (migrating the schema) unless one is passed in."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = app.state.runner
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            app.state.store.close()

    app = FastAPI(
        title="tagtrain",
        version=__version__,
        description="Self-hosted, no-code image classification.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.store = store or open_store(settings)
    app.state.runner = LocalWorkerRunner(settings) if settings.worker else NoRunner()
    app.state.live_frames = LiveFrames()  # the live-view relay: in memory only, by design
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    routers = (
        pages,
        data_pages,
        dataset_pages,
        browse,
        images,
        tags,
        datasets,
        account,
        jobs,
        models,
        model_pages,
        machines,
        live_view,
        machine_pages,
        agent_api,
    )
    for module in routers:
        app.include_router(module.router)
    install_docs(app)
    _install_error_handlers(app)
    _install_body_limit(app, settings)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TagtrainError)
    async def tagtrain_error(request: Request, exc: TagtrainError) -> Response:
        if isinstance(exc, Unauthorized) and not request.url.path.startswith("/api/"):
            return RedirectResponse("/login", status_code=303)
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse(
            {"detail": _sentence(exc), "errors": jsonable(exc.errors())}, status_code=422
        )


def _sentence(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = " ".join(str(p) for p in err.get("loc", ()) if p != "body")
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts) or "the request is not valid"


def jsonable(errors: object) -> object:
    return jsonable_encoder(errors, custom_encoder={Exception: str})


def _install_body_limit(app: FastAPI, settings: Settings) -> None:
    """Refuse a request body larger than a full batch could need before anything is parsed."""
    max_body = settings.max_upload_bytes * 100

    @app.middleware("http")
    async def body_limit(request: Request, call_next):  # type: ignore[no-untyped-def]
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > max_body:
            err = TooLarge(
                f"the request body is over the {max_body:,}-byte limit; send fewer files"
            )
            return JSONResponse({"detail": err.message}, status_code=err.status)
        return await call_next(request)
