"""Typed dependencies: the store, the settings and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tagtrain.errors import Forbidden, Unauthorized
from tagtrain.settings import Settings
from tagtrain.store import Store
from tagtrain.store import users as user_store
from tagtrain.store.machines import KEY_PREFIX as MACHINE_KEY_PREFIX
from tagtrain.store.tables import User

SESSION_COOKIE = "tagtrain_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def api_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def optional_user(request: Request, store: StoreDep) -> User | None:
    """The user behind an API key or a login cookie, or None. Cookie-authenticated requests that
    change something must carry the session's CSRF token (header or form field)."""
    token = api_token(request)
    with store.transaction() as session:
        if token:
            if token.startswith(MACHINE_KEY_PREFIX):
                raise Unauthorized(
                    "this is a machine key: machine keys only work for the agent API "
                    "(/api/v1/agent/...); use a user's API key or log in"
                )
            user = user_store.user_for_api_key(session, token)
            if user is None:
                raise Unauthorized("the API key is not valid (wrong, or revoked); create a new one")
            return user
        cookie = request.cookies.get(SESSION_COOKIE)
        found = user_store.session_user(session, cookie) if cookie else None
    if found is None:
        return None
    user, csrf = found
    request.state.csrf_token = csrf
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER) or getattr(request.state, "form_csrf", "")
        if not sent or not user_store.same(sent, csrf):
            raise Forbidden("missing or wrong CSRF token; reload the page and try again")
    return user


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized(
            "log in first (at /login), or send an API key as 'Authorization: Bearer <key>'"
        )
    return user


def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("only an admin can do this")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
