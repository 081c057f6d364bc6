"""``usage.service_periods``: usage's own record of when each service may be billed for usage.

A durable consumer of ``ServiceActivatedEvent``, ``ServiceSuspendedEvent``, ``ServiceResumedEvent`` and
``ServiceTerminatedEvent`` (``turnupDelivery``). For each event it records the service (customer, the
customer's billing account as accounts knows it then, offering) and the state change (``at`` = the fact's
``at``), keyed by the event's id, so handling an event again adds nothing. Then the service's unbilled usage
from ``at`` on is reassessed (``services.reassess_service``): usage that arrived before usage learnt of the
activation leaves the review queue and is rated; rated usage that falls in a suspension or after the
termination goes to review. Handlers use the worker's session and never commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from turnup import accounts
from turnup.kernel.consumers import Event, consumer
from turnup.usage.orm import UsageService, UsageServiceChange
from turnup.usage.services import reassess_service

SERVICE_EVENTS = (
    "ServiceActivatedEvent",
    "ServiceSuspendedEvent",
    "ServiceResumedEvent",
    "ServiceTerminatedEvent",
)
STATES = ("active", "inactive", "terminated")


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) and value else None


@consumer("usage.service_periods", events=list(SERVICE_EVENTS))
def service_periods(session: Session, event: Event) -> None:
    """Record the service's state change and reassess its unbilled usage from then on."""
    fact = event.resource
    service_id = str(fact.get("serviceId") or event.resource_id)
    state = fact.get("state")
    if state not in STATES:
        return
    if session.get(UsageServiceChange, event.id) is not None:
        return  # handled before
    at = _when(fact.get("at")) or event.event_time
    service = session.get(UsageService, service_id, with_for_update=True)
    customer_id = fact.get("customerId")
    if service is None:
        customer = accounts.find_customer(session, str(customer_id)) if customer_id else None
        service = UsageService(
            service_id=service_id,
            customer_id=str(customer_id) if customer_id else None,
            billing_account_id=customer.billing_account_id if customer else None,
            offering_id=fact.get("productOfferingId"),
        )
        session.add(service)
    elif fact.get("productOfferingId"):
        service.offering_id = str(fact["productOfferingId"])
    session.flush()
    position = (
        session.scalar(
            select(func.max(UsageServiceChange.position)).where(UsageServiceChange.service_id == service_id)
        )
        or 0
    ) + 1
    session.add(
        UsageServiceChange(
            event_id=event.id, service_id=service_id, position=position, at=at, state=str(state)
        )
    )
    session.flush()
    reassess_service(session, service_id, at, f"{event.event_type} {event.id}")
