"""API tokens over HTTP on both databases: revoked and expired tokens refused at once, scopes narrow the
principal's roles, last use recorded at most once a minute, deactivated users refused, rotation, and the
``/tmf-api/turnupSecurity/v1`` administration API (``security:admin``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.errors import Conflict, InvalidInput
from turnup.security import (
    create_api_token,
    create_user,
    deactivate_user,
    revoke_api_token,
    rotate_api_token,
)
from turnup.security.orm import ApiToken, User, WebSession
from turnup.security.services import login

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
SEC = "/tmf-api/turnupSecurity/v1"
PASSWORD = "Harbor-Lilac-Vector-82"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def opal(session_factory: sessionmaker[Session]) -> str:
    """A user holding operator and viewer; returns an unscoped token."""
    with session_factory() as s:
        create_user(s, username="opal", password=PASSWORD, roles=["operator", "viewer"])
        return create_api_token(s, username="opal", name="unscoped")


def _token_row(session_factory: sessionmaker[Session], secret: str) -> ApiToken:
    with session_factory() as s:
        return s.scalars(select(ApiToken).where(ApiToken.prefix == secret[:10])).one()


def test_revoked_token_is_refused_on_the_very_next_request(
    anon_client: TestClient, session_factory: sessionmaker[Session], opal: str
) -> None:
    assert anon_client.get(CUSTOMERS, headers=_bearer(opal)).status_code == 200
    with session_factory() as s:
        revoke_api_token(s, opal[:10], actor="test")
    refused = anon_client.get(CUSTOMERS, headers=_bearer(opal))
    assert refused.status_code == 401 and refused.json()["@type"] == "Error"
    with session_factory() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "token.revoke")).one()
        assert (audit.actor, audit.details) == ("test", {"prefix": opal[:10], "name": "unscoped"})
        with pytest.raises(Conflict, match="already revoked"):
            revoke_api_token(s, opal[:10])


def test_tokens_expire(anon_client: TestClient, session_factory: sessionmaker[Session], opal: str) -> None:
    with session_factory() as s:
        short = create_api_token(s, username="opal", expires_in=timedelta(hours=1))
    row = _token_row(session_factory, opal)
    assert row.expires_at - row.created_at == timedelta(days=90)  # the default lifetime
    clock.advance(timedelta(minutes=59))
    assert anon_client.get(CUSTOMERS, headers=_bearer(short)).status_code == 200
    clock.advance(timedelta(minutes=1))
    expired = anon_client.get(CUSTOMERS, headers=_bearer(short))
    assert expired.status_code == 401 and expired.json()["message"] == "API token expired"
    clock.advance(timedelta(days=90))
    assert anon_client.get(CUSTOMERS, headers=_bearer(opal)).status_code == 401


def test_a_scoped_token_carries_only_its_roles(
    anon_client: TestClient, session_factory: sessionmaker[Session], opal: str
) -> None:
    with session_factory() as s:
        read_only = create_api_token(s, username="opal", roles=["viewer"])
        with pytest.raises(InvalidInput, match="roles: admin not held by user 'opal'"):
            create_api_token(s, username="opal", roles=["admin"])
    assert _token_row(session_factory, read_only).scopes == ["viewer"]
    body = {"name": "Scoped Ltd"}
    assert anon_client.get(CUSTOMERS, headers=_bearer(read_only)).status_code == 200
    denied = anon_client.post(CUSTOMERS, json=body, headers=_bearer(read_only))
    assert denied.status_code == 403 and "accounts:write" in denied.json()["message"]
    assert anon_client.post(CUSTOMERS, json=body, headers=_bearer(opal)).status_code == 201
    # When the user loses the scoped role, the token carries nothing (the intersection is empty)
    with session_factory() as s:
        s.scalars(select(User).where(User.username == "opal")).one().roles = ["operator"]
        s.commit()
    assert anon_client.get(CUSTOMERS, headers=_bearer(read_only)).status_code == 403


def test_last_use_is_recorded_at_most_once_a_minute(
    anon_client: TestClient, session_factory: sessionmaker[Session], opal: str
) -> None:
    clock.freeze(clock.now())
    assert _token_row(session_factory, opal).last_used_at is None
    anon_client.get(CUSTOMERS, headers=_bearer(opal))
    first = clock.now()
    assert _token_row(session_factory, opal).last_used_at == first
    clock.advance(timedelta(seconds=59))
    anon_client.get(CUSTOMERS, headers=_bearer(opal))
    assert _token_row(session_factory, opal).last_used_at == first  # no write for this one
    clock.advance(timedelta(seconds=1))
    anon_client.get(CUSTOMERS, headers=_bearer(opal))
    assert _token_row(session_factory, opal).last_used_at == clock.now()


def test_deactivation_ends_sessions_and_revokes_tokens(
    anon_client: TestClient, session_factory: sessionmaker[Session], opal: str
) -> None:
    with session_factory() as s:
        cookie = login(s, "opal", PASSWORD)
    anon_client.cookies.set("turnup_session", cookie)
    assert anon_client.get(CUSTOMERS).status_code == 200
    with session_factory() as s:
        assert deactivate_user(s, "opal", actor="test") == {"sessions": 1, "tokens": 1}
    assert anon_client.get(CUSTOMERS).status_code == 401
    anon_client.cookies.clear()
    assert anon_client.get(CUSTOMERS, headers=_bearer(opal)).status_code == 401
    with session_factory() as s:
        assert s.scalars(select(WebSession)).all() == []
        assert s.scalars(select(ApiToken.revoked_at)).one() is not None
        with pytest.raises(Conflict, match="deactivated"):
            create_api_token(s, username="opal")


def test_rotation_revokes_the_old_secret_and_keeps_name_scopes_and_lifetime(
    anon_client: TestClient, session_factory: sessionmaker[Session], opal: str
) -> None:
    with session_factory() as s:
        scoped = create_api_token(
            s, username="opal", name="ci", roles=["viewer"], expires_in=timedelta(days=7)
        )
        new, secret = rotate_api_token(s, scoped[:10], actor="test")
        assert (new.name, new.scopes, new.expires_at - new.created_at) == (
            "ci",
            ["viewer"],
            timedelta(days=7),
        )
    assert anon_client.get(CUSTOMERS, headers=_bearer(scoped)).status_code == 401
    assert anon_client.get(CUSTOMERS, headers=_bearer(secret)).status_code == 200
    assert anon_client.post(CUSTOMERS, json={"name": "X"}, headers=_bearer(secret)).status_code == 403


# --- the administration API --------------------------------------------------------------------------------


def test_admin_api_issues_lists_rotates_and_revokes_tokens(
    client: TestClient, anon_client: TestClient
) -> None:
    created = client.post(
        f"{SEC}/user", json={"username": "ci-bot", "roles": ["operator", "viewer"], "displayName": "CI"}
    )
    assert created.status_code == 201
    user = created.json()
    assert (user["username"], user["roles"], user["active"], user["hasPassword"]) == (
        "ci-bot",
        ["operator", "viewer"],
        True,
        False,
    )
    issued = client.post(
        f"{SEC}/apiToken", json={"username": "ci-bot", "roles": ["viewer"], "expiresInDays": 30}
    )
    assert issued.status_code == 201
    token = issued.json()
    assert token["scopes"] == ["viewer"] and token["state"] == "active" and token["secret"].startswith("tu_")
    secret = token.pop("secret")
    assert anon_client.get(CUSTOMERS, headers=_bearer(secret)).status_code == 200
    listed = client.get(f"{SEC}/apiToken", params={"userId": user["id"]}).json()
    assert [(t["id"], t["prefix"], t["scopes"]) for t in listed] == [(token["id"], secret[:10], ["viewer"])]
    assert listed[0]["lastUsedAt"] is not None and "secret" not in listed[0]
    rotated = client.post(f"{SEC}/apiToken/{token['id']}/rotate")
    assert rotated.status_code == 201
    assert anon_client.get(CUSTOMERS, headers=_bearer(secret)).status_code == 401
    new_secret = rotated.json()["secret"]
    revoked = client.post(f"{SEC}/apiToken/{rotated.json()['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert anon_client.get(CUSTOMERS, headers=_bearer(new_secret)).status_code == 401
    assert client.post(f"{SEC}/apiToken/nope/revoke").status_code == 404


def test_admin_api_refuses_weak_passwords_and_deactivates(
    client: TestClient, anon_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    weak = client.post(f"{SEC}/user", json={"username": "wendy", "password": "welcome12345"})
    assert weak.status_code == 400 and weak.json()["message"].startswith("password: is a common password")
    short = client.post(f"{SEC}/user", json={"username": "wendy", "password": "Short1!"})
    assert short.status_code == 400 and "at least 12 characters" in short.json()["message"]
    with session_factory() as s:
        assert s.scalars(select(User.username).where(User.username == "wendy")).all() == []
    user = client.post(f"{SEC}/user", json={"username": "wendy", "password": PASSWORD}).json()
    secret = client.post(f"{SEC}/apiToken", json={"username": "wendy"}).json()["secret"]
    off = client.post(f"{SEC}/user/{user['id']}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    assert anon_client.get(CUSTOMERS, headers=_bearer(secret)).status_code == 401


def test_admin_api_needs_security_admin(anon_client: TestClient, opal: str) -> None:
    for method, path in [("get", "/user"), ("get", "/apiToken"), ("post", "/apiToken")]:
        response: Any = getattr(anon_client, method)(f"{SEC}{path}", headers=_bearer(opal))
        assert response.status_code == 403 and "security:admin" in response.json()["message"]
