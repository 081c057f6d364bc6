"""The web login form on both databases: lockout answered 429 (even for the right password), failures audited
with the source address, a new session secret on every login (the one held before is ended), the TOTP code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.api.deps import SESSION_COOKIE
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.settings import Settings
from turnup.security import create_user, enable_totp
from turnup.security.orm import WebSession
from turnup.security.totp import code_at

PASSWORD = "Juniper-Signal-Canyon-65"
KEY = "test-secret-key-for-totp-sealing"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, run_worker=False, secret_key=KEY)


@pytest.fixture
def web(app: Any, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    with session_factory() as s:
        create_user(s, username="olga", password=PASSWORD, roles=["operator"])
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _login(web: TestClient, password: str, code: str = "") -> Any:
    return web.post(
        "/login",
        data={"username": "olga", "password": password, "code": code, "next": "/"},
        follow_redirects=False,
    )


def test_form_locks_after_five_failures_and_audits_each(
    web: TestClient, session_factory: sessionmaker[Session]
) -> None:
    for _ in range(5):
        wrong = _login(web, "Wrong-Guess-Number-1")
        assert wrong.status_code == 401 and "Wrong username or password." in wrong.text
    locked = _login(web, PASSWORD)
    assert locked.status_code == 429 and "Too many failed logins: try again later." in locked.text
    assert SESSION_COOKIE not in locked.cookies
    with session_factory() as s:
        failed = s.scalars(select(AuditEntry).where(AuditEntry.action == "user.login_failed")).all()
        assert [(a.actor, (a.details or {})["reason"], (a.details or {})["source"]) for a in failed] == [
            ("anonymous", "wrong_password", "testclient")
        ] * 5 + [("anonymous", "locked", "testclient")]
        assert s.scalars(select(WebSession)).all() == []


def test_every_login_issues_a_new_session_and_ends_the_one_held_before(
    web: TestClient, session_factory: sessionmaker[Session]
) -> None:
    first = _login(web, PASSWORD)
    assert first.status_code == 303
    old = first.cookies[SESSION_COOKIE]
    assert web.get("/", follow_redirects=False).status_code == 200
    # Logging in again while holding the old cookie (sent by the client jar)
    second = _login(web, PASSWORD)
    new = second.cookies[SESSION_COOKIE]
    assert new != old
    with session_factory() as s:
        assert len(s.scalars(select(WebSession)).all()) == 1
    # The old cookie no longer opens anything; the new one does
    web.cookies.clear()
    web.cookies.set(SESSION_COOKIE, old)
    assert web.get("/", follow_redirects=False).status_code == 303
    web.cookies.set(SESSION_COOKIE, new)
    assert web.get("/", follow_redirects=False).status_code == 200


def test_a_cookie_planted_before_login_is_not_the_session_after(
    web: TestClient, session_factory: sessionmaker[Session]
) -> None:
    web.cookies.set(SESSION_COOKIE, "chosen-by-an-attacker")
    response = _login(web, PASSWORD)
    assert response.status_code == 303 and response.cookies[SESSION_COOKIE] != "chosen-by-an-attacker"


def test_totp_code_on_the_login_form(web: TestClient, session_factory: sessionmaker[Session]) -> None:
    clock.freeze(clock.now())
    with session_factory() as s:
        secret = enable_totp(s, "olga", secret_key=KEY)
    assert _login(web, PASSWORD).status_code == 401
    accepted = _login(web, PASSWORD, code=code_at(secret, clock.now()))
    assert accepted.status_code == 303 and SESSION_COOKIE in accepted.cookies
    with session_factory() as s:
        reasons = [
            (a.details or {})["reason"]
            for a in s.scalars(select(AuditEntry).where(AuditEntry.action == "user.login_failed"))
        ]
        assert reasons == ["totp_missing"]
