"""The app's pages: the data tab, the image view (keyboard labeling), Account (Models and the
training pages are in ``model_pages``, Machines in ``machine_pages``).

The pages are shells rendered here; the small ES modules in ``static/`` fill them from the REST API.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from tagtrain.errors import TagtrainError
from tagtrain.server.deps import StoreDep, optional_user
from tagtrain.server.routes.images import FilterDep
from tagtrain.server.routes.web import PageUser, needs_setup, render, render_error
from tagtrain.store import images as image_store
from tagtrain.store.filters import filtered_ids
from tagtrain.store.tables import Image, Machine, User

router = APIRouter(include_in_schema=False)
MaybeUser = Annotated[User | None, Depends(optional_user)]
SOURCES = ("upload", "import", "machine")


def machine_names(store: StoreDep) -> list[str]:
    with store.transaction() as session:
        return list(session.scalars(select(Machine.name).order_by(Machine.name)))


@router.get("/", response_class=HTMLResponse)
def data_tab(request: Request, store: StoreDep, user: MaybeUser) -> Response:
    """The data tab: filters with live counts, the thumbnail grid, uploads and the camera."""
    if needs_setup(store):
        return RedirectResponse("/setup", status_code=303)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return render(
        request,
        "data.html",
        user=user,
        tab="data",
        machines=machine_names(store),
        sources=SOURCES,
    )


@router.get("/label", response_class=HTMLResponse)
def start_labeling(request: Request, store: StoreDep, user: PageUser, flt: FilterDep) -> Response:
    """Open the newest image matching the filter in the image view, keeping the filter."""
    try:
        with store.transaction() as session:
            first = session.scalar(filtered_ids(session, flt).order_by(Image.id.desc()).limit(1))
    except TagtrainError as exc:
        return render_error(request, user, exc)
    query = request.url.query
    if first is None:
        target = "/?" + urlencode({"empty": "label"}) + ("&" + query if query else "")
        return RedirectResponse(target, status_code=303)
    return RedirectResponse(f"/images/{first}" + ("?" + query if query else ""), status_code=303)


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_view(request: Request, store: StoreDep, user: PageUser, image_id: int) -> Response:
    """One image large, its tags, datasets and metadata; keys 1-9 label, arrows move."""
    try:
        with store.transaction() as session:
            image_store.get(session, image_id)
    except TagtrainError as exc:
        return render_error(request, user, exc)
    return render(request, "image.html", user=user, tab="data", image_id=image_id)


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, user: PageUser) -> Response:
    """The user's API keys; an admin also manages the other accounts here."""
    return render(request, "account.html", user=user, tab="account")
