"""FastAPI dependencies: the database session and the permission check every route declares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from turnup.kernel.errors import Forbidden, Unauthorized
from turnup.security import Principal, authenticate_token, has_permission
from turnup.security.permissions import PUBLIC
from turnup.security.services import authenticate_session

SESSION_COOKIE = "turnup_session"


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

    check_permission.turnup_permission = permission  # type: ignore[attr-defined]
    return Depends(check_permission)


def public() -> Any:
    """Declare a route open to anonymous callers (health, login page, static assets)."""

    def anonymous() -> None:
        return None

    anonymous.turnup_permission = PUBLIC  # type: ignore[attr-defined]
    return Depends(anonymous)


def declared_permission(call: Callable[..., Any]) -> str | None:
    return getattr(call, "turnup_permission", None)
