"""Bill runs (TMF678 customerBill): in-advance recurring, one-time, usage in arrears (through the usage
slot, with a fake source), credits, taxes by the rate table, exact Decimal totals, the PDF, re-runs that
bill nothing twice, closed and future periods refused (nothing written), and two concurrent bill runs on
PostgreSQL billing each charge once. Runs on SQLite and PostgreSQL (the concurrency test: PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.test_billing_triggers import at, change, dbos_cleanup, drain, fibre_order
from turnup import billing
from turnup.billing.orm import BillingAccount, BillLine, BillRun, Charge, CustomerBill
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.db import is_sqlite
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import OutboxEvent

__all__ = ["dbos_cleanup"]
BILLS = "/tmf-api/customerBillManagement/v4"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"


class FakeUsage:
    """A usage source: one rated line for each account it knows, for February 2026 only; records calls."""

    def __init__(self) -> None:
        self.accounts: set[str] = set()
        self.calls: list[tuple[str, date, date]] = []

    def __call__(self, session: Session, account_id: str, start: date, end: date) -> list[billing.UsageLine]:
        self.calls.append((account_id, start, end))
        if account_id not in self.accounts or start != date(2026, 2, 1):
            return []
        return [
            billing.UsageLine(
                key=f"{account_id}-feb-minutes",
                service_id=None,
                description="Outbound minutes (February)",
                amount=Decimal("12.34"),
                currency="GBP",
                period_start=start,
                period_end=end,
            )
        ]


@pytest.fixture
def usage() -> Iterator[FakeUsage]:
    source = FakeUsage()
    billing.register_usage_source(source)
    yield source
    billing.unregister_usage_source(source)


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    models: dict[str, Any] = {
        "bill": CustomerBill,
        "line": BillLine,
        "charge": Charge,
        "run": BillRun,
        "audit": AuditEntry,
        "event": OutboxEvent,
    }
    with factory() as s:
        return {k: s.scalar(select(func.count()).select_from(m)) or 0 for k, m in models.items()}


def lines_of(bill: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            line["type"],
            line["description"],
            line["taxExcludedAmount"]["value"],
            line["taxRate"],
            line["taxAmount"]["value"],
        )
        for line in bill["billLine"]
    ]


def test_bill_runs_bill_in_advance_with_taxes_credits_usage_and_refuse_a_closed_period(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None, usage: FakeUsage
) -> None:
    # Given a 20% GB standard tax rate, and a fibre service of a GB customer activated on 10 March
    at("2026-03-02")
    rate = client.post(f"{BILLS}/taxRate", json={"country": "GB", "taxCategory": "standard", "rate": "0.2"})
    assert rate.status_code == 201 and rate.json()["rate"] == "0.2000"
    o = fibre_order(client, session_factory)
    account_id = f"BA-{o['customer']}"
    usage.accounts.add(account_id)
    at("2026-03-10")
    change(session_factory, o, "active", "add")
    drain(session_factory)
    survey = {
        "name": "Site survey",
        "billingAccount": {"id": account_id},
        "service": {"id": o["service"]},
        "amount": {"unit": "GBP", "value": "350.00"},
        "externalId": "PSA-7",
    }
    assert client.post(f"{BILLS}/appliedCustomerBillingRate", json=survey).status_code == 201

    # When the March bill run of cycle day 1 runs
    run = client.post(f"{BILLS}/billRun", json={"billCycleDay": 1, "period": "2026-03"})
    # Then the account gets one bill: March's prorated recurring charge in advance, the site survey,
    # February's usage in arrears; 20% tax per line, rounded half-up; totals that add up exactly
    assert run.status_code == 201, run.text
    assert (run.json()["period"], run.json()["runs"], run.json()["state"]) == ("2026-03", 1, "open")
    (made,) = run.json()["customerBill"]
    assert usage.calls == [(account_id, date(2026, 2, 1), date(2026, 3, 1))]
    bill = client.get(f"{BILLS}/customerBill/{made['id']}").json()
    assert bill["billingAccount"]["id"] == account_id
    assert bill["billingPeriod"] == {"startDateTime": "2026-03-01", "endDateTime": "2026-04-01"}
    assert (bill["billDate"], bill["paymentDueDate"]) == ("2026-03-10", "2026-04-09")
    assert lines_of(bill) == [
        ("recurring", "Fibre 1G monthly", "141.23", "0.2000", "28.25"),
        ("oneTime", "Site survey", "350.00", "0.2000", "70.00"),
        ("usage", "Outbound minutes (February)", "12.34", "0.2000", "2.47"),
    ]
    assert bill["taxExcludedAmount"] == {"unit": "GBP", "value": "503.57"}
    assert bill["taxItem"] == [{"taxAmount": {"unit": "GBP", "value": "100.72"}}]
    assert bill["amountDue"] == {"unit": "GBP", "value": "604.29"}
    charges = client.get(
        f"{BILLS}/appliedCustomerBillingRate", params={"billingAccount.id": account_id}
    ).json()
    assert sorted((c["type"], c["isBilled"], c["bill"]["id"]) for c in charges) == [
        ("oneTime", True, made["id"]),
        ("recurring", True, made["id"]),
        ("usage", True, made["id"]),
    ]
    # and the customer can download it as a PDF
    pdf = client.get(f"{BILLS}/customerBill/{made['id']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and len(pdf.content) > 1000
    assert client.get(f"{BILLS}/customerBill/nope/pdf").status_code == 404

    # When the March run runs again: no second bill, nothing billed twice
    before = counts(session_factory)
    again = client.post(f"{BILLS}/billRun", json={"billCycleDay": 1, "period": "2026-03"})
    assert again.status_code == 201
    assert (again.json()["customerBill"], again.json()["accountsSkipped"], again.json()["runs"]) == ([], 1, 2)
    after = counts(session_factory)
    assert {k: after[k] - before[k] for k in after} == {
        "bill": 0,
        "line": 0,
        "charge": 0,
        "run": 0,
        "audit": 1,  # billRun.run
        "event": 0,
    }

    # When the service is disconnected on 20 March and April's run runs on 1 April
    at("2026-03-20")
    change(session_factory, o, "terminated", "delete")
    drain(session_factory)
    at("2026-04-01")
    april = client.post(f"{BILLS}/billRun", json={"billCycleDay": 1, "period": "2026-04"})
    assert april.status_code == 201
    (april_bill,) = april.json()["customerBill"]
    # Then April's bill carries the credit of the 12 unused March days, and no April recurring charge
    bill = client.get(f"{BILLS}/customerBill/{april_bill['id']}").json()
    assert lines_of(bill) == [("credit", "Fibre 1G monthly (terminated)", "-77.03", "0.2000", "-15.41")]
    assert bill["amountDue"] == {"unit": "GBP", "value": "-92.44"}

    # When March is closed, a March run is refused (409) and writes nothing
    closed = client.post(f"{BILLS}/billRun/{run.json()['id']}/close")
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    before = counts(session_factory)
    refused = client.post(f"{BILLS}/billRun", json={"billCycleDay": 1, "period": "2026-03"})
    assert refused.status_code == 409
    assert refused.json()["reason"] == "Period closed"
    assert refused.json()["message"].startswith(
        "period: the 2026-03 period of bill cycle day 1 is closed (closed 2026-04-01 by user:"
    )
    assert counts(session_factory) == before
    # and so is a period that has not started, or a malformed one (400)
    future = client.post(f"{BILLS}/billRun", json={"billCycleDay": 1, "period": "2026-05"})
    assert future.status_code == 400 and future.json()["reason"] == "Period not started"
    assert client.post(f"{BILLS}/billRun", json={"billCycleDay": 1, "period": "2026-13"}).status_code == 400
    assert client.post(f"{BILLS}/billRun", json={"billCycleDay": 29, "period": "2026-03"}).status_code == 400
    assert counts(session_factory) == before
    listed = client.get(f"{BILLS}/customerBill", params={"billingAccount.id": account_id})
    assert listed.headers["X-Total-Count"] == "2"


def _account_with_charges(factory: sessionmaker[Session], n: int) -> list[str]:
    """An account (cycle day 7) of a made-up customer with ``n`` unbilled one-time charges."""
    now = clock.now()
    with factory() as s:
        account = BillingAccount(
            id=f"BA-{new_id()}",
            name="Load",
            customer_id=new_id(),
            state="active",
            currency="GBP",
            bill_cycle_day=7,
            payment_terms_days=30,
            created_at=now,
            updated_at=now,
        )
        s.add(account)
        s.flush()
        ids = []
        for i in range(n):
            charge = Charge(
                id=new_id(),
                key=f"test:{account.id}:{i}",
                charge_type="oneTime",
                billing_account_id=account.id,
                customer_id=account.customer_id,
                component=f"Item {i}",
                currency="GBP",
                amount=Decimal("10.01") + i,
                tax_category="standard",
                source="test",
                created_at=now,
            )
            s.add(charge)
            ids.append(charge.id)
        s.commit()
        return ids


def test_two_concurrent_bill_runs_bill_each_charge_once(
    db_url: str, session_factory: sessionmaker[Session]
) -> None:
    if is_sqlite(db_url):
        pytest.skip("concurrent bill runs: PostgreSQL (SQLite serialises every writer)")
    # Given 12 accounts of cycle day 7 with 5 unbilled charges each
    at("2026-03-08")
    charge_ids = [c for _ in range(12) for c in _account_with_charges(session_factory, 5)]
    # When two bill runs of the same period start together, and a third for the next period is not due
    barrier = threading.Barrier(2)
    results: list[billing.BillRunResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with session_factory() as s:
                barrier.wait()
                results.append(
                    billing.run_bills(s, billing.BillRunCreate(billCycleDay=7, period="2026-03"), "test")
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then each charge is on exactly one bill line, each account has one bill, and together the runs made 12
    assert errors == []
    assert sum(len(r.bills) for r in results) == 12
    assert sum(r.skipped for r in results) == 12
    with session_factory() as s:
        billed = s.execute(select(BillLine.charge_id, func.count()).group_by(BillLine.charge_id)).all()
        assert sorted(c for c, _ in billed) == sorted(charge_ids)
        assert {n for _, n in billed} == {1}
        assert s.scalar(select(func.count()).select_from(CustomerBill)) == 12
        assert s.scalar(select(func.count()).select_from(Charge).where(Charge.bill_id.is_(None))) == 0
        run = s.scalars(select(BillRun)).one()
        assert run.runs == 2
        # and each bill's total is the exact sum of its lines
        for bill in s.scalars(select(CustomerBill)):
            amounts = s.scalars(select(BillLine.amount).where(BillLine.bill_id == bill.id)).all()
            assert Decimal(bill.amount_excluding_tax) == sum(Decimal(a) for a in amounts)
            assert Decimal(bill.amount_excluding_tax) == Decimal("60.05")  # 10.01 + 11.01 + … + 14.01


def test_an_account_that_cannot_be_billed_is_reported_and_the_others_are_billed(
    session_factory: sessionmaker[Session],
) -> None:
    # Given two accounts of cycle day 7, the first with a charge in a currency not its own
    at("2026-03-08")
    first = _account_with_charges(session_factory, 2)
    second = _account_with_charges(session_factory, 3)
    with session_factory() as s:
        wrong = s.get(Charge, first[0])
        assert wrong is not None
        wrong.currency = "EUR"
        account_id = wrong.billing_account_id
        s.commit()
    # When the period is billed
    with session_factory() as s:
        result = billing.run_bills(s, billing.BillRunCreate(billCycleDay=7, period="2026-03"), "test")
    # Then the second account has its bill, the first is reported and nothing of it was written
    assert len(result.bills) == 1 and result.skipped == 0
    assert result.failed == (
        (account_id, f"billingAccount {account_id}: charges in EUR cannot go on a GBP bill"),
    )
    with session_factory() as s:
        billed = {c.id: c.bill_id for c in s.scalars(select(Charge))}
        assert [billed[c] for c in first] == [None, None]
        assert all(billed[c] == result.bills[0] for c in second)
        assert s.scalar(select(func.count()).select_from(CustomerBill)) == 1
