"""FastAPI dependencies: the database session and the permission check every route declares."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from turnup.kernel.errors import Forbidden, Unauthorized
from turnup.security import Principal, authenticate_token, has_permission
from turnup.security.permissions import PUBLIC
from turnup.security.services import authenticate_session

SESSION_COOKIE = "turnup_session"

# The permission each guard dependency made by ``requires``/``public`` (and the web's ``page``) checks.
_DECLARED: dict[Callable[..., object], str] = {}


def declare_permission(guard: Callable[..., object], permission: str) -> None:
    """Record that the dependency ``guard`` checks ``permission`` (read back by ``declared_permission``)."""
    _DECLARED[guard] = permission


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; whatever a handler did not commit is rolled back."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()


def resolve_principal(request: Request, session: Session) -> Principal:
    """Bearer token first, then the web session cookie."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        return authenticate_token(session, secret.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return authenticate_session(session, cookie)
    raise Unauthorized("missing credentials: send 'Authorization: Bearer <token>'")


def requires(permission: str) -> Any:
    """Declare the permission a route needs. Every route must use this (or ``public()``)."""

    def check_permission(request: Request, session: Session = Depends(get_session)) -> Principal:
        principal = resolve_principal(request, session)
        if not has_permission(principal, permission):
            raise Forbidden(f"permission {permission!r} required")
        request.state.principal = principal
        return principal

    declare_permission(check_permission, permission)
    return Depends(check_permission)


def public() -> Any:
    """Declare a route open to anonymous callers (health, login page, static assets)."""

    def anonymous() -> None:
        return None

    declare_permission(anonymous, PUBLIC)
    return Depends(anonymous)


def declared_permission(call: Callable[..., object]) -> str | None:
    """The permission a route dependency checks, or None if it is not a permission guard."""
    return _DECLARED.get(call) if isinstance(call, Hashable) else None
