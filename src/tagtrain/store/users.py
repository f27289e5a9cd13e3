"""Users, API keys and login sessions. Passwords are argon2 hashes; keys and session tokens are
stored as sha256 digests (they are long random strings, so a fast hash is safe for them)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tagtrain.errors import BadInput, Conflict, NotFound, Unauthorized
from tagtrain.store.tables import ApiKey, LoginSession, User, utcnow

_hasher = PasswordHasher()
KEY_PREFIX = "tt_"
MIN_PASSWORD = 8


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_count(session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0


def create_user(session: Session, *, username: str, password: str, is_admin: bool) -> User:
    username = username.strip()
    if not username or len(username) > 100 or not username.isprintable():
        raise BadInput("a username must be 1-100 printable characters")
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"a password must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} exists already")
    user = User(username=username, password_hash=_hasher.hash(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, *, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip()))
    try:
        if user is None:
            _hasher.hash(password)  # spend the same time, so timing does not reveal usernames
            raise VerificationError
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise Unauthorized("wrong username or password") from exc
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def delete_user(session: Session, username: str) -> None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    session.delete(user)


def set_password(session: Session, *, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"a password must have at least {MIN_PASSWORD} characters")
    result = session.execute(
        update(User).where(User.username == username).values(password_hash=_hasher.hash(password))
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"no user named {username!r}")


def create_api_key(session: Session, *, user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key; the plain token is returned once and never stored."""
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        user_id=user.id, name=name.strip() or "key", prefix=token[:10], key_hash=digest(token)
    )
    session.add(key)
    session.flush()
    return key, token


def user_for_api_key(session: Session, token: str) -> User | None:
    key = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == digest(token), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        return None
    now = utcnow()
    # A write per request would serialise every GET on SQLite's one writer: once a minute will do.
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        key.last_used_at = now
    return session.get(User, key.user_id)


def list_api_keys(session: Session, user: User) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id))
    )


def revoke_api_key(session: Session, *, user: User, key_id: int) -> None:
    key = session.get(ApiKey, key_id)
    if key is None or (key.user_id != user.id and not user.is_admin):
        raise NotFound(f"no API key with id {key_id}")
    key.revoked_at = utcnow()


def start_session(session: Session, *, user: User, max_age_s: int) -> tuple[str, str]:
    """Log in: returns (session token for the cookie, CSRF token for forms and JS)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    session.add(
        LoginSession(
            token_hash=digest(token),
            user_id=user.id,
            csrf_token=csrf,
            expires_at=utcnow() + timedelta(seconds=max_age_s),
        )
    )
    return token, csrf


def session_user(session: Session, token: str) -> tuple[User, str] | None:
    """The user and CSRF token of a live login session, or None."""
    row = session.get(LoginSession, digest(token))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    return (user, row.csrf_token) if user is not None else None


def end_session(session: Session, token: str) -> None:
    session.execute(delete(LoginSession).where(LoginSession.token_hash == digest(token)))


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
