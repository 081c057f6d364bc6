"""Bill runs: per bill cycle day and period, one customer bill (TMF678) per billing account.

A bill of period P (``[start, end)``) carries every charge of the account not billed yet whose coverage
starts before ``end``: the recurring charges of P in advance (made here for every rate running in P, and any
earlier period a rate was not charged for), one-time charges, credits, and the usage of the previous
period in arrears (from the usage sources registered with ``register_usage_source``). Taxes per line:
``amount × rate`` (rate by the customer's country and the line's tax category), rounded half-up to the
cent; the bill's totals are the sums of its lines, so they add up exactly.

Exactly-once: each account is billed in its own transaction with its row locked (``FOR UPDATE``), at most
one bill per account and period (unique), and a charge can be on one bill line only (unique
``charge_id``). A re-run bills what is new since: accounts without a bill of P get one; charges that came
later go to the next bill. A closed period cannot be run again (409).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from turnup import accounts
from turnup.billing.charges import charge_rate_period, insert_ignore
from turnup.billing.model import cents, next_period, parse_period, period_named, period_of, previous_period
from turnup.billing.orm import BillingAccount, BillLine, BillRun, Charge, CustomerBill, RecurringRate
from turnup.billing.render import BILL_API, render_bill, render_bill_run
from turnup.billing.schemas import BillRunCreate
from turnup.billing.services import tax_rate
from turnup.kernel import audit, clock
from turnup.kernel.db import table_of
from turnup.kernel.errors import Conflict, InvalidInput, NotFound, TurnupError
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

TYPE_ORDER = {"recurring": 0, "oneTime": 1, "usage": 2, "credit": 3}


@dataclass(frozen=True)
class UsageLine:
    """A rated usage line a usage source hands to a bill run (variable consideration, in arrears)."""

    key: str  # unique and stable: the same line handed over twice is billed once
    service_id: str | None
    description: str
    amount: Decimal
    currency: str
    period_start: date
    period_end: date
    tax_category: str = "standard"


UsageSource = Callable[[Session, str, date, date], list[UsageLine]]
_usage_sources: list[UsageSource] = []


def register_usage_source(fn: UsageSource) -> UsageSource:
    """Register ``fn(session, billing_account_id, period_start, period_end) -> [UsageLine]``: the rated usage
    of an account in ``[period_start, period_end)`` not billed yet; it marks what it returns as billed in the
    given session (the bill run's transaction, so a failed run un-marks them)."""
    if fn not in _usage_sources:
        _usage_sources.append(fn)
    return fn


def unregister_usage_source(fn: UsageSource) -> None:
    if fn in _usage_sources:
        _usage_sources.remove(fn)


@dataclass(frozen=True)
class BillRunResult:
    run: BillRun
    bills: tuple[str, ...]  # ids of the bills this run made
    skipped: int  # accounts already billed for the period, or with nothing to bill
    failed: tuple[tuple[str, str], ...] = ()  # (account id, why): nothing of theirs written; run again


def _run_row(session: Session, cycle_day: int, period: tuple[date, date], actor: str) -> BillRun:
    """The period's bill run row, created if missing (concurrent runs: one creates it, both then lock it)."""
    now = clock.now()
    insert_ignore(
        session,
        BillRun,
        {
            "id": new_id(),
            "cycle_day": cycle_day,
            "period_start": period[0],
            "period_end": period[1],
            "state": "open",
            "runs": 0,
            "last_run_at": now,
            "last_run_by": actor,
        },
    )
    run = session.scalars(
        select(BillRun)
        .where(BillRun.cycle_day == cycle_day, BillRun.period_start == period[0])
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if run.state == "closed":
        raise Conflict(
            f"period: the {period[0]:%Y-%m} period of bill cycle day {cycle_day} is closed "
            f"(closed {run.closed_at:%Y-%m-%d} by {run.closed_by}); its bills cannot change",
            reason="Period closed",
        )
    run.runs += 1
    run.last_run_at, run.last_run_by = now, actor
    session.flush()
    return run


def _recurring(session: Session, account: BillingAccount, period: tuple[date, date], actor: str) -> None:
    rates = session.scalars(
        select(RecurringRate)
        .where(
            RecurringRate.billing_account_id == account.id,
            RecurringRate.starts_on < period[1],
        )
        .order_by(RecurringRate.id)
    ).all()
    for rate in rates:
        current = period_of(account.bill_cycle_day, rate.starts_on)
        while current[0] <= period[0]:
            if rate.ends_on is not None and rate.ends_on <= current[0]:
                break
            charge_rate_period(session, rate, account, current, actor)
            current = next_period(account.bill_cycle_day, current[0])


def _usage(session: Session, account: BillingAccount, period: tuple[date, date], actor: str) -> None:
    """The previous period's rated usage as ``usage`` charges: written in one INSERT (new keys only) and
    audited once per account; they are announced with the bill (``CustomerBillCreateEvent``), not one by
    one (usage rating announces its own records)."""
    previous = previous_period(account.bill_cycle_day, period[0])
    lines: dict[str, UsageLine] = {}
    for source in list(_usage_sources):
        for line in source(session, account.id, previous[0], previous[1]):
            if line.amount < 0:
                raise InvalidInput(f"usage line {line.key!r}: negative amount {line.amount}")
            lines.setdefault(f"usage:{line.key}", line)
    if not lines:
        return
    known = set(session.scalars(select(Charge.key).where(Charge.key.in_(list(lines)))))
    now = clock.now()
    rows = [
        {
            "id": new_id(),
            "key": key,
            "charge_type": "usage",
            "billing_account_id": account.id,
            "customer_id": account.customer_id,
            "service_id": line.service_id,
            "component": line.description[:200],
            "currency": line.currency,
            "amount": line.amount,
            "tax_category": line.tax_category,
            "period_start": line.period_start,
            "period_end": line.period_end,
            "source": "usage",
            "created_at": now,
        }
        for key, line in lines.items()
        if key not in known
    ]
    if not rows:
        return
    session.execute(insert(table_of(Charge)), rows)
    audit.record(
        session,
        actor=actor,
        action="charge.create",
        resource_type="billingAccount",
        resource_id=account.id,
        details={"type": "usage", "count": len(rows), "charges": [r["id"] for r in rows]},
    )


def _bill_account(
    session: Session, run: BillRun, account_id: str, period: tuple[date, date], actor: str
) -> CustomerBill | None:
    account = session.get(BillingAccount, account_id, with_for_update=True, populate_existing=True)
    if account is None or account.state == "closed":
        return None
    existing = session.scalar(
        select(CustomerBill.id).where(
            CustomerBill.billing_account_id == account.id, CustomerBill.period_start == period[0]
        )
    )
    if existing is not None:
        return None
    _recurring(session, account, period, actor)
    _usage(session, account, period, actor)
    session.flush()
    charges = session.scalars(
        select(Charge)
        .where(
            Charge.billing_account_id == account.id,
            Charge.bill_id.is_(None),
            (Charge.period_start.is_(None)) | (Charge.period_start < period[1]),
        )
        .with_for_update()
    ).all()
    if not charges:
        return None
    foreign = sorted({c.currency for c in charges} - {account.currency})
    if foreign:
        raise Conflict(
            f"billingAccount {account.id}: charges in {', '.join(foreign)} cannot go on a "
            f"{account.currency} bill"
        )
    charges = sorted(
        charges,
        key=lambda c: (
            TYPE_ORDER[c.charge_type],
            c.service_id or "",
            c.period_start or date.min,
            c.created_at,
            c.id,
        ),
    )
    customer = accounts.find_customer(session, account.customer_id)
    country = customer.country if customer is not None else None
    today = clock.now().date()
    bill = CustomerBill(
        id=new_id(),
        bill_no=f"{account.id}-{period[0]:%Y%m}",
        billing_account_id=account.id,
        bill_run_id=run.id,
        customer_id=account.customer_id,
        state="new",
        period_start=period[0],
        period_end=period[1],
        bill_date=today,
        payment_due_date=today + timedelta(days=account.payment_terms_days),
        currency=account.currency,
        amount_excluding_tax=Decimal(0),
        tax_amount=Decimal(0),
        amount_due=Decimal(0),
        created_at=clock.now(),
    )
    session.add(bill)
    session.flush()
    rates: dict[str, Decimal] = {}
    lines: list[dict[str, Any]] = []
    amounts: list[Decimal] = []
    taxes: list[Decimal] = []
    for position, charge in enumerate(charges, 1):
        rate = rates.setdefault(charge.tax_category, tax_rate(session, country, charge.tax_category))
        amount = Decimal(charge.amount)
        amounts.append(amount)
        taxes.append(cents(amount * rate))
        lines.append(
            {
                "id": new_id(),
                "bill_id": bill.id,
                "charge_id": charge.id,
                "position": position,
                "charge_type": charge.charge_type,
                "description": charge.component[:300],
                "service_id": charge.service_id,
                "period_start": charge.period_start,
                "period_end": charge.period_end,
                "amount": amount,
                "tax_category": charge.tax_category,
                "tax_rate": rate,
                "tax_amount": taxes[-1],
            }
        )
    # one INSERT of the lines (unique charge_id: a charge on a second line cannot commit), one UPDATE
    session.execute(insert(table_of(BillLine)), lines)
    session.execute(
        update(Charge)
        .where(Charge.id.in_([c.id for c in charges]))
        .values(bill_id=bill.id)
        .execution_options(synchronize_session=False)
    )
    bill.amount_excluding_tax = sum(amounts, Decimal("0.00"))
    bill.tax_amount = sum(taxes, Decimal("0.00"))
    bill.amount_due = bill.amount_excluding_tax + bill.tax_amount
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="customerBill.create",
        resource_type="customerBill",
        resource_id=bill.id,
        details={
            "billingAccountId": account.id,
            "period": f"{period[0]:%Y-%m}",
            "lines": len(lines),
            "amountDue": str(bill.amount_due),
        },
    )
    publish(
        session,
        api=BILL_API,
        event_type="CustomerBillCreateEvent",
        resource_type="customerBill",
        resource=render_bill(bill),
    )
    return bill


def run_bills(session: Session, data: BillRunCreate, actor: str) -> BillRunResult:
    """Bill every billing account of the cycle day for the period (one transaction per account)."""
    try:
        year, month = parse_period(data.period)
    except ValueError as exc:
        raise InvalidInput(f"period: {exc}") from None
    period = period_named(data.billCycleDay, year, month)
    if period[0] > clock.now().date():
        raise InvalidInput(
            f"period: the {data.period} period of bill cycle day {data.billCycleDay} starts "
            f"{period[0].isoformat()}, in the future; recurring charges are billed in advance from its start",
            reason="Period not started",
        )
    run = _run_row(session, data.billCycleDay, period, actor)
    audit.record(
        session,
        actor=actor,
        action="billRun.run",
        resource_type="billRun",
        resource_id=run.id,
        details={"billCycleDay": data.billCycleDay, "period": data.period, "run": run.runs},
    )
    session.commit()
    run_id = run.id
    account_ids = session.scalars(
        select(BillingAccount.id)
        .where(BillingAccount.bill_cycle_day == data.billCycleDay, BillingAccount.state != "closed")
        .order_by(BillingAccount.id)
    ).all()
    made: list[str] = []
    failed: list[tuple[str, str]] = []
    skipped = 0
    for account_id in account_ids:
        run = session.get(BillRun, run_id, populate_existing=True)  # type: ignore[assignment]
        assert run is not None
        try:
            bill = _bill_account(session, run, account_id, period, actor)
        except TurnupError as exc:  # this account's data is wrong: nothing of it written, the others go on
            session.rollback()
            failed.append((account_id, exc.message))
            continue
        except Exception:
            session.rollback()
            raise
        session.commit()
        if bill is None:
            skipped += 1
        else:
            made.append(bill.id)
    final = session.get(BillRun, run_id)
    assert final is not None
    return BillRunResult(final, tuple(made), skipped, tuple(failed))


def get_bill_run(session: Session, run_id: str) -> BillRun:
    run = session.get(BillRun, run_id)
    if run is None:
        raise NotFound(f"billRun {run_id!r} not found")
    return run


def close_bill_run(session: Session, run_id: str, actor: str) -> BillRun:
    run = session.get(BillRun, run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"billRun {run_id!r} not found")
    if run.state == "closed":
        raise Conflict(f"billRun {run_id!r} is already closed", reason="Illegal state transition")
    run.state, run.closed_at, run.closed_by = "closed", clock.now(), actor
    session.flush()
    audit.record(session, actor=actor, action="billRun.close", resource_type="billRun", resource_id=run.id)
    publish(
        session,
        api=BILL_API,
        event_type="BillRunStateChangeEvent",
        resource_type="billRun",
        resource=render_bill_run(run),
    )
    session.commit()
    return run


def get_bill(session: Session, bill_id: str) -> CustomerBill:
    bill = session.get(CustomerBill, bill_id)
    if bill is None:
        raise NotFound(f"customerBill {bill_id!r} not found")
    return bill


def bill_lines(session: Session, bill_id: str) -> list[BillLine]:
    return list(
        session.scalars(select(BillLine).where(BillLine.bill_id == bill_id).order_by(BillLine.position))
    )
