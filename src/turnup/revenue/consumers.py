"""Revenue recognition's durable consumers (``turnup.kernel.consumers``; handlers never commit).

- ``revenue.contracts`` (``ProductOrderCreateEvent``): the order's revenue contract — obligations segmented
  and the transaction price allocated (``contracts.ensure_contract``; a missing SSP leaves it in review).
- ``revenue.earned_triggers`` (the delivery events and ``ProductOrderMilestoneEvent``): activation starts
  ratable schedules, termination stops them, a priced change is a prospective modification, hand-over /
  installation recognise at a point in time, ``milestoneAccepted`` moves professional services by percent
  complete (``services``).

Both are idempotent under redelivery: one contract per order, obligations move only from the state the
event expects, journal entries and schedule lines carry unique references.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from turnup.kernel.consumers import Event, consumer
from turnup.revenue import services
from turnup.revenue.contracts import ensure_contract


@consumer("revenue.contracts", events=["ProductOrderCreateEvent"])
def open_contract(session: Session, event: Event) -> None:
    """Create the order's revenue contract (nothing for an order that adds nothing)."""
    order_id = str(event.resource.get("id") or event.resource_id)
    ensure_contract(session, order_id)


@consumer(
    "revenue.earned_triggers",
    events=[
        "ServiceActivatedEvent",
        "ServiceTerminatedEvent",
        "ServiceModifiedEvent",
        "ProductOrderMilestoneEvent",
    ],
)
def earned_triggers(session: Session, event: Event) -> None:
    """Start, stop or recognise what a delivery fact earns."""
    if event.event_type == "ServiceActivatedEvent":
        services.service_activated(session, event.resource, event.event_time, event.id)
    elif event.event_type == "ServiceModifiedEvent":
        services.service_modified(session, event.resource, event.event_time, event.id)
    elif event.event_type == "ServiceTerminatedEvent":
        services.service_terminated(session, event.resource, event.event_time, event.id)
    elif event.event_type == "ProductOrderMilestoneEvent":
        services.order_milestone(session, event.resource, event.event_time, event.id)
