"""OpenAPI schema and Swagger UI at /docs, behind login, with the UI's files served from the
``swagger-ui-bundle`` wheel so the docs work offline (FastAPI's default loads them from a CDN)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from tagtrain.server.deps import CurrentUser

ASSETS = "/docs-assets"


def install_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_user: CurrentUser) -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False)
    def docs(_user: CurrentUser) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="tagtrain API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )
