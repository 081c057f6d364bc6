"""FastAPI dependencies: the database session and the permission check every route declares."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import replace
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from turnup import onboarding
from turnup.kernel.errors import Forbidden, NotFound, Unauthorized
from turnup.security import Principal, authenticate_token, has_permission
from turnup.security.permissions import PUBLIC, has_confined_permission
from turnup.security.services import authenticate_session

SESSION_COOKIE = "turnup_session"

# The permission each guard dependency made by ``requires``/``public`` (and the web's ``page``) checks.
_DECLARED: dict[Callable[..., object], str] = {}
# Guards of endpoints that confine a portal user to their own customer (see ``requires(confinable=True)``).
_CONFINABLE: set[Callable[..., object]] = set()


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


def requires(permission: str, *, confinable: bool = False) -> Any:
    """Declare the permission a route needs. Every route must use this (or ``public()``).

    ``confinable=True``: the route filters what it returns by ``Principal.customer_id`` (list: only that
    customer's rows; get: 404 for another customer's). A role holding ``permission`` only *confined*
    (the portal ``customer`` role) is then let in with ``customer_id`` set to its own customer; on other
    routes such a role gets 403.
    """

    def check_permission(request: Request, session: Session = Depends(get_session)) -> Principal:
        principal = resolve_principal(request, session)
        if not has_permission(principal, permission):
            if not (confinable and has_confined_permission(principal, permission)):
                raise Forbidden(f"permission {permission!r} required")
            principal = replace(principal, customer_id=_own_customer(session, principal))
        request.state.principal = principal
        return principal

    declare_permission(check_permission, permission)
    if confinable:
        _CONFINABLE.add(check_permission)
    return Depends(check_permission)


def _own_customer(session: Session, principal: Principal) -> str:
    try:
        return onboarding.portal_customer_id(session, principal.user_id)
    except NotFound:
        raise Forbidden("no customer account is linked to this user") from None


def public() -> Any:
    """Declare a route open to anonymous callers (health, login page, static assets)."""

    def anonymous() -> None:
        return None

    declare_permission(anonymous, PUBLIC)
    return Depends(anonymous)


def declared_permission(call: Callable[..., object]) -> str | None:
    """The permission a route dependency checks, or None if it is not a permission guard."""
    return _DECLARED.get(call) if isinstance(call, Hashable) else None


def is_confinable(call: Callable[..., object]) -> bool:
    """True when ``call`` is the guard of a route that confines portal users to their own customer."""
    return isinstance(call, Hashable) and call in _CONFINABLE
