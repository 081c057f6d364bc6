"""``turnup quotes …`` on both databases: import rules, list, show, price, approve, reject, accept, sweep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.e2e.test_quote_to_order import (
    QUOTES,
    RULES_YAML,
    customer_and_site,
    dbos_cleanup,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from turnup.cli.main import app
from turnup.kernel import clock
from turnup.kernel.settings import get_settings

__all__ = ["dbos_cleanup"]
runner = CliRunner()


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["quotes", *args], env={"COLUMNS": "300"})
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def test_quotes_cli(
    cli: None, client: TestClient, session_factory: sessionmaker[Session], tmp_path: Path, dbos_cleanup: None
) -> None:
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML, encoding="utf-8")
    assert _run("import-rules", str(rules)) == "Approval rules: 2 created, 0 updated"
    customer_id, site_id = customer_and_site(client)
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"], discount="20"))
    doomed = post(
        client,
        QUOTES,
        quote_body(
            customer_id,
            site_id,
            offerings["Fibre + Voice"],
            discount="20",
            validFor={"endDateTime": (clock.now() + timedelta(hours=1)).isoformat()},
        ),
    )

    assert _run("price", quote["id"]) == (
        f"Quote {quote['id']} v2 is pending: recurring GBP 199.20, one-time GBP 159.20"
    )
    _run("price", doomed["id"])
    assert quote["id"] in _run("list", "--state", "pending")
    shown = json.loads(runner.invoke(app, ["quotes", "show", quote["id"]]).output)
    assert shown["state"] == "pending" and len(shown["quoteItem"][0]["reservedResource"]) == 6

    # each step is decided as a user bound to it (issue 15): roles come from the user, not the command
    from turnup.security import create_user

    with session_factory() as s:
        create_user(s, username="sam", roles=["sales_manager"])
        create_user(s, username="fiona", roles=["finance"])
    refused = _run("approve", quote["id"], "--as", "fiona", "--role", "finance", "--comment", "early", code=1)
    assert "is for salesManager, not finance" in refused
    not_bound = _run("approve", quote["id"], "--as", "fiona", "--comment", "early", code=1)
    assert "is decided by role sales_manager; your roles: finance" in not_bound
    _run("approve", quote["id"], "--as", "sam", "--comment", "fine")
    assert _run("approve", quote["id"], "--as", "fiona", "--role", "finance", "--comment", "fine") == (
        f"Quote {quote['id']} is approved (approval approved)"
    )
    accepted = _run("accept", quote["id"], "--signer-name", "Priya", "--signer-email", "priya@example.org")
    assert accepted.startswith(f"Quote {quote['id']} accepted: agreement ")

    clock.advance(timedelta(hours=2))
    assert _run("sweep") == f"Expired 1 quote(s): {doomed['id']}"
    assert _run("sweep") == "Expired 0 quote(s)"
    assert client.get(f"{QUOTES}/{doomed['id']}").json()["state"] == "cancelled"
    assert "not found" in _run("show", "nope", code=1)
