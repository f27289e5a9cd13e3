"""Auth contract (DESIGN.md, Auth): nothing but /healthz and the login/first-run pages without a
login session or an API key; first-run setup; login/logout; CSRF; API keys; hashed secrets; admins."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import text
from starlette.routing import Mount

from tagtrain.store import Store
from tagtrain.store import users as user_store
from tests.conftest import ADMIN

CSRF_INPUT = re.compile(r'name="csrf[_-]token" (?:value|content)="([^"]+)"')
PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
SESSION = "tagtrain_session"
PRE_CSRF = "tagtrain_csrf"

#: Pages that may answer 2xx to a stranger: health probe and the forms that let one in.
PUBLIC_PAGES = {("GET", "/healthz"), ("GET", "/login"), ("GET", "/setup")}
#: Mounts that may serve files to a stranger: the login page's CSS and the Swagger UI's JS/CSS.
PUBLIC_MOUNTS = {"/static", "/docs-assets"}


# ---- helpers -----------------------------------------------------------------------------------


def endpoints(app: FastAPI) -> Iterator[tuple[str, str, object]]:
    """Every (method, path template, route) the app serves, however routers are included.

    FastAPI >= 0.137 leaves an opaque ``_IncludedRouter`` in ``app.routes`` instead of copying
    the routes in; ``iter_route_contexts`` resolves those (with their prefixes)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        routes: list[object] = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    for route in routes:
        path = getattr(route, "path", None)
        assert path is not None, f"cannot tell the path of {route!r}; teach endpoints() about it"
        for method in sorted(getattr(route, "methods", None) or {""}):
            yield method, path, route


def fill(path: str, value: str) -> str:
    return PARAM.sub(value, path)


def form_token(res: Response) -> str:
    found = CSRF_INPUT.search(res.text)
    assert found, f"no csrf_token input in the page:\n{res.text[:500]}"
    return found.group(1)


