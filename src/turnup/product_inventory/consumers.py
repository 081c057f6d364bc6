"""How product inventory follows orders and services: durable consumers of their events.

- ``product_inventory.announce_products`` (``ProductOrderCreateEvent``): a ``ProductCreateEvent`` for each
  product a new order creates.
- ``product_inventory.follow_services`` (the internal delivery events of ``turnup.service_inventory``):
  a ``ProductStateChangeEvent`` when a service's change changes its product's status, and a
  ``ProductAttributeValueChangeEvent`` when a service moves. The event carries the service's state before
  and after the change, so the product's status before and after is derived as of the event, even when
  the consumer runs later.

Handlers use the worker's session and never commit (``turnup.kernel.consumers``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from turnup import ordering
from turnup.kernel.consumers import Event, consumer
from turnup.kernel.outbox import publish
from turnup.product_inventory.render import render_product
from turnup.product_inventory.services import API, ProductView, derive_status, view

SERVICE_EVENTS = (
    "ServiceActivatedEvent",
    "ServiceResumedEvent",
    "ServiceSuspendedEvent",
    "ServiceTerminatedEvent",
    "ServiceMovedEvent",
)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) and value else None


def _publish(session: Session, event_type: str, product: ProductView) -> None:
    publish(
        session, api=API, event_type=event_type, resource_type="product", resource=render_product(product)
    )


@consumer("product_inventory.announce_products", events=["ProductOrderCreateEvent"])
def announce_products(session: Session, event: Event) -> None:
    """Announce the products a new order creates (ProductCreateEvent)."""
    for product in ordering.ordered_products(session, event.resource_id):
        _publish(session, "ProductCreateEvent", view(session, product))


@consumer("product_inventory.follow_services", events=SERVICE_EVENTS)
def follow_services(session: Session, event: Event) -> None:
    """Publish a product's status change (or move) caused by a change of one of its services."""
    fact = event.resource
    service_id = str(fact.get("serviceId") or event.resource_id)
    product_id = ordering.product_of_service(session, service_id)
    product = ordering.ordered_product(session, product_id) if product_id else None
    if product is None:
        return  # not realising a product (e.g. a service created through TMF640)
    current = view(session, product)
    services = []
    for s in current.services:  # the changed service as this event saw it; the others as they are now
        if s.id == service_id:
            s = replace(
                s,
                state=str(fact.get("state") or s.state),
                activation_date=_when(fact.get("activationDate")),
                termination_date=_when(fact.get("terminationDate")),
                site_id=fact["siteId"] if event.event_type == "ServiceMovedEvent" else s.site_id,
            )
        services.append(s)
    after = ProductView(product=product, services=services)
    if event.event_type == "ServiceMovedEvent":
        _publish(session, "ProductAttributeValueChangeEvent", after)
        return
    previous_state = fact.get("previousState")
    before = derive_status(
        [
            (str(previous_state), _when(fact.get("previousActivationDate")))
            if s.id == service_id and previous_state
            else (s.state, s.activation_date)
            for s in services
        ]
    )
    if before != after.status:
        _publish(session, "ProductStateChangeEvent", after)
