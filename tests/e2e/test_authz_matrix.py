"""Issue 15 item 3: the permission matrix against the route table, every endpoint x every role.

The grid is generated from ``app`` (every route and the one permission it declares) and the matrix
(``turnup/security/data/permissions.yaml``): for each route and each role, a user holding only that role
calls the route (path ids that do not exist, an empty JSON body) and gets 403 exactly when the matrix
denies it, and a non-403, non-5xx answer when it allows it. Runtime bound: the full grid (~4,700 requests)
runs on SQLite; on PostgreSQL every role runs against a fixed sample of routes (every 7th).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from turnup.api.deps import declared_permission, is_confinable
from turnup.api.introspect import dependency_calls, iter_api_routes
from turnup.security import create_api_token, create_user
from turnup.security.permissions import (
    PERMISSIONS,
    PUBLIC,
    ROLE_PERMISSIONS,
    Principal,
    has_confined_permission,
    has_permission,
)

ONBOARDING = "/tmf-api/turnupOnboarding/v1/onboarding"
SKIP_PREFIXES = ("/docs", "/redoc", "/openapi")


@pytest.fixture
def no_smtp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Onboarding mail stays queued (no server listens)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TURNUP_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TURNUP_SMTP_PORT", str(port))


def _routes(app: Any) -> list[tuple[str, str, str, bool]]:
    """(method, path, permission, confinable) for every route, in route-table order."""
    out = []
    for info in iter_api_routes(app):
        if info.path.startswith(SKIP_PREFIXES):
            continue
        calls = list(dependency_calls(info.route.dependant))
        declared = [p for p in map(declared_permission, calls) if p]
        assert len(declared) == 1, f"{sorted(info.methods)} {info.path}: {declared}"
        confinable = any(is_confinable(c) for c in calls)
        for method in sorted(info.methods - {"HEAD"}):
            out.append((method, info.path, declared[0], confinable))
    return out


def test_every_declared_permission_is_in_the_matrix(app: Any) -> None:
    # a new route declaring a permission the matrix does not list fails here
    unknown = sorted({(p, path) for _, path, p, _ in _routes(app) if p != PUBLIC and p not in PERMISSIONS})
    assert unknown == []


@pytest.fixture
def role_tokens(client: TestClient, session_factory: sessionmaker[Session], no_smtp: None) -> dict[str, str]:
    """A token per role, each user holding only that role; the customer user is a linked portal user."""
    tokens = {}
    with session_factory() as s:
        for role in ROLE_PERMISSIONS:
            if role == "customer":
                continue
            create_user(s, username=f"only-{role}", roles=[role])
            tokens[role] = create_api_token(s, username=f"only-{role}")
    onboarded = client.post(
        ONBOARDING,
        json={
            "customer": {"name": "Grid Customer Ltd", "country": "GB", "segment": "smb"},
            "sites": [{"name": "Grid site", "city": "Leeds", "country": "GB"}],
            "primaryContact": {"name": "Grid Contact", "email": "grid@customer.test"},
        },
    )
    assert onboarded.status_code == 201, onboarded.text
    with session_factory() as s:
        tokens["customer"] = create_api_token(s, username="grid@customer.test")
    return tokens


def _call(client: TestClient, method: str, path: str, token: str) -> int:
    url = re.sub(r"\{[^}]+\}", "x0missing", path)
    kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {token}"}}
    if method in ("POST", "PATCH", "PUT"):
        kwargs["json"] = {}
    return client.request(method, url, **kwargs).status_code


@pytest.fixture
def grid_client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_every_endpoint_for_every_role_answers_as_the_matrix_says(
    app: Any, db_url: str, role_tokens: dict[str, str], grid_client: TestClient
) -> None:
    routes = [r for r in _routes(app) if r[2] != PUBLIC]
    if not db_url.startswith("sqlite"):
        routes = routes[::7]  # PostgreSQL: a fixed sample of the grid (the full grid runs on SQLite)
    assert set(role_tokens) == set(ROLE_PERMISSIONS)
    wrong = []
    for role, token in sorted(role_tokens.items()):
        principal = Principal("u", "u", (role,))
        for method, path, permission, confinable in routes:
            allowed = has_permission(principal, permission) or (
                confinable and has_confined_permission(principal, permission)
            )
            status = _call(grid_client, method, path, token)
            if allowed and (status == 403 or status >= 500):
                wrong.append(f"{role} {method} {path} ({permission}): allowed by the matrix, got {status}")
            if not allowed and status != 403:
                wrong.append(f"{role} {method} {path} ({permission}): denied by the matrix, got {status}")
    assert wrong == []
