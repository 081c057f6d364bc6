"""``turnup users …`` on both databases: create (password policy), token (scopes, expiry), list (last use,
expiry, scopes), revoke and rotate by prefix, deactivate, TOTP enable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.cli.main import app
from turnup.kernel import clock
from turnup.kernel.settings import get_settings
from turnup.security import authenticate_token
from turnup.security.orm import ApiToken, User, WebSession
from turnup.security.services import login

runner = CliRunner()
PASSWORD = "Orchid-Beacon-Thistle-47"


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    monkeypatch.setenv("TURNUP_SECRET_KEY", "cli-test-secret-key")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["users", *args])
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def _row(prefix: str) -> list[str]:
    """The cells of the token row with this prefix in ``turnup users list``."""
    result = runner.invoke(app, ["users", "list"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if f" {prefix} " in line]
    assert len(lines) == 1, result.output
    return [cell.strip() for cell in lines[0].strip().strip("│").split("│")]


def test_users_lifecycle_through_the_cli(cli: None, session_factory: sessionmaker[Session]) -> None:
    clock.freeze(clock.now())
    # create: the policy is applied
    assert "password: must be at least 12 characters long" in _run(
        "create", "ann", "--password", "short", "--role", "operator", code=1
    )
    assert "password: must not contain the username" in _run(
        "create", "ann", "--password", "ann-is-my-name-ok", code=1
    )
    assert "Created user ann with roles operator, viewer" in _run(
        "create", "ann", "--password", PASSWORD, "--role", "operator", "--role", "viewer"
    )
    # token: scoped and expiring
    secret = re.search(r"API token: (tu_\S+)", _run("token", "ann", "--role", "viewer", "--expires-in", "7d"))
    assert secret is not None
    with session_factory() as s:
        row = s.scalars(select(ApiToken)).one()
        assert (row.scopes, row.expires_at - row.created_at) == (["viewer"], timedelta(days=7))
        assert authenticate_token(s, secret.group(1)).roles == ("viewer",)
    refused = _run("token", "ann", "--expires-in", "0d", code=1)
    assert "--expires-in: '0d' is not a positive duration" in refused
    # list: scopes, state, expiry, last use
    prefix = secret.group(1)[:10]
    now = clock.now().isoformat(timespec="seconds")
    expires = (clock.now() + timedelta(days=7)).isoformat(timespec="seconds")
    assert _row(prefix) == [row.id, prefix, "ann", "cli", "viewer", "active", expires, now, now]
    # rotate by prefix: the old secret stops working
    rotated = re.search(r"New API token \S+: (tu_\S+)", _run("rotate", prefix))
    assert rotated is not None
    with session_factory() as s:
        with pytest.raises(Exception, match="invalid or revoked"):
            authenticate_token(s, secret.group(1))
        assert authenticate_token(s, rotated.group(1)).roles == ("viewer",)
    # revoke by prefix
    assert "Revoked API token" in _run("revoke", rotated.group(1)[:10])
    assert "already revoked" in _run("revoke", rotated.group(1)[:10], code=1)
    assert "not found" in _run("revoke", "tu_nothing", code=1)
    # password: prompted twice, checked against the policy
    weak = runner.invoke(app, ["users", "password", "ann"], input="sunshine2024\nsunshine2024\n")
    assert weak.exit_code == 1 and "password: is a common password" in weak.output
    changed = runner.invoke(app, ["users", "password", "ann"], input="Velvet-Magnet-Prism-90\n" * 2)
    assert changed.exit_code == 0 and "Password of ann set" in changed.output
    with session_factory() as s:
        login(s, "ann", "Velvet-Magnet-Prism-90")
        s.execute(delete(WebSession))
        s.commit()
    # deactivate: tokens revoked, sessions ended
    _run("token", "ann")
    with session_factory() as s:
        login(s, "ann", "Velvet-Magnet-Prism-90")
    assert "Deactivated ann: 1 session(s) ended, 1 token(s) revoked" in _run("deactivate", "ann")
    with session_factory() as s:
        assert s.scalars(select(User.active).where(User.username == "ann")).one() is False
        assert s.scalars(select(ApiToken).where(ApiToken.revoked_at.is_(None))).all() == []


def test_totp_enable_prints_the_secret_once(cli: None, session_factory: sessionmaker[Session]) -> None:
    _run("create", "tom", "--password", PASSWORD, "--role", "operator")
    output = _run("totp", "enable", "tom")
    secret = re.search(r"TOTP secret \(shown once\): ([A-Z2-7]+)", output)
    assert secret is not None
    assert f"otpauth://totp/Turnup%3Atom?secret={secret.group(1)}&issuer=Turnup" in output
    with session_factory() as s:
        stored = s.scalars(select(User.totp_secret).where(User.username == "tom")).one()
    assert stored is not None and secret.group(1) not in stored
    assert "TOTP disabled for tom" in _run("totp", "disable", "tom")
