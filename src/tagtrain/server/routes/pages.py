"""Web pages: first-run setup, login and logout. The app's own pages live in ``data_pages`` and
``dataset_pages``.

Forms are CSRF-protected: before login by a double-submit cookie (a random token in a cookie that
the form must repeat), after login by the session's own token.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tagtrain.errors import Forbidden, TagtrainError
from tagtrain.server.deps import SESSION_COOKIE, SettingsDep, StoreDep, optional_user
from tagtrain.server.routes.web import needs_setup, render
from tagtrain.store import users as user_store
from tagtrain.store.tables import User

router = APIRouter(include_in_schema=False)
PRE_CSRF_COOKIE = "tagtrain_csrf"
MaybeUser = Annotated[User | None, Depends(optional_user)]


def _form_page(request: Request, name: str, status: int = 200, **context: object) -> Response:
    """A page with a pre-login form: reuse or set the double-submit CSRF cookie."""
    token = request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, name, status, csrf_token=token, **context)
    response.set_cookie(PRE_CSRF_COOKIE, token, httponly=True, samesite="strict")
    return response


def _check_pre_csrf(request: Request, sent: str) -> None:
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    if not cookie or not user_store.same(cookie, sent):
        raise Forbidden("the form expired; reload the page and try again")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/setup", response_class=HTMLResponse)
def setup_page(request: Request, store: StoreDep) -> Response:
    if not needs_setup(store):
        return RedirectResponse("/login", status_code=303)
    return _form_page(request, "setup.html")


@router.post("/setup", response_class=HTMLResponse)
def setup_submit(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Create the first (admin) account; refused once any account exists."""
    _check_pre_csrf(request, csrf_token)
    try:
        with store.transaction() as session:
            if user_store.user_count(session) > 0:
                raise Forbidden("tagtrain is set up already; log in instead")
            user = user_store.create_user(
                session, username=username, password=password, is_admin=True
            )
    except TagtrainError as exc:
        return _form_page(request, "setup.html", exc.status, error=exc.message, username=username)
    return _logged_in(store, settings, user)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, store: StoreDep, user: MaybeUser) -> Response:
    if needs_setup(store):
        return RedirectResponse("/setup", status_code=303)
    if user is not None:
        return RedirectResponse("/", status_code=303)
    return _form_page(request, "login.html")


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    _check_pre_csrf(request, csrf_token)
    try:
        with store.transaction() as session:
            user = user_store.authenticate(session, username=username, password=password)
    except TagtrainError as exc:
        return _form_page(request, "login.html", exc.status, error=exc.message, username=username)
    return _logged_in(store, settings, user)


def _logged_in(store: StoreDep, settings: SettingsDep, user: User) -> Response:
    with store.transaction() as session:
        token, _csrf = user_store.start_session(
            session, user=user, max_age_s=settings.session_max_age_s
        )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    response.delete_cookie(PRE_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, store: StoreDep, csrf_token: Annotated[str, Form()] = "") -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with store.transaction() as session:
            found = user_store.session_user(session, cookie)
            if found and not user_store.same(found[1], csrf_token):
                raise Forbidden("missing or wrong CSRF token; reload the page and try again")
            user_store.end_session(session, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
