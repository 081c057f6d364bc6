"""Charges: opening and ending recurring rates, prorated first-period charges and credits, one-time
charges. Everything runs in the caller's transaction (the consumer's, or a service's) and never commits.

Exactly-once: every charge and every rate has a ``key`` naming what caused it (unique in the database);
writing one whose key exists is a no-op, so a redelivered event changes nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from turnup import accounts
from turnup.billing.model import period_of, prorate
from turnup.billing.orm import BilledService, BillingAccount, Charge, RecurringRate
from turnup.billing.pricing import PriceComponent, ServicePrices
from turnup.billing.render import BILL_API, render_charge
from turnup.kernel import audit, clock
from turnup.kernel.db import Base, rowcount, table_of
from turnup.kernel.errors import Conflict
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

DEFAULT_CURRENCY = "GBP"
DEFAULT_CYCLE_DAY = 1
DEFAULT_PAYMENT_TERMS = 30


def insert_ignore(session: Session, model: type[Base], values: dict[str, Any]) -> bool:
    """INSERT one row unless its unique key exists (ON CONFLICT DO NOTHING); True when inserted. Two
    transactions creating the same row at once: one inserts, the other waits for it and inserts nothing."""
    table = table_of(model)
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    return rowcount(session.execute(statement)) == 1


def default_account_id(customer_id: str) -> str:
    return f"BA-{customer_id}"


def ensure_account(
    session: Session, account_id: str, customer_id: str, name: str | None, actor: str
) -> BillingAccount:
    """The billing account with this id, created with the defaults (cycle day 1, GBP, 30 days) when the
    customer references one billing has no record of yet."""
    account = session.get(BillingAccount, account_id)
    if account is not None:
        return account
    now = clock.now()
    created = insert_ignore(
        session,
        BillingAccount,
        {
            "id": account_id,
            "name": (name or f"{account_id} billing account")[:200],
            "customer_id": customer_id,
            "state": "active",
            "currency": DEFAULT_CURRENCY,
            "bill_cycle_day": DEFAULT_CYCLE_DAY,
            "payment_terms_days": DEFAULT_PAYMENT_TERMS,
            "bill_to_contact_id": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    if created:
        audit.record(
            session,
            actor=actor,
            action="billingAccount.create",
            resource_type="billingAccount",
            resource_id=account_id,
            details={"customerId": customer_id, "from": "customer reference"},
        )
    account = session.get(BillingAccount, account_id)
    assert account is not None
    return account


def account_for_customer(session: Session, customer_id: str, actor: str) -> BillingAccount:
    """The customer's billing account (its reference, else the default ``BA-<customer id>``)."""
    customer = accounts.find_customer(session, customer_id)
    if customer is None:
        raise Conflict(f"customerId: unknown customer {customer_id!r}; nothing can be billed")
    account_id = customer.billing_account_id or default_account_id(customer_id)
    return ensure_account(session, account_id, customer_id, f"{customer.name} billing account", actor)


def add_charge(
    session: Session,
    *,
    key: str,
    charge_type: str,
    account: BillingAccount,
    component: str,
    amount: Decimal,
    currency: str,
    tax_category: str,
    source: str,
    actor: str,
    service_id: str | None = None,
    order_id: str | None = None,
    order_item_id: str | None = None,
    offering_id: str | None = None,
    rate_id: str | None = None,
    period: tuple[date, date] | None = None,
) -> Charge | None:
    """Write one charge (audited, announced) unless its key exists; None when it did."""
    if session.scalar(select(Charge.id).where(Charge.key == key)) is not None:
        return None
    charge = Charge(
        id=new_id(),
        key=key,
        charge_type=charge_type,
        billing_account_id=account.id,
        customer_id=account.customer_id,
        service_id=service_id,
        order_id=order_id,
        order_item_id=order_item_id,
        offering_id=offering_id,
        rate_id=rate_id,
        component=component[:200],
        currency=currency,
        amount=amount,
        tax_category=tax_category,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        source=source,
        bill_id=None,
        created_at=clock.now(),
    )
    session.add(charge)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="charge.create",
        resource_type="appliedCustomerBillingRate",
        resource_id=charge.id,
        details={"type": charge_type, "amount": str(amount), "key": key, "serviceId": service_id},
    )
    publish(
        session,
        api=BILL_API,
        event_type="AppliedCustomerBillingRateCreateEvent",
        resource_type="appliedCustomerBillingRate",
        resource=render_charge(charge),
    )
    return charge


def charge_rate_period(
    session: Session, rate: RecurringRate, account: BillingAccount, period: tuple[date, date], actor: str
) -> Charge | None:
    """The recurring charge of one rate for one bill period (the days of the period the rate runs)."""
    start = max(rate.starts_on, period[0])
    end = min(rate.ends_on, period[1]) if rate.ends_on is not None else period[1]
    if end <= start:
        return None
    return add_charge(
        session,
        key=f"rate:{rate.id}:{period[0].isoformat()}",
        charge_type="recurring",
        account=account,
        component=rate.component,
        amount=prorate(Decimal(rate.amount), period, start, end),
        currency=rate.currency,
        tax_category=rate.tax_category,
        source="recurring",
        actor=actor,
        service_id=rate.service_id,
        order_id=rate.order_id,
        order_item_id=rate.order_item_id,
        offering_id=rate.offering_id,
        rate_id=rate.id,
        period=(start, end),
    )


