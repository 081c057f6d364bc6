"""How a customer's lifecycle follows its services: a durable consumer of the internal delivery events.

``accounts.customer_lifecycle`` (``ServiceActivatedEvent``, ``ServiceResumedEvent``,
``ServiceSuspendedEvent``, ``ServiceTerminatedEvent`` of ``turnupDelivery``): accounts keeps its own record
of each of the customer's services and their state as of their last event (``customer_service``), then:

- a ``prospective`` or ``inactive`` customer with a live service (``active`` or suspended — ``inactive`` — but
  not terminated) becomes ``active``;
- an ``active`` customer with no live service left becomes ``inactive``.

A ``suspended`` or ``closed`` customer is an operator's decision and is left alone (its services are still
recorded). Each change is audited (``customer.lifecycle``) and announced with ``CustomerStateChangeEvent``.

Idempotent under redelivery: the record is keyed by service, keeps the state of the latest event seen (an
older event handled again does not bring back an older state; ``terminated`` is final) and the status is
derived from the records, so handling an event again changes nothing. Events of one service arrive in
order (consumer rule); the customer's row is locked first, so two services of one customer handled at
once serialise. Handlers use the worker's session and never commit (``turnup.kernel.consumers``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from turnup.accounts.orm import Customer, CustomerService
from turnup.accounts.render import render_customer
from turnup.accounts.services import CUSTOMER_API
from turnup.kernel import audit, clock
from turnup.kernel.consumers import Event, consumer
from turnup.kernel.outbox import publish

SERVICE_EVENTS = (
    "ServiceActivatedEvent",
    "ServiceResumedEvent",
    "ServiceSuspendedEvent",
    "ServiceTerminatedEvent",
)
LIVE_SERVICE_STATES = ("active", "inactive")  # a suspended service still "remains"
ACTOR = "system:customer-lifecycle"


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) and value else None


def lifecycle_status(current: str, live_services: int) -> str:
    """The status a customer should have given its current one and how many live services it has."""
    if live_services and current in ("prospective", "inactive"):
        return "active"
    if not live_services and current == "active":
        return "inactive"
    return current


def _decide(session: Session, customer_id: str, *, exclusive: bool) -> tuple[Customer, int, str]:
    """The customer locked (shared, or exclusive), its live services counted, the status it should have."""
    customer = session.get(
        Customer,
        customer_id,
        with_for_update=True if exclusive else {"read": True},
        populate_existing=True,
    )
    assert customer is not None
    live = int(
        session.scalar(
            select(func.count())
            .select_from(CustomerService)
            .where(CustomerService.customer_id == customer_id, CustomerService.state.in_(LIVE_SERVICE_STATES))
        )
        or 0
    )
    return customer, live, lifecycle_status(customer.status, live)


@consumer("accounts.customer_lifecycle", events=list(SERVICE_EVENTS))
def follow_services(session: Session, event: Event) -> None:
    """Record the service's state and move the customer through prospective / active / inactive."""
    fact = event.resource
    service_id = str(fact.get("serviceId") or event.resource_id)
    customer_id, state = fact.get("customerId"), fact.get("state")
    if not customer_id or not state:
        return
    seen = session.get(Customer, str(customer_id), populate_existing=True)
    if seen is None:
        return  # a deleted customer (or a service of a customer accounts does not know)
    now = clock.now()
    at = _when(fact.get("at")) or event.event_time
    record = session.get(CustomerService, service_id, with_for_update=True)
    if record is None:
        record = CustomerService(service_id=service_id, customer_id=seen.id, state=str(state), as_of=at)
        session.add(record)
    elif record.state != "terminated" and at >= record.as_of:  # terminated is final; older facts lose
        record.state, record.as_of = str(state), at
    session.flush()
    # Decisions about one customer must not race: two terminations each counting the other's service as
    # live would leave an active customer with none. So an event that ends a service, or one that looks
    # like it changes the status, locks the customer FOR UPDATE. The common event - another service of an
    # active customer becomes live - cannot be wrong that way and takes the lock FOR SHARE: such events do
    # not wait for each other, and each still waits for (and then sees) a concurrent status change.
    exclusive = str(state) not in LIVE_SERVICE_STATES or lifecycle_status(seen.status, 1) != seen.status
    customer, live, new_status = _decide(session, seen.id, exclusive=exclusive)
    if new_status != customer.status and not exclusive:
        customer, live, new_status = _decide(session, seen.id, exclusive=True)
    if new_status == customer.status:
        return
    old_status = customer.status
    customer.status, customer.updated_at = new_status, now
    session.flush()
    audit.record(
        session,
        actor=ACTOR,
        action="customer.lifecycle",
        resource_type="customer",
        resource_id=customer.id,
        details={
            "from": old_status,
            "to": new_status,
            "liveServices": live,
            "serviceId": service_id,
            "event": event.event_type,
            "eventId": event.id,
        },
    )
    publish(
        session,
        api=CUSTOMER_API,
        event_type="CustomerStateChangeEvent",
        resource_type="customer",
        resource=render_customer(customer),
    )
