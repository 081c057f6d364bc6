"""Issue 15 item 3: the access review (API and CLI) and audited role changes. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.cli.main import app as cli_app
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.settings import get_settings
from turnup.security import create_api_token, create_user, effective_permissions
from turnup.security.orm import User

REVIEW = "/tmf-api/turnupSecurity/v1/accessReview"
runner = CliRunner()


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli_app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_access_review_reports_roles_permissions_logins_tokens_dormancy_and_changes(
    client: TestClient, session_factory: sessionmaker[Session], cli: None
) -> None:
    # given (100 days ago) a dormant viewer with a token, then (now) a finance user who logs in
    clock.advance(timedelta(days=-100))
    with session_factory() as s:
        create_user(s, username="old", roles=["viewer"])
        create_api_token(s, username="old", name="laptop")
    clock.reset()
    with session_factory() as s:
        create_user(s, username="fiona", password="quartz-lantern-river-7", roles=["finance"])
    assert client.post(
        "/login", data={"username": "fiona", "password": "quartz-lantern-river-7"}
    ).status_code in (
        200,
        303,
    )
    # when her roles change through the CLI
    assert _run("users", "roles", "fiona", "--add", "legal", "--remove", "finance") == (
        "User fiona has roles legal\n"
    )

    # then the API review lists every user with what they can do and when they were last active
    review = {u["username"]: u for u in client.get(REVIEW).json()}
    assert set(review) == {"admin", "old", "fiona"}
    fiona = review["fiona"]
    assert fiona["roles"] == ["legal"] and fiona["permissions"] == effective_permissions(["legal"])
    assert "agreements:sign" in fiona["permissions"] and "billing:run" not in fiona["permissions"]
    assert fiona["lastLoginAt"] is not None and fiona["dormant"] is False and fiona["tokens"] == []
    assert [(c["action"], c["actor"], c["added"], c["removed"]) for c in fiona["recentPrivilegeChanges"]] == [
        ("user.create", "system", ["finance"], []),
        ("user.roles", "cli", ["legal"], ["finance"]),
    ]
    old = review["old"]
    assert old["dormant"] is True and old["lastLoginAt"] is None
    assert [(t["name"], t["revokedAt"]) for t in old["tokens"]] == [("laptop", None)]
    assert old["recentPrivilegeChanges"] == []  # created 100 days ago: outside the 90-day window
    assert review["admin"]["permissions"] == effective_permissions(["admin"])
    # a longer dormancy window forgives "old" (created 100 days ago, never active since)
    longer = {u["username"]: u["dormant"] for u in client.get(REVIEW, params={"dormantDays": 365}).json()}
    assert longer == {"admin": False, "fiona": False, "old": False}
    assert client.get(REVIEW, params={"dormantDays": 0}).status_code == 400
    # and the CLI shows the same review
    cli_review = {u["username"]: u for u in json.loads(_run("security", "access-review", "--json"))}
    assert cli_review["fiona"]["roles"] == ["legal"] and cli_review["old"]["dormant"] is True
    table = _run("security", "access-review")
    assert "DORMANT" in table and "fiona" in table


def test_role_changes_are_validated_and_audited(session_factory: sessionmaker[Session], cli: None) -> None:
    with session_factory() as s:
        create_user(s, username="sam", roles=["sales"])
    assert "unknown role(s): wizard" in _run("users", "roles", "sam", "--add", "wizard", code=1)
    assert "does not have role(s) finance" in _run("users", "roles", "sam", "--remove", "finance", code=1)
    assert "not found" in _run("users", "roles", "nobody", "--add", "sales", code=1)
    assert (
        _run("users", "roles", "sam", "--add", "sales_manager") == "User sam has roles sales, sales_manager\n"
    )
    with session_factory() as s:
        user = s.scalars(select(User).where(User.username == "sam")).one()
        assert user.roles == ["sales", "sales_manager"]
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "user.roles")).all()
        assert [(r.actor, r.resource_id, r.details) for r in rows] == [
            (
                "cli",
                user.id,
                {
                    "username": "sam",
                    "before": ["sales"],
                    "after": ["sales", "sales_manager"],
                    "added": ["sales_manager"],
                    "removed": [],
                },
            )
        ]


def test_access_review_needs_security_admin(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        create_user(s, username="ops", roles=["operations"])
        token = create_api_token(s, username="ops")
    denied = client.get(REVIEW, headers={"Authorization": f"Bearer {token}"})
    assert denied.status_code == 403 and "security:admin" in denied.json()["message"]


def test_security_roles_prints_the_matrix(cli: None) -> None:
    matrix = json.loads(_run("security", "roles", "--json"))
    assert matrix["roles"]["sales_manager"]["decidesApprovalSteps"] == ["salesManager"]
    assert "quotes:accept" not in matrix["roles"]["sales_manager"]["permissions"]
    assert matrix["roles"]["customer"]["confined"] == [
        "accounts:read",
        "agreements:read",
        "ordering:read",
        "quotes:read",
        "services:read",
    ]
    table = _run("security", "roles")
    assert "sales_manager" in table and "own customer only" in table
    by_permission = _run("security", "roles", "--by-permission")
    assert "reconciliation:run" in by_permission
