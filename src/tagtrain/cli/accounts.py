"""Commands for user accounts and API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from tagtrain.cli.common import (
    DEFAULT_DATA,
    DataOpt,
    JsonOpt,
    emit,
    handled,
    opened,
    out,
    print_table,
)

users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys for scripts.", no_args_is_help=True)

PasswordOpt = Annotated[
    str,
    typer.Option(
        prompt=True,
        confirmation_prompt=True,
        hide_input=True,
        envvar="TAGTRAIN_PASSWORD",
        help="Asked for when not given (or set TAGTRAIN_PASSWORD).",
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")


@users_app.command("create")
@handled
def users_create(
    username: str,
    password: PasswordOpt,
    data: DataOpt = DEFAULT_DATA,
    admin: Annotated[bool, typer.Option(help="Make an admin (the first user always is).")] = False,
) -> None:
    """Create a user. The first user of an install is always an admin."""
    from tagtrain.store.users import create_user, user_count

    with opened(data) as store, store.transaction() as session:
        first = user_count(session) == 0
        create_user(session, username=username, password=password, is_admin=admin or first)
    out.print(f"Created {'admin ' if admin or first else ''}user {username!r}.")


@users_app.command("list")
@handled
def users_list(data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """List users."""
    from tagtrain.store.users import list_users

    with opened(data) as store, store.transaction() as session:
        rows = [{"username": u.username, "admin": u.is_admin} for u in list_users(session)]
    emit(
        as_json,
        {"users": rows},
        lambda: print_table(
            "Users", ["user", "admin"], [[r["username"], r["admin"]] for r in rows]
        ),
    )


@users_app.command("delete")
@handled
def users_delete(username: str, data: DataOpt = DEFAULT_DATA) -> None:
    """Delete a user (their API keys and sessions go with them)."""
    from tagtrain.store.users import delete_user

    with opened(data) as store, store.transaction() as session:
        delete_user(session, username)
    out.print(f"Deleted user {username!r}.")


@users_app.command("password")
@handled
def users_password(username: str, password: PasswordOpt, data: DataOpt = DEFAULT_DATA) -> None:
    """Set a user's password."""
    from tagtrain.store.users import set_password

    with opened(data) as store, store.transaction() as session:
        set_password(session, username=username, password=password)
    out.print(f"Password of {username!r} changed.")


@keys_app.command("create")
@handled
def keys_create(
    user: Annotated[str, typer.Option(help="Whose key it is.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "script",
    data: DataOpt = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; the token is printed once, store it now."""
    from sqlalchemy import select

    from tagtrain.errors import NotFound
    from tagtrain.store.tables import User
    from tagtrain.store.users import create_api_key

    with opened(data) as store, store.transaction() as session:
        owner = session.scalar(select(User).where(User.username == user))
        if owner is None:
            raise NotFound(f"no user named {user!r}")
        key, token = create_api_key(session, user=owner, name=name)
    emit(
        as_json,
        {"id": key.id, "name": key.name, "token": token},
        lambda: out.print(
            f"API key {key.id} ({key.name}): {token}\nSend it as 'Authorization: Bearer <key>'."
        ),
    )


@keys_app.command("list")
@handled
def keys_list(
    user: Annotated[str, typer.Option(help="Whose keys.")],
    data: DataOpt = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """List a user's API keys (never the tokens)."""
    from sqlalchemy import select

    from tagtrain.errors import NotFound
    from tagtrain.store.tables import User
    from tagtrain.store.users import list_api_keys

    with opened(data) as store, store.transaction() as session:
        owner = session.scalar(select(User).where(User.username == user))
        if owner is None:
            raise NotFound(f"no user named {user!r}")
        rows = [
            {"id": k.id, "name": k.name, "prefix": k.prefix, "revoked": k.revoked_at is not None}
            for k in list_api_keys(session, owner)
        ]
    emit(
        as_json,
        {"keys": rows},
        lambda: print_table(
            "API keys", ["id", "name", "prefix", "revoked"], [list(r.values()) for r in rows]
        ),
    )


@keys_app.command("revoke")
@handled
def keys_revoke(key_id: int, data: DataOpt = DEFAULT_DATA) -> None:
    """Revoke an API key."""
    from tagtrain.errors import NotFound
    from tagtrain.store.tables import ApiKey, utcnow

    with opened(data) as store, store.transaction() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no API key with id {key_id}")
        key.revoked_at = utcnow()
    out.print(f"Revoked API key {key_id}.")
