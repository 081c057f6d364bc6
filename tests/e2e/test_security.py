"""Access-control groundwork: tokens, 401/403 as TMF errors, every route declares a permission."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.api.deps import declared_permission
from turnup.api.introspect import dependency_calls, iter_api_routes
from turnup.security import create_api_token, create_user
from turnup.security.orm import ApiToken

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"


def test_request_without_token_is_tmf_401(anon_client: TestClient) -> None:
    response = anon_client.get(CUSTOMERS)
    assert response.status_code == 401
    body = response.json()
    assert body["@type"] == "Error" and body["status"] == "401" and body["code"] == "ERR401"


def test_invalid_token_and_bad_scheme_are_401(anon_client: TestClient, admin_token: str) -> None:
    assert anon_client.get(CUSTOMERS, headers={"Authorization": "Bearer tu_wrong"}).status_code == 401
    assert anon_client.get(CUSTOMERS, headers={"Authorization": f"Basic {admin_token}"}).status_code == 401
    assert anon_client.get(CUSTOMERS, headers={"Authorization": f"Bearer {admin_token}"}).status_code == 200


def test_tokens_are_stored_hashed(admin_token: str, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
    assert len(stored) == 1 and admin_token not in stored[0] and len(stored[0]) == 64


def test_viewer_can_read_but_not_write(
    anon_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        create_user(s, username="val", roles=["viewer"])
        token = create_api_token(s, username="val")
    headers = {"Authorization": f"Bearer {token}"}
    assert anon_client.get(CUSTOMERS, headers=headers).status_code == 200
    denied = anon_client.post(CUSTOMERS, json={"name": "x"}, headers=headers)
    assert denied.status_code == 403 and "accounts:write" in denied.json()["message"]


def test_every_route_declares_a_permission(app: Any) -> None:
    routes = list(iter_api_routes(app))
    assert len(routes) > 20
    missing = []
    for info in routes:
        if info.path.startswith(("/docs", "/redoc", "/openapi")):
            continue
        declared = [p for p in map(declared_permission, dependency_calls(info.route.dependant)) if p]
        if len(declared) != 1:
            missing.append(f"{sorted(info.methods)} {info.path}: {declared}")
    assert missing == []
