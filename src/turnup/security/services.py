"""Use cases for users, tokens and web sessions."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound, Unauthorized
from turnup.kernel.ids import new_id
from turnup.security.orm import ApiToken, User, WebSession
from turnup.security.permissions import ROLE_PERMISSIONS, Principal

TOKEN_PREFIX = "tu_"
SESSION_TTL = timedelta(hours=12)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_hex, digest_hex = stored.split("$")
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex)


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str | None = None,
    password: str | None = None,
    roles: list[str] | None = None,
    actor: str = "system",
    commit: bool = True,
    audit_details: dict[str, Any] | None = None,
) -> User:
    """Create a user; commits unless ``commit=False``; ``audit_details`` are added to the audit record."""
    roles = roles or ["viewer"]
    unknown = [r for r in roles if r not in ROLE_PERMISSIONS]
    if unknown:
        raise InvalidInput(f"unknown role(s): {', '.join(unknown)}", reason="Unknown role")
    if not username.strip():
        raise InvalidInput("username must not be empty")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        id=new_id(),
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password) if password else None,
        roles=roles,
        active=True,
        created_at=clock.now(),
    )
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="user.create",
        resource_type="user",
        resource_id=user.id,
        details={"username": username, "roles": roles, **(audit_details or {})},
    )
    if commit:
        session.commit()
    else:
        session.flush()
    return user


def username_taken(session: Session, username: str) -> bool:
    """True when a user with this username exists."""
    return session.scalar(select(User.id).where(User.username == username)) is not None


def set_password(session: Session, user_id: str, password: str) -> Principal:
    """Set a user's password (no commit: the caller's transaction decides)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id!r} not found")
    user.password_hash = hash_password(password)
    return _principal(user)


def create_api_token(session: Session, *, username: str, name: str = "default", actor: str = "system") -> str:
    """Issue a new API token for a user and return the secret (shown once); commits."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username!r} not found")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=new_id(),
        user_id=user.id,
        name=name,
        token_hash=_sha256(secret),
        prefix=secret[:10],
        created_at=clock.now(),
    )
    session.add(token)
    audit.record(
        session,
        actor=actor,
        action="token.create",
        resource_type="apiToken",
        resource_id=token.id,
        details={"username": username, "name": name},
    )
    session.commit()
    return secret


def _principal(user: User) -> Principal:
    return Principal(user_id=user.id, username=user.username, roles=tuple(user.roles or ()))


def authenticate_token(session: Session, secret: str) -> Principal:
    """Resolve a bearer token to its principal, or raise Unauthorized."""
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _sha256(secret))
    ).first()
    if row is None or row[0].revoked_at is not None or not row[1].active:
        raise Unauthorized("invalid or revoked API token")
    return _principal(row[1])


def login(session: Session, username: str, password: str) -> str:
    """Check a password and open a web session; returns the session cookie secret; commits."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(password, user.password_hash):
        raise Unauthorized("wrong username or password")
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        WebSession(
            id=new_id(),
            user_id=user.id,
            token_hash=_sha256(secret),
            created_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    audit.record(
        session, actor=f"user:{username}", action="user.login", resource_type="user", resource_id=user.id
    )
    session.commit()
    return secret


def authenticate_session(session: Session, secret: str) -> Principal:
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _sha256(secret))
    ).first()
    if row is None or row[0].expires_at <= clock.now() or not row[1].active:
        raise Unauthorized("not logged in")
    return _principal(row[1])


def logout(session: Session, secret: str) -> None:
    ws = session.scalar(select(WebSession).where(WebSession.token_hash == _sha256(secret)))
    if ws is not None:
        session.delete(ws)
        session.commit()
