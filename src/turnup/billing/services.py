"""Billing use cases: billing accounts, manual charges, tax rates, the running-charges query and the
export. Each command validates first, then changes, audits, publishes and commits once."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import accounts
from turnup.billing.charges import add_charge
from turnup.billing.model import day_of
from turnup.billing.orm import BilledService, BillingAccount, Charge, RecurringRate, TaxRate
from turnup.billing.render import ACCOUNT_API, render_account, render_charge
from turnup.billing.schemas import BillingAccountCreate, BillingAccountUpdate, ChargeCreate, TaxRateSet
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

ACCOUNT_TRANSITIONS = {
    "active": {"suspended", "closed"},
    "suspended": {"active", "closed"},
    "closed": set(),
}


def get_account(session: Session, account_id: str, *, lock: bool = False) -> BillingAccount:
    account = session.get(BillingAccount, account_id, with_for_update=lock or None)
    if account is None:
        raise NotFound(f"billingAccount {account_id!r} not found")
    return account


def _contact(session: Session, customer_id: str, contact_id: str | None, where: str) -> None:
    if contact_id is None:
        return
    if contact_id not in {c.id for c in accounts.customer_contacts(session, customer_id)}:
        raise InvalidInput(f"{where}: contact {contact_id!r} is not a contact of customer {customer_id!r}")


def create_account(session: Session, data: BillingAccountCreate, actor: str) -> BillingAccount:
    customer = accounts.live_customer(
        session, data.relatedParty[0].id, "relatedParty[0].id", unknown=InvalidInput
    )
    account_id = data.id or new_id()
    if session.get(BillingAccount, account_id) is not None:
        raise Conflict(f"id: billingAccount {account_id!r} already exists")
    contact_id = data.billToContact.id if data.billToContact else None
    _contact(session, customer.id, contact_id, "billToContact.id")
    now = clock.now()
    account = BillingAccount(
        id=account_id,
        name=data.name,
        customer_id=customer.id,
        state=data.state,
        currency=data.currency,
        bill_cycle_day=data.billCycleDay,
        payment_terms_days=data.paymentTermsDays,
        bill_to_contact_id=contact_id,
        created_at=now,
        updated_at=now,
    )
    session.add(account)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="billingAccount.create",
        resource_type="billingAccount",
        resource_id=account.id,
        details={"customerId": customer.id, "billCycleDay": data.billCycleDay, "currency": data.currency},
    )
    publish(
        session,
        api=ACCOUNT_API,
        event_type="BillingAccountCreateEvent",
        resource_type="billingAccount",
        resource=render_account(account),
    )
    session.commit()
    return account


def update_account(
    session: Session, account_id: str, data: BillingAccountUpdate, actor: str
) -> BillingAccount:
    account = get_account(session, account_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    if account.state == "closed" and changes:
        raise Conflict(
            f"billingAccount {account_id!r} is closed and cannot be changed",
            reason="Illegal state transition",
        )
    new_state = changes.get("state")
    if (
        new_state is not None
        and new_state != account.state
        and new_state not in ACCOUNT_TRANSITIONS[account.state]
    ):
        raise Conflict(
            f"state: a {account.state} billingAccount cannot become {new_state}",
            reason="Illegal state transition",
        )
    if (
        "billCycleDay" in changes
        and changes["billCycleDay"] != account.bill_cycle_day
        and session.scalar(select(Charge.id).where(Charge.billing_account_id == account.id).limit(1))
    ):
        raise Conflict(
            f"billCycleDay: billingAccount {account_id!r} already has charges; its bill cycle cannot change"
        )
    for key in ("name", "billCycleDay", "paymentTermsDays", "state", "billToContact"):
        if key in changes and changes[key] is None and key != "billToContact":
            raise InvalidInput(f"{key}: cannot be removed")
    if "billToContact" in changes:
        contact_id = changes["billToContact"]["id"] if changes["billToContact"] else None
        _contact(session, account.customer_id, contact_id, "billToContact.id")
        account.bill_to_contact_id = contact_id
    if "name" in changes:
        account.name = changes["name"]
    if "billCycleDay" in changes:
        account.bill_cycle_day = changes["billCycleDay"]
    if "paymentTermsDays" in changes:
        account.payment_terms_days = changes["paymentTermsDays"]
    if new_state is not None:
        account.state = new_state
    account.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="billingAccount.update",
        resource_type="billingAccount",
        resource_id=account.id,
        details={k: v for k, v in changes.items()},
    )
    publish(
        session,
        api=ACCOUNT_API,
        event_type="BillingAccountAttributeValueChangeEvent",
        resource_type="billingAccount",
        resource=render_account(account),
    )
    session.commit()
    return account


def create_charge(session: Session, data: ChargeCreate, actor: str) -> Charge:
    """A charge from outside the delivery flow; ``externalId`` makes it exactly-once per account."""
    account = session.get(BillingAccount, data.billingAccount.id)
    if account is None:
        raise InvalidInput(f"billingAccount.id: unknown billing account {data.billingAccount.id!r}")
    if account.state == "closed":
        raise Conflict(f"billingAccount.id: billing account {account.id!r} is closed")
    if data.amount.unit != account.currency:
        raise InvalidInput(
            f"amount.unit: {data.amount.unit!r} is not the billing account's currency {account.currency!r}"
        )
    service_id = data.service.id if data.service else None
    if service_id is not None:
        billed = session.get(BilledService, service_id)
        if billed is None or billed.billing_account_id != account.id:
            raise InvalidInput(f"service.id: service {service_id!r} is not billed to account {account.id!r}")
    key = f"manual:{account.id}:{data.externalId}"
    if session.scalar(select(Charge.id).where(Charge.key == key)) is not None:
        raise Conflict(f"externalId: a charge {data.externalId!r} of account {account.id!r} already exists")
    amount = data.amount.value if data.type == "oneTime" else -data.amount.value
    charge = add_charge(
        session,
        key=key,
        charge_type=data.type,
        account=account,
        component=data.name,
        amount=amount,
        currency=account.currency,
        tax_category=data.taxCategory,
        source="manual",
        actor=actor,
        service_id=service_id,
    )
    assert charge is not None
    session.commit()
    return charge


def get_charge(session: Session, charge_id: str) -> Charge:
    charge = session.get(Charge, charge_id)
    if charge is None:
        raise NotFound(f"appliedCustomerBillingRate {charge_id!r} not found")
    return charge


def set_tax_rate(session: Session, data: TaxRateSet, actor: str) -> TaxRate:
    row = session.get(TaxRate, (data.country, data.taxCategory), with_for_update=True)
    before = str(row.rate) if row is not None else None
    if row is None:
        row = TaxRate(
            country=data.country, tax_category=data.taxCategory, rate=data.rate, updated_at=clock.now()
        )
        session.add(row)
    else:
        row.rate, row.updated_at = data.rate, clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="taxRate.set",
        resource_type="taxRate",
        resource_id=f"{data.country}/{data.taxCategory}",
        details={"from": before, "to": str(data.rate)},
    )
    session.commit()
    return row


def tax_rate(session: Session, country: str | None, category: str) -> Decimal:
    """The rate for a country and tax category; 0 when the table has none."""
    if not country:
        return Decimal("0")
    row = session.get(TaxRate, (country, category))
    return Decimal(row.rate) if row is not None else Decimal("0")


def services_with_running_charges(session: Session, at: datetime) -> set[str]:
    """The services with a recurring rate running at ``at`` (a suspended, unbilled service has none)."""
    day = day_of(at)
    return set(
        session.scalars(
            select(RecurringRate.service_id)
            .where(
                RecurringRate.starts_on <= day,
                (RecurringRate.ends_on.is_(None)) | (RecurringRate.ends_on > day),
            )
            .distinct()
        )
    )


def billing_account_of_service(session: Session, service_id: str) -> str | None:
    record = session.get(BilledService, service_id)
    return record.billing_account_id if record is not None else None


EXPORT_COLUMNS = (
    "id",
    "type",
    "billingAccountId",
    "customerId",
    "serviceId",
    "productOrderId",
    "productOrderItemId",
    "productOfferingId",
    "component",
    "periodStart",
    "periodEnd",
    "amount",
    "currency",
    "taxCategory",
    "billId",
    "createdAt",
)


def _row(c: Charge) -> list[str]:
    def day(value: date | None) -> str:
        return value.isoformat() if value else ""

    return [
        c.id,
        c.charge_type,
        c.billing_account_id,
        c.customer_id,
        c.service_id or "",
        c.order_id or "",
        c.order_item_id or "",
        c.offering_id or "",
        c.component,
        day(c.period_start),
        day(c.period_end),
        f"{Decimal(c.amount):.2f}",
        c.currency,
        c.tax_category,
        c.bill_id or "",
        c.created_at.isoformat(),
    ]


def export_charges(session: Session, fmt: str, since: datetime | None = None) -> str:
    """Every charge created at or after ``since`` (all when None), oldest first, as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise InvalidInput(f"format: must be csv or json, got {fmt!r}")
    stmt = select(Charge).order_by(Charge.created_at, Charge.id)
    if since is not None:
        stmt = stmt.where(Charge.created_at >= since)
    rows = list(session.scalars(stmt))
    if fmt == "json":
        return json.dumps([render_charge(c) for c in rows], indent=None)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for c in rows:
        writer.writerow(_row(c))
    return out.getvalue()


def parse_since(raw: str | None) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"since: {raw!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise InvalidInput(f"since: {raw!r} needs a timezone offset (e.g. Z)")
    return value
