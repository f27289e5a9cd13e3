"""Helpers shared by the web pages: rendering a template inside the app shell, and page errors.

A page that needs a login depends on :data:`PageUser`; without a session the app's error handler
sends the browser to ``/login`` (API paths get a 401 instead).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from tagtrain.errors import TagtrainError
from tagtrain.server.deps import StoreDep, current_user
from tagtrain.store import users as user_store
from tagtrain.store.tables import User

PageUser = Annotated[User, Depends(current_user)]


def templates(request: Request) -> Jinja2Templates:
    t: Jinja2Templates = request.app.state.templates
    return t


def render(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
    """Render ``name``; pages of a logged-in user also get the session's CSRF token."""
    context.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    return templates(request).TemplateResponse(request, name, context, status_code=status)


def render_error(request: Request, user: User | None, exc: TagtrainError) -> HTMLResponse:
    """A page saying what went wrong (a missing dataset or image), with the HTTP status."""
    return render(request, "error.html", exc.status, user=user, tab="", message=exc.message)


def needs_setup(store: StoreDep) -> bool:
    with store.transaction() as session:
        return user_store.user_count(session) == 0
