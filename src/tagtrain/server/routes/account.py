"""/api/v1/me, /api/v1/keys and /api/v1/users."""

from __future__ import annotations

from fastapi import APIRouter

from tagtrain.server.deps import AdminUser, CurrentUser, StoreDep
from tagtrain.server.schemas import Changed, KeyIn, KeyOut, NewKey, UserIn, UserOut
from tagtrain.store import users as user_store

router = APIRouter(prefix="/api/v1", tags=["account"])


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.get("/keys", response_model=list[KeyOut])
def list_keys(store: StoreDep, user: CurrentUser) -> list[KeyOut]:
    with store.transaction() as session:
        return [KeyOut.model_validate(k) for k in user_store.list_api_keys(session, user)]


@router.post("/keys", response_model=NewKey, status_code=201)
def create_key(store: StoreDep, user: CurrentUser, body: KeyIn) -> NewKey:
    """Create an API key for scripts; the token is in this answer only."""
    with store.transaction() as session:
        key, token = user_store.create_api_key(session, user=user, name=body.name)
        return NewKey(**KeyOut.model_validate(key).model_dump(), token=token)


@router.delete("/keys/{key_id}", response_model=Changed)
def revoke_key(store: StoreDep, user: CurrentUser, key_id: int) -> Changed:
    with store.transaction() as session:
        user_store.revoke_api_key(session, user=user, key_id=key_id)
    return Changed(changed=1)


@router.get("/users", response_model=list[UserOut])
def list_users(store: StoreDep, _admin: AdminUser) -> list[UserOut]:
    with store.transaction() as session:
        return [UserOut.model_validate(u) for u in user_store.list_users(session)]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(store: StoreDep, _admin: AdminUser, body: UserIn) -> UserOut:
    with store.transaction() as session:
        user = user_store.create_user(
            session, username=body.username, password=body.password, is_admin=body.is_admin
        )
        return UserOut.model_validate(user)


@router.delete("/users/{username}", response_model=Changed)
def delete_user(store: StoreDep, _admin: AdminUser, username: str) -> Changed:
    with store.transaction() as session:
        user_store.delete_user(session, username)
    return Changed(changed=1)