def log_in(client: TestClient, username: str, password: str) -> str:
    """Log in through the form; returns the session's CSRF token (from the page's logout form)."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    res = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": form_token(page)},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    assert SESSION in res.cookies
    home = client.get("/")
    assert home.status_code == 200
    return form_token(home)


def make_user(store: Store, username: str, password: str, *, admin: bool = False) -> None:
    with store.transaction() as session:
        user_store.create_user(session, username=username, password=password, is_admin=admin)


def make_key(store: Store, username: str) -> str:
    with store.transaction() as session:
        user = next(u for u in user_store.list_users(session) if u.username == username)
        _key, token = user_store.create_api_key(session, user=user, name="t")
    return token


def user_count(store: Store) -> int:
    with store.transaction() as session:
        return user_store.user_count(session)


# ---- every route needs auth ----------------------------------------------------------------------


def test_endpoint_walk_sees_every_api_route(client: TestClient) -> None:
    """Guard against the walk below going vacuous (it once did when FastAPI changed app.routes)."""
    app: FastAPI = client.app  # type: ignore[assignment]
    walked = {(m, p) for m, p, _r in endpoints(app)}
    schema = app.openapi()["paths"]
    documented = {(m.upper(), p) for p, ops in schema.items() for m in ops}
    assert documented, "the OpenAPI schema lists no operations"
    assert documented <= walked, documented - walked
    assert ("POST", "/api/v1/images/tags") in walked
    assert ("DELETE", "/api/v1/keys/{key_id}") in walked


@pytest.mark.parametrize("credentials", ["none", "bogus key", "bogus cookie", "revoked key"])
def test_every_api_route_refuses_strangers(
    client: TestClient, store: Store, credentials: str
) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    headers: dict[str, str] = {}
    if credentials == "bogus key":
        headers["Authorization"] = "Bearer tt_not-a-key"
    elif credentials == "bogus cookie":
        client.cookies.set(SESSION, "not-a-session")
    elif credentials == "revoked key":
        make_user(store, *ADMIN, admin=True)
        token = make_key(store, ADMIN[0])
        with store.transaction() as session:
            admin = user_store.list_users(session)[0]
            (key,) = user_store.list_api_keys(session, admin)
            user_store.revoke_api_key(session, user=admin, key_id=key.id)
        headers["Authorization"] = f"Bearer {token}"
    seen = 0
    for method, path, _route in endpoints(app):
        if not path.startswith("/api/"):
            continue
        for value in ("1", "x"):
            url = fill(path, value)
            res = client.request(method, url, headers=headers)
            assert res.status_code == 401, f"{method} {url} answered {res.status_code}: {res.text}"
            if method != "HEAD":
                detail = res.json()["detail"]
                expected = "not valid" if "key" in credentials else "log in"
                assert expected in detail, (method, url, detail)
            seen += 1
    assert seen >= 2 * 25


@pytest.mark.parametrize("installed", [False, True], ids=["empty install", "installed"])
def test_only_health_and_login_pages_answer_strangers(
    client: TestClient, store: Store, installed: bool
) -> None:
    if installed:
        make_user(store, *ADMIN, admin=True)
    app: FastAPI = client.app  # type: ignore[assignment]
    public: set[tuple[str, str]] = set()
    for method, path, route in endpoints(app):
        if path.startswith("/api/"):
            continue  # the walk above covers these
        original = getattr(route, "original_route", route)
        if isinstance(original, Mount) or not method:
            # A mount serves files to anyone: only static assets may be mounted.
            assert path in PUBLIC_MOUNTS, f"unexpected mount {path}"
            assert isinstance(getattr(route, "app", None), StaticFiles), path
            continue
        assert isinstance(original, APIRoute), route
        res = client.request(method, fill(path, "x"), follow_redirects=False)
        if res.is_success:
            public.add((method, path))
        elif res.is_redirect:
            assert res.headers["location"] in ("/login", "/setup"), (method, path)
        else:
            assert res.status_code in (401, 403, 404, 405, 422), (method, path, res.status_code)
    assert public <= PUBLIC_PAGES | {("HEAD", p) for _m, p in PUBLIC_PAGES}
    assert ("GET", "/healthz") in public


def test_static_assets_are_public_but_docs_need_login(client: TestClient, api_token: str) -> None:
    assert client.get("/static/app.css").status_code == 200  # the login page needs its CSS
    for path in ("/docs", "/openapi.json"):
        res = client.get(path, follow_redirects=False)
        assert res.status_code == 303, path
        assert res.headers["location"] == "/login"
    authed = {"Authorization": f"Bearer {api_token}"}
    assert client.get("/openapi.json", headers=authed).json()["paths"]
    docs = client.get("/docs", headers=authed)
    assert docs.status_code == 200
    asset = re.search(r"/docs-assets/[\w.-]+\.js", docs.text)
    assert asset, docs.text[:500]
    assert client.get(asset.group(0)).status_code == 200


def test_healthz(client: TestClient) -> None:
    res = client.get("/healthz")
    assert res.status_code == 200
    assert res.json() == {"status": "ok"}


# ---- first run ---------------------------------------------------------------------------------


def test_first_run_redirects_to_setup_which_creates_the_admin(
    client: TestClient, store: Store
) -> None:
    for path in ("/", "/login"):
        res = client.get(path, follow_redirects=False)
        assert res.status_code == 303
        assert res.headers["location"] == "/setup"
    page = client.get("/setup")
    assert page.status_code == 200
    token = form_token(page)
    assert token
    assert client.cookies.get(PRE_CSRF) == token
    res = client.post(
        "/setup",
        data={"username": "root", "password": "long enough pw", "csrf_token": token},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    assert res.headers["location"] == "/"
    assert res.cookies.get(SESSION)
    assert PRE_CSRF not in client.cookies  # the pre-login token is spent
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["username"] == "root"
    assert me.json()["is_admin"] is True
    assert client.get("/").status_code == 200
    # Set up once: the page now sends people to log in, and a second POST is refused.
    res = client.get("/setup", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/login"
    client.cookies.clear()
    token = form_token(client.get("/login"))
    res = client.post(
        "/setup",
        data={"username": "intruder", "password": "long enough pw", "csrf_token": token},
        follow_redirects=False,
    )
    assert res.status_code == 403
    assert "set up already" in res.text
    assert SESSION not in res.cookies
    assert user_count(store) == 1


@pytest.mark.parametrize("how", ["no token", "wrong token", "no cookie"])
def test_setup_needs_the_forms_csrf_token(client: TestClient, store: Store, how: str) -> None:
    token = form_token(client.get("/setup"))
    form = {"username": "root", "password": "long enough pw"}
    if how == "wrong token":
        form["csrf_token"] = token + "x"
    elif how == "no cookie":
        form["csrf_token"] = token
        client.cookies.clear()
    res = client.post("/setup", data=form, follow_redirects=False)
    assert res.status_code == 403
    assert "reload the page" in res.text  # JSON today; an HTML page would do too
    assert SESSION not in res.cookies
    assert user_count(store) == 0


def test_setup_rejects_a_short_password_on_the_form(client: TestClient, store: Store) -> None:
    token = form_token(client.get("/setup"))
    res = client.post("/setup", data={"username": "root", "password": "short", "csrf_token": token})
    assert res.status_code == 400
    assert "at least 8 characters" in res.text
    assert 'value="root"' in res.text  # the form keeps what was typed
    assert user_count(store) == 0


# ---- login / logout ------------------------------------------------------------------------------


@pytest.mark.parametrize("username", [ADMIN[0], "nobody"])
def test_login_with_wrong_password_shows_an_error(
    client: TestClient, api_token: str, username: str
) -> None:
    token = form_token(client.get("/login"))
    res = client.post(
        "/login",
        data={"username": username, "password": "wrong password", "csrf_token": token},
        follow_redirects=False,
    )
    assert res.status_code == 401
    assert "wrong username or password" in res.text
    assert SESSION not in res.cookies
    assert client.get("/api/v1/me").status_code == 401


def test_login_needs_the_forms_csrf_token(client: TestClient, api_token: str) -> None:
    client.get("/login")
    res = client.post(
        "/login", data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": "forged"}
    )
    assert res.status_code == 403
    assert SESSION not in res.cookies


def test_login_then_logout_ends_the_session(
    client: TestClient, store: Store, api_token: str
) -> None:
    csrf = log_in(client, *ADMIN)
    assert client.get("/api/v1/me").json()["username"] == ADMIN[0]
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"
    cookie = client.cookies[SESSION]
    # Logging out takes the session's CSRF token: a forged form cannot log people out.
    res = client.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert res.status_code == 403
    assert client.get("/api/v1/me").status_code == 200
    res = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/login"
    me = client.get("/api/v1/me")
    assert me.status_code == 401
    assert "log in" in me.json()["detail"]
    # The old cookie is dead on the server too, not just dropped by the browser.
    client.cookies.set(SESSION, cookie)
    assert client.get("/api/v1/me").status_code == 401
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM login_sessions")).scalar() == 0


# ---- CSRF on the API ---------------------------------------------------------------------------


def test_cookie_requests_that_change_things_need_the_csrf_header(
    client: TestClient, api_token: str
) -> None:
    csrf = log_in(client, *ADMIN)
    good = {"X-CSRF-Token": csrf}
    bad = {"X-CSRF-Token": csrf + "x"}
    steps = [
        ("POST", "/api/v1/datasets", {"name": "d"}, 201),
        ("PATCH", "/api/v1/datasets/d", {"description": "x"}, 200),
        ("POST", "/api/v1/keys", {"name": "k"}, 201),
        ("DELETE", "/api/v1/datasets/d", None, 200),
    ]
    for method, url, body, ok in steps:
        for headers in ({}, bad):
            res = client.request(method, url, json=body, headers=headers)
            assert res.status_code == 403, (method, url, headers, res.text)
            assert "CSRF" in res.json()["detail"]
        res = client.request(method, url, json=body, headers=good)
        assert res.status_code == ok, (method, url, res.text)
    # Reading needs no token.
    assert client.get("/api/v1/datasets").status_code == 200
    assert client.get("/api/v1/images/count").json() == {"count": 0}


def test_csrf_token_of_another_session_is_refused(client: TestClient, api_token: str) -> None:
    first = log_in(client, *ADMIN)
    client.cookies.clear()
    second = log_in(client, *ADMIN)
    assert first != second
    res = client.post("/api/v1/datasets", json={"name": "d"}, headers={"X-CSRF-Token": first})
    assert res.status_code == 403


def test_api_key_requests_need_no_csrf_token(api: TestClient) -> None:
    assert api.post("/api/v1/datasets", json={"name": "d"}).status_code == 201
    assert api.patch("/api/v1/datasets/d", json={"description": "x"}).status_code == 200
    assert api.delete("/api/v1/datasets/d").status_code == 200


# ---- API keys ------------------------------------------------------------------------------------


def test_api_key_create_use_revoke(api: TestClient) -> None:
    res = api.post("/api/v1/keys", json={"name": "ci"})
    assert res.status_code == 201, res.text
    new = res.json()
    token = new["token"]
    assert token.startswith("tt_")
    assert len(token) > 30
    assert new["prefix"] == token[: len(new["prefix"])]
    assert new["revoked_at"] is None
    # Shown once: listing shows the key but never the token.
    listed = {k["id"]: k for k in api.get("/api/v1/keys").json()}
    assert "token" not in listed[new["id"]]
    assert token not in api.get("/api/v1/keys").text
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-API-Key": token}):
        me = api.get("/api/v1/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["username"] == ADMIN[0]
    assert api.get("/api/v1/keys").json()[-1]["last_used_at"] is not None
    assert api.delete(f"/api/v1/keys/{new['id']}").json() == {"changed": 1}
    res = api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 401
    assert "not valid" in res.json()["detail"]
    assert "revoked" in res.json()["detail"]
    revoked = {k["id"]: k for k in api.get("/api/v1/keys").json()}[new["id"]]
    assert revoked["revoked_at"] is not None
    assert api.delete("/api/v1/keys/9999").status_code == 404


def test_keys_and_passwords_are_stored_hashed(
    client: TestClient, api: TestClient, store: Store, api_token: str
) -> None:
    password = "bobs secret password"
    assert (
        api.post("/api/v1/users", json={"username": "bob", "password": password}).status_code == 201
    )
    token = api.post("/api/v1/keys", json={"name": "ci"}).json()["token"]
    del client.headers["Authorization"]
    log_in(client, "bob", password)
    session_cookie = client.cookies[SESSION]
    secrets = [password, ADMIN[1], token, api_token, session_cookie]
    with store.engine.connect() as conn:
        for table in ("users", "api_keys", "login_sessions"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            assert rows, table
            dump = repr(rows)
            for secret in secrets:
                assert secret not in dump, f"a plain secret is stored in {table}"
        hashes = conn.execute(text("SELECT password_hash FROM users")).scalars().all()
    assert len(hashes) == 2
    assert all(h.startswith("$argon2") for h in hashes), hashes


# ---- admins ------------------------------------------------------------------------------------


def test_non_admin_users_cannot_manage_users(api: TestClient, store: Store) -> None:
    res = api.post("/api/v1/users", json={"username": "bob", "password": "bobs password"})
    assert res.status_code == 201
    assert res.json()["is_admin"] is False
    assert (
        api.post("/api/v1/users", json={"username": "bob", "password": "bobs password"}).status_code
        == 409
    )
    assert api.post("/api/v1/users", json={"username": "eve", "password": "x"}).status_code == 400
    bob = {"Authorization": f"Bearer {make_key(store, 'bob')}"}
    me = api.get("/api/v1/me", headers=bob)
    assert me.status_code == 200
    assert me.json()["is_admin"] is False
    for method, url, body in [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"username": "eve", "password": "eves password"}),
        ("DELETE", f"/api/v1/users/{ADMIN[0]}", None),
    ]:
        res = api.request(method, url, json=body, headers=bob)
        assert res.status_code == 403, (method, url)
        assert "admin" in res.json()["detail"]
    # A non-admin cannot revoke someone else's key (it does not even exist for them).
    admin_key_id = api.get("/api/v1/keys").json()[0]["id"]
    assert api.delete(f"/api/v1/keys/{admin_key_id}", headers=bob).status_code == 404
    assert api.get("/api/v1/me").status_code == 200
    # The admin sees both users and can delete bob, whose key then stops working.
    assert [u["username"] for u in api.get("/api/v1/users").json()] == [ADMIN[0], "bob"]
    assert api.delete("/api/v1/users/bob").json() == {"changed": 1}
    assert api.get("/api/v1/me", headers=bob).status_code == 401


def test_pages_with_an_api_key_do_not_crash(api: TestClient) -> None:
    """Pages render for an API-key user too (no cookie session, so no CSRF token to show)."""
    res = api.get("/", follow_redirects=False)
    assert res.status_code < 500