def open_rate(
    session: Session,
    *,
    key: str,
    service_id: str,
    account: BillingAccount,
    prices: ServicePrices,
    component: PriceComponent,
    starts_on: date,
    actor: str,
) -> RecurringRate | None:
    """Start a recurring rate on ``starts_on`` and charge its first (prorated) bill period."""
    if session.scalar(select(RecurringRate.id).where(RecurringRate.key == key)) is not None:
        return None
    rate = RecurringRate(
        id=new_id(),
        key=key,
        service_id=service_id,
        billing_account_id=account.id,
        customer_id=account.customer_id,
        order_id=prices.order_id,
        order_item_id=prices.order_item_id,
        offering_id=prices.offering_id,
        component=component.name[:200],
        currency=component.currency,
        amount=component.amount,
        tax_category=component.tax_category,
        starts_on=starts_on,
        ends_on=None,
        end_reason=None,
        created_at=clock.now(),
    )
    session.add(rate)
    session.flush()
    charge_rate_period(session, rate, account, period_of(account.bill_cycle_day, starts_on), actor)
    return rate


def running_rates(session: Session, service_id: str) -> list[RecurringRate]:
    return list(
        session.scalars(
            select(RecurringRate)
            .where(RecurringRate.service_id == service_id, RecurringRate.ends_on.is_(None))
            .order_by(RecurringRate.component, RecurringRate.id)
            .with_for_update()
        )
    )


def end_rates(
    session: Session, service_id: str, ends_on: date, reason: str, actor: str
) -> list[RecurringRate]:
    """End the service's running rates on ``ends_on`` and credit what was charged beyond it (prorated)."""
    ended = running_rates(session, service_id)
    for rate in ended:
        rate.ends_on, rate.end_reason = max(ends_on, rate.starts_on), reason
        account = session.get(BillingAccount, rate.billing_account_id)
        assert account is not None
        charged = session.scalars(
            select(Charge)
            .where(
                Charge.rate_id == rate.id,
                Charge.charge_type == "recurring",
                Charge.period_end > rate.ends_on,
            )
            .order_by(Charge.period_start)
        ).all()
        for charge in charged:
            assert charge.period_start is not None and charge.period_end is not None
            period = period_of(account.bill_cycle_day, charge.period_start)
            back_from = max(rate.ends_on, charge.period_start)
            credit = prorate(Decimal(rate.amount), period, back_from, charge.period_end)
            if credit:
                add_charge(
                    session,
                    key=f"credit:{charge.id}",
                    charge_type="credit",
                    account=account,
                    component=f"{rate.component} ({reason})",
                    amount=-credit,
                    currency=rate.currency,
                    tax_category=rate.tax_category,
                    source=reason,
                    actor=actor,
                    service_id=rate.service_id,
                    order_id=rate.order_id,
                    order_item_id=rate.order_item_id,
                    offering_id=rate.offering_id,
                    rate_id=rate.id,
                    period=(back_from, charge.period_end),
                )
    session.flush()
    return ended


def one_time_charges(
    session: Session, service_id: str, account: BillingAccount, prices: ServicePrices, source: str, actor: str
) -> list[Charge]:
    """The service's one-time components, charged once (whichever of hand-over, installation or activation
    comes first)."""
    written = []
    for component in prices.components:
        if component.price_type != "oneTime":
            continue
        charge = add_charge(
            session,
            key=f"once:{service_id}:{component.name}",
            charge_type="oneTime",
            account=account,
            component=component.name,
            amount=component.amount,
            currency=component.currency,
            tax_category=component.tax_category,
            source=source,
            actor=actor,
            service_id=service_id,
            order_id=prices.order_id,
            order_item_id=prices.order_item_id,
            offering_id=prices.offering_id,
        )
        if charge is not None:
            written.append(charge)
    return written


def attach_service(
    session: Session, service_id: str, account: BillingAccount, state: str, on: date
) -> BilledService:
    """Record (or update) which account the service belongs to and its billed state."""
    record = session.get(BilledService, service_id, with_for_update=True)
    now = clock.now()
    if record is None:
        record = BilledService(
            service_id=service_id,
            billing_account_id=account.id,
            customer_id=account.customer_id,
            state=state,
            activated_on=on if state == "active" else None,
            ended_on=on if state == "terminated" else None,
            updated_at=now,
        )
        session.add(record)
    elif record.state != "terminated":
        record.state, record.updated_at = state, now
        if state == "terminated":
            record.ended_on = on
    session.flush()
    return record
