"""Billing triggers and billing-account records: durable consumers (``turnup.kernel.consumers``).

``billing.triggers`` (delivery events of ``turnupDelivery`` and ``ProductOrderMilestoneEvent``):

- ``ServiceActivatedEvent``: the service joins its customer's billing account; each recurring price
  component starts a rate on the activation date with its first period's prorated charge; one-time
  components are charged, unless the service's order item has a hand-over or installation step (field
  visit, shipment, pickup, project milestone) for it: then its ``ProductOrderMilestoneEvent`` charges them.
- ``ServiceSuspendedEvent``: unless suspended services are billed (``TURNUP_BILLING_BILL_SUSPENDED=true``;
  default: not), the running rates end on the suspension date with a prorated credit of what was charged
  beyond it; ``ServiceResumedEvent`` starts them again (same components and amounts) on the resumption date.
- ``ServiceModifiedEvent``: when the modify order item carries a priced change (``pricing.difference``),
  the running rates end on the change date (credit) and start again, the first recurring component's
  amount changed by the difference.
- ``ServiceTerminatedEvent``: the rates end on the termination date with the prorated credit.
- ``ProductOrderMilestoneEvent`` (hand-over or installation): the one-time components of the service the
  milestone's plan step belongs to.

``billing.accounts`` (``CustomerCreateEvent``, ``CustomerAttributeValueChangeEvent``): the billing account a
customer references gets its billing record.

Handlers use the worker's session, never commit, and are idempotent: every rate and charge has a unique
key naming its cause.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import ordering
from turnup.billing.charges import (
    account_for_customer,
    attach_service,
    end_rates,
    ensure_account,
    one_time_charges,
    open_rate,
    running_rates,
)
from turnup.billing.model import day_of
from turnup.billing.orm import BilledService, BillingAccount, RecurringRate
from turnup.billing.pricing import (
    PriceComponent,
    ServicePrices,
    charged_at_milestone,
    service_for_plan_item,
    service_prices,
)
from turnup.kernel import clock
from turnup.kernel.consumers import Event, consumer

ACTOR = "system:billing"
SERVICE_EVENTS = (
    "ServiceActivatedEvent",
    "ServiceSuspendedEvent",
    "ServiceResumedEvent",
    "ServiceTerminatedEvent",
    "ServiceModifiedEvent",
)


def bill_suspended() -> bool:
    """Whether a suspended service keeps being billed (``TURNUP_BILLING_BILL_SUSPENDED``; default no)."""
    return os.environ.get("TURNUP_BILLING_BILL_SUSPENDED", "false").strip().lower() in ("1", "true", "yes")


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) and value else None


def _account(session: Session, service_id: str, customer_id: str) -> BillingAccount:
    record = session.get(BilledService, service_id)
    if record is not None:
        account = session.get(BillingAccount, record.billing_account_id)
        assert account is not None
        return account
    return account_for_customer(session, customer_id, ACTOR)


def _fresh(record: BilledService, event: Event, at: datetime) -> bool:
    """Whether the event is newer than the latest one applied to the service (not it again, not older)."""
    if record.last_event_id == event.id:
        return False
    return record.last_event_at is None or at >= record.last_event_at


def _applied(record: BilledService, event: Event, at: datetime, state: str | None = None) -> None:
    record.last_event_at, record.last_event_id = at, event.id
    if state is not None:
        record.state = state


def _activated(session: Session, event: Event, fact: dict[str, Any], at: datetime, on: date) -> None:
    service_id, customer_id = str(fact["serviceId"]), str(fact["customerId"])
    account = _account(session, service_id, customer_id)
    if session.get(BilledService, service_id) is not None:
        return  # already billed (a redelivered or repeated activation)
    record = attach_service(session, service_id, account, "active", on)
    _applied(record, event, at)
    prices = service_prices(session, service_id, fact.get("productOrderId"), fact.get("productOrderItemId"))
    for component in prices.components:
        if component.price_type == "recurring":
            open_rate(
                session,
                key=f"{service_id}|{component.name}|activated",
                service_id=service_id,
                account=account,
                prices=prices,
                component=component,
                starts_on=on,
                actor=ACTOR,
            )
    if not charged_at_milestone(session, fact.get("productOrderId"), service_id):
        one_time_charges(session, service_id, account, prices, "activation", ACTOR)


def _restart(
    session: Session, event: Event, service_id: str, ended: list[RecurringRate], on: date, change: Decimal
) -> None:
    for i, rate in enumerate(ended):
        account = session.get(BillingAccount, rate.billing_account_id)
        assert account is not None
        amount = Decimal(rate.amount) + (change if i == 0 else Decimal(0))
        open_rate(
            session,
            key=f"{service_id}|{rate.component}|{event.id}",
            service_id=service_id,
            account=account,
            prices=ServicePrices(rate.order_id, rate.order_item_id, rate.offering_id, ()),
            component=PriceComponent(
                rate.component, "recurring", max(amount, Decimal(0)), rate.currency, rate.tax_category
            ),
            starts_on=on,
            actor=ACTOR,
        )


def _resumed(session: Session, event: Event, service_id: str, on: date) -> None:
    last = session.scalar(
        select(RecurringRate.ends_on)
        .where(RecurringRate.service_id == service_id, RecurringRate.end_reason == "suspended")
        .order_by(RecurringRate.ends_on.desc())
        .limit(1)
    )
    if last is None or running_rates(session, service_id):
        return
    suspended = list(
        session.scalars(
            select(RecurringRate)
            .where(
                RecurringRate.service_id == service_id,
                RecurringRate.end_reason == "suspended",
                RecurringRate.ends_on == last,
            )
            .order_by(RecurringRate.component, RecurringRate.id)
        )
    )
    _restart(session, event, service_id, suspended, on, Decimal(0))


def _price_change(session: Session, fact: dict[str, Any]) -> Decimal:
    """The recurring price difference a modify order item carries (``pricing.difference.recurring``)."""
    order_id, item_id = fact.get("productOrderId"), fact.get("productOrderItemId")
    if not order_id or not item_id:
        return Decimal(0)
    order = ordering.get_order(session, str(order_id))
    item = next((i for i in order.items if i.id == item_id), None)
    pricing = (item.pricing if item is not None else None) or {}
    return Decimal(str((pricing.get("difference") or {}).get("recurring") or "0"))


@consumer("billing.triggers", events=[*SERVICE_EVENTS, "ProductOrderMilestoneEvent"])
def billing_triggers(session: Session, event: Event) -> None:
    """Charges follow the delivery events (see the module's rules)."""
    fact = event.resource
    if event.event_type == "ProductOrderMilestoneEvent":
        _milestone(session, fact)
        return
    service_id = str(fact.get("serviceId") or event.resource_id)
    if not fact.get("customerId"):
        return
    at = _when(fact.get("at")) or event.event_time
    if event.event_type == "ServiceActivatedEvent":
        _activated(session, event, fact, at, day_of(_when(fact.get("activationDate")) or at))
        return
    record = session.get(BilledService, service_id, with_for_update=True, populate_existing=True)
    if record is None or record.state == "terminated" or not _fresh(record, event, at):
        return  # a service billing never saw activated, an ended one, or an event already applied
    if event.event_type == "ServiceTerminatedEvent":
        on = day_of(_when(fact.get("terminationDate")) or at)
        end_rates(session, service_id, on, "terminated", ACTOR)
        _applied(record, event, at, "terminated")
        record.ended_on = on
    elif event.event_type == "ServiceSuspendedEvent":
        if record.state == "active" and not bill_suspended():
            end_rates(session, service_id, day_of(at), "suspended", ACTOR)
        _applied(record, event, at, "suspended")
    elif event.event_type == "ServiceResumedEvent":
        if record.state == "suspended":
            _resumed(session, event, service_id, day_of(at))
        _applied(record, event, at, "active")
    elif event.event_type == "ServiceModifiedEvent":
        change = _price_change(session, fact)
        if change:
            ended = end_rates(session, service_id, day_of(at), "modified", ACTOR)
            _restart(session, event, service_id, ended, day_of(at), change)
        _applied(record, event, at)
    record.updated_at = clock.now()
    session.flush()


def _milestone(session: Session, fact: dict[str, Any]) -> None:
    order_id, customer = fact.get("id"), fact.get("relatedParty") or []
    milestones = fact.get("milestone") or []
    if not order_id or not milestones:
        return
    customer_id = next((p.get("id") for p in customer if p.get("role") == "customer"), None) or (
        customer[0].get("id") if customer else None
    )
    if not customer_id:
        return
    for milestone in milestones:
        if milestone.get("status") != "completed" or not milestone.get("planItemId"):
            continue
        found = service_for_plan_item(session, str(order_id), str(milestone["planItemId"]))
        if found is None:
            continue
        service_id, item_id = found
        prices = service_prices(session, service_id, str(order_id), item_id)
        if not any(c.price_type == "oneTime" for c in prices.components):
            continue
        account = _account(session, service_id, str(customer_id))
        one_time_charges(
            session, service_id, account, prices, str(milestone.get("name") or "milestone"), ACTOR
        )


@consumer("billing.accounts", events=["CustomerCreateEvent", "CustomerAttributeValueChangeEvent"])
def billing_accounts(session: Session, event: Event) -> None:
    """A customer's billing account reference gets a billing account record (defaults) if it has none."""
    customer = event.resource
    ref = customer.get("billingAccount") or {}
    if not ref.get("id") or not customer.get("id"):
        return
    ensure_account(session, str(ref["id"]), str(customer["id"]), ref.get("name"), ACTOR)
