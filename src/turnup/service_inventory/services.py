"""Service inventory changes. These run inside the caller's transaction (an order step); they never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from turnup.kernel import clock
from turnup.kernel.errors import Conflict, NotFound
from turnup.kernel.hrefs import iso
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish
from turnup.service_inventory.orm import Service, ServiceOrderHistory
from turnup.service_inventory.render import API, render_service

DELIVERY_API = "turnupDelivery"  # internal events billing and revenue recognition consume

TRANSITIONS: dict[str, set[str]] = {
    "designed": {"reserved", "active", "terminated"},
    "reserved": {"active", "terminated"},
    "active": {"inactive", "terminated"},
    "inactive": {"active", "terminated"},
    "terminated": set(),
}


def get_service(session: Session, service_id: str) -> Service:
    service = session.get(Service, service_id)
    if service is None:
        raise NotFound(f"service {service_id!r} not found")
    return service


def design_service(session: Session, *, service_id: str, name: str, customer_id: str, offering_id: str,
                   offering_name: str, specification_id: str | None, adapter: str,
                   characteristics: dict[str, Any], order_id: str, order_item_id: str) -> Service:
    now = clock.now()
    service = Service(id=service_id, name=name, state="designed", customer_id=customer_id,
                      offering_id=offering_id, offering_name=offering_name, specification_id=specification_id,
                      adapter=adapter, characteristics=characteristics, resources=[], created_at=now,
                      updated_at=now)
    session.add(service)
    session.add(ServiceOrderHistory(id=new_id(), service_id=service_id, order_id=order_id,
                                    order_item_id=order_item_id, action="add", state="designed", at=now))
    return service


def change_state(session: Session, service: Service, new_state: str, *, order_id: str, order_item_id: str,
                 action: str, network_ref: str | None = None) -> None:
    """Move a service to a new state, record the order in its history, publish the events."""
    if new_state not in TRANSITIONS[service.state]:
        raise Conflict(f"service {service.id}: a {service.state} service cannot become {new_state}",
                       reason="Illegal state transition")
    now = clock.now()
    service.state = new_state
    service.updated_at = now
    if network_ref is not None:
        service.network_ref = network_ref
    if new_state == "active" and service.activation_date is None:
        service.activation_date = now
    if new_state == "terminated":
        service.termination_date = now
    session.add(ServiceOrderHistory(id=new_id(), service_id=service.id, order_id=order_id,
                                    order_item_id=order_item_id, action=action, state=new_state, at=now))
    session.flush()
    session.expire(service, ["history"])
    publish(session, api=API, event_type="ServiceStateChangeEvent", resource_type="service",
            resource=render_service(service))
    internal = {"active": "ServiceActivatedEvent", "inactive": "ServiceSuspendedEvent",
                "terminated": "ServiceTerminatedEvent"}.get(new_state)
    if internal:
        publish(session, api=DELIVERY_API, event_type=internal, resource_type="serviceDelivery",
                resource=_delivery_fact(service, now, order_id, order_item_id))


def _delivery_fact(service: Service, at: datetime, order_id: str, order_item_id: str) -> dict[str, Any]:
    return {"id": service.id, "serviceId": service.id, "state": service.state, "at": iso(at),
            "activationDate": iso(service.activation_date), "terminationDate": iso(service.termination_date),
            "customerId": service.customer_id, "productOfferingId": service.offering_id,
            "productOrderId": order_id, "productOrderItemId": order_item_id}
