"""``turnup billing …`` on both databases: accounts, tax rates, a bill run (and its refusal once closed),
bills, and the charge export as CSV and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.billing.orm import BillingAccount, BillRun, Charge
from turnup.cli.main import app
from turnup.kernel import clock
from turnup.kernel.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["billing", *args])
    assert result.exit_code == code, result.output
    return result.output


def test_billing_cli_runs_bills_lists_them_and_exports_charges(
    cli: None, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    # Given an account (cycle day 3) with one charge, and a 20% GB rate
    clock.freeze(datetime.fromisoformat("2026-05-04T10:00:00+00:00"))
    with session_factory() as s:
        s.add(
            BillingAccount(
                id="BA-CLI",
                name="Cli Ltd account",
                customer_id="cust-cli",
                state="active",
                currency="GBP",
                bill_cycle_day=3,
                payment_terms_days=10,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        s.flush()
        s.add(
            Charge(
                id="ch-1",
                key="test:ch-1",
                charge_type="oneTime",
                billing_account_id="BA-CLI",
                customer_id="cust-cli",
                component="Router",
                currency="GBP",
                amount=Decimal("99.99"),
                tax_category="standard",
                source="test",
                created_at=clock.now(),
            )
        )
        s.commit()
    assert "Tax rate GB/standard = 0.2000" in run("tax-rate", "GB", "0.2")
    assert "BA-CLI" in run("accounts")
    # When May is billed for cycle day 3
    out = run("run", "--cycle-day", "3", "--period", "2026-05")
    # Then one bill is made (no tax: the customer is unknown to accounts, so no country)
    assert "1 bills, 0 accounts skipped, 0 failed" in " ".join(out.split())
    bills = " ".join(run("bills", "--account", "BA-CLI").split())
    assert "BA-CLI-202605" in bills and "GBP 99.99" in bills
    # and the export has the charge, billed
    exported = json.loads(run("export", "--format", "json"))
    assert [(c["id"], c["isBilled"], c["taxExcludedAmount"]["value"]) for c in exported] == [
        ("ch-1", True, "99.99")
    ]
    target = tmp_path / "charges.csv"
    run("export", "--format", "csv", "--since", "2026-05-01T00:00:00Z", "-o", str(target))
    rows = target.read_text().splitlines()
    assert rows[0].split(",")[:3] == ["id", "type", "billingAccountId"] and rows[1].startswith(
        "ch-1,oneTime,BA-CLI"
    )
    assert (
        run("export", "--since", "yesterday", code=1).strip().endswith("needs a timezone offset (e.g. Z)")
        is False
    )
    # When the run is closed, running May again fails with the reason
    with session_factory() as s:
        run_id = s.scalars(select(BillRun.id)).one()
    run("close", run_id)
    refused = " ".join(run("run", "--cycle-day", "3", "--period", "2026-05", code=1).split())
    assert "the 2026-05 period of bill cycle day 3 is closed" in refused
