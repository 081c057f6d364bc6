"""Service inventory changes. These run inside the caller's transaction (an order step); they never commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from turnup.inventory import logical, physical
from turnup.kernel import audit, clock
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


@dataclass(frozen=True)
class ServiceView:
    """What other features may read of a service (plain data)."""

    id: str
    name: str
    state: str
    customer_id: str
    site_id: str | None
    offering_id: str
    activation_date: datetime | None
    termination_date: datetime | None
    specification_id: str | None = None


def _view(s: Service) -> ServiceView:
    return ServiceView(
        id=s.id,
        name=s.name,
        state=s.state,
        customer_id=s.customer_id,
        site_id=s.site_id,
        offering_id=s.offering_id,
        activation_date=s.activation_date,
        termination_date=s.termination_date,
        specification_id=s.specification_id,
    )


def service_views(session: Session, service_ids: Iterable[str]) -> list[ServiceView]:
    """The services with these ids, in the order given (unknown ids are left out)."""
    ids = list(dict.fromkeys(service_ids))
    stmt = select(Service).where(Service.id.in_(ids)).options(lazyload(Service.history))  # not needed here
    found = {s.id: s for s in session.scalars(stmt)} if ids else {}
    return [_view(found[i]) for i in ids if i in found]


def get_service(session: Session, service_id: str) -> Service:
    """The service, or ``NotFound``."""
    # the history is read when rendered, not with every read of the service (most callers change its state)
    service = session.get(Service, service_id, options=[lazyload(Service.history)])
    if service is None:
        raise NotFound(f"service {service_id!r} not found")
    return service


def lock_service(session: Session, service_id: str) -> Service | None:
    """The service locked (``FOR UPDATE``) and freshly read, or None."""
    return session.get(
        Service,
        service_id,
        with_for_update=True,
        populate_existing=True,
        options=[lazyload(Service.history)],
    )


def design_service(
    session: Session,
    *,
    service_id: str,
    name: str,
    customer_id: str,
    offering_id: str,
    offering_name: str,
    specification_id: str | None,
    adapter: str,
    characteristics: dict[str, Any],
    order_id: str,
    order_item_id: str,
    site_id: str | None = None,
) -> Service:
    now = clock.now()
    service = Service(
        id=service_id,
        name=name,
        state="designed",
        customer_id=customer_id,
        site_id=site_id,
        offering_id=offering_id,
        offering_name=offering_name,
        specification_id=specification_id,
        adapter=adapter,
        characteristics=characteristics,
        resources=[],
        created_at=now,
        updated_at=now,
    )
    session.add(service)
    session.add(
        ServiceOrderHistory(
            id=new_id(),
            service_id=service_id,
            order_id=order_id,
            order_item_id=order_item_id,
            action="add",
            state="designed",
            at=now,
        )
    )
    return service


def change_state(
    session: Session,
    service: Service,
    new_state: str,
    *,
    order_id: str,
    order_item_id: str,
    action: str,
    network_ref: str | None = None,
) -> None:
    """Move a service to a new state, record the order in its history, publish the events."""
    if new_state not in TRANSITIONS[service.state]:
        raise Conflict(
            f"service {service.id}: a {service.state} service cannot become {new_state}",
            reason="Illegal state transition",
        )
    now = clock.now()
    previous_state, previous_activation = service.state, service.activation_date
    service.state = new_state
    service.updated_at = now
    if network_ref is not None:
        service.network_ref = network_ref
    if new_state == "active" and service.activation_date is None:
        service.activation_date = now
    if new_state == "terminated":
        service.termination_date = now
    session.add(
        ServiceOrderHistory(
            id=new_id(),
            service_id=service.id,
            order_id=order_id,
            order_item_id=order_item_id,
            action=action,
            state=new_state,
            at=now,
        )
    )
    session.flush()
    session.expire(service, ["history"])
    publish(
        session,
        api=API,
        event_type="ServiceStateChangeEvent",
        resource_type="service",
        resource=render_service(service),
    )
    internal = {
        "active": "ServiceResumedEvent" if action == "resume" else "ServiceActivatedEvent",
        "inactive": "ServiceSuspendedEvent",
        "terminated": "ServiceTerminatedEvent",
    }.get(new_state)
    if internal:
        publish(
            session,
            api=DELIVERY_API,
            event_type=internal,
            resource_type="serviceDelivery",
            resource=_delivery_fact(service, now, order_id, order_item_id)
            | {"previousState": previous_state, "previousActivationDate": iso(previous_activation)},
        )


def modify_characteristics(
    session: Session,
    service: Service,
    changes: dict[str, Any],
    *,
    order_id: str,
    order_item_id: str,
    action: str = "modify",
) -> None:
    """Change an active service's characteristics (bandwidth, seats…); history, TMF and billing events."""
    if service.state != "active":
        raise Conflict(
            f"service {service.id}: a {service.state} service cannot be modified",
            reason="Illegal state transition",
        )
    now = clock.now()
    before = dict(service.characteristics)
    service.characteristics = {**before, **changes}
    service.updated_at = now
    session.add(
        ServiceOrderHistory(
            id=new_id(),
            service_id=service.id,
            order_id=order_id,
            order_item_id=order_item_id,
            action=action,
            state=service.state,
            at=now,
        )
    )
    session.flush()
    session.expire(service, ["history"])
    publish(
        session,
        api=API,
        event_type="ServiceAttributeValueChangeEvent",
        resource_type="service",
        resource=render_service(service),
    )
    publish(
        session,
        api=DELIVERY_API,
        event_type="ServiceModifiedEvent",
        resource_type="serviceDelivery",
        resource=_delivery_fact(service, now, order_id, order_item_id)
        | {"changes": changes, "previous": {k: before.get(k) for k in changes}},
    )


def release_resources(
    session: Session, service: Service, *, order_id: str, order_item_id: str, actor: str
) -> list[dict[str, Any]]:
    """On disconnect: give back what the service carries (``service.resources`` entries).

    - logical blocks (``{"resourceType": "logicalResource", "id": <block id>}``: IP prefixes, VLANs, ASNs,
      identifiers) go into their pool's quarantine (or straight back to free when the pool has none);
    - telephone numbers (``{"resourceType": "telephoneNumber", "id": <number id>}``) start aging for their
      number class's period;
    - a logical reservation still held (``{"resourceType": "resourceReservation", "id": …}``) is released;
    - a stock allocation (``{"resourceType": "physicalAllocation", "id": …}``) not yet dispatched is
      cancelled: its stock is available again; a dispatched one joins the CPE return below;
    - physical units (``{"resourceType": "physicalResource", "serial": …, "sku": …}``) stay where they are and
      a ``CpeReturnRequestedEvent`` (internal delivery API) asks logistics to collect them.

    Runs in the caller's transaction (never commits); returns what happened to each entry.
    """
    now = clock.now()
    outcome: list[dict[str, Any]] = []
    units: list[dict[str, Any]] = []
    for entry in service.resources or []:
        kind, rid = entry.get("resourceType"), entry.get("id")
        if kind == "logicalResource" and rid:
            outcome.append(logical.release_block(session, rid, service.id))
        elif kind == "telephoneNumber" and rid:
            outcome.append(logical.age_number(session, rid))
        elif kind == "resourceReservation" and rid:
            released = logical.release_reservation_if_held(session, rid, actor)
            outcome.append({"id": rid, "result": "released" if released else "notHeld"})
        elif kind == "physicalAllocation" and rid:
            # stock allocated to the order but never dispatched goes straight back to stock; dispatched
            # units are out there and come back through a CPE return
            result = physical.return_allocation(session, rid, actor)
            if result == "dispatched":
                units.append({"allocationId": rid, "reservationId": entry.get("reservationId")})
            else:
                outcome.append({"id": rid, "result": result})
        elif kind == "physicalResource":
            units.append(
                {k: entry.get(k) for k in ("id", "serial", "sku", "name") if entry.get(k) is not None}
            )
    if units:
        publish(
            session,
            api=DELIVERY_API,
            event_type="CpeReturnRequestedEvent",
            resource_type="cpeReturn",
            resource={
                "id": f"{service.id}-return",
                "serviceId": service.id,
                "customerId": service.customer_id,
                "siteId": service.site_id,
                "units": units,
                "requestedAt": iso(now),
                "productOrderId": order_id,
                "productOrderItemId": order_item_id,
            },
        )
        outcome.extend({"serial": u.get("serial"), "result": "returnRequested"} for u in units)
    if outcome:
        audit.record(
            session,
            actor=actor,
            action="service.releaseResources",
            resource_type="service",
            resource_id=service.id,
            details={"orderId": order_id, "resources": outcome},
        )
    return outcome


def _delivery_fact(service: Service, at: datetime, order_id: str, order_item_id: str) -> dict[str, Any]:
    return {
        "id": service.id,
        "serviceId": service.id,
        "state": service.state,
        "at": iso(at),
        "activationDate": iso(service.activation_date),
        "terminationDate": iso(service.termination_date),
        "customerId": service.customer_id,
        "productOfferingId": service.offering_id,
        "productOrderId": order_id,
        "productOrderItemId": order_item_id,
    }


def assign_reservation(
    session: Session,
    service: Service,
    ref: dict[str, Any],
    *,
    order_id: str,
    actor: str,
    lines: list[int] | None = None,
    fulfilment_method: str | None = None,
) -> list[dict[str, Any]]:
    """Assign what a reservation the order carries holds to ``service`` (never commits): all of it, or only
    the reservation's ``lines`` (those the service's component needs; the other lines go to other services).

    - ``ResourceReservation`` (logical): a live hold is committed (to the service, or to the order when only
      some lines are the service's); one the quote already committed to the order
      (``service_id = "order:<order id>"``) has its numbers and blocks (of ``lines``) re-assigned to the
      service. Each number / block becomes a ``service.resources`` entry (``telephoneNumber`` /
      ``logicalResource``), so a disconnect or cancellation releases it (``release_resources``).
    - ``ReserveProductStock`` (physical): a live hold is committed for the order; the allocation holding
      ``lines`` (split off the order's allocation: one per service and fulfilment method) is recorded on
      the service: ``{"resourceType": "physicalAllocation", "id", "reservationId", "fulfilmentMethod",
      "sku", "quantity", "items": [{"sku", "quantity"}]}`` (``sku``/``quantity``: its first SKU).

    Idempotent: assigning again finds the entries recorded. A reservation that is missing, released,
    expired, or committed to something else is a ``Conflict`` naming it.
    """
    rid, kind = str(ref.get("id")), ref.get("@referredType")
    entries: list[dict[str, Any]]
    if kind == "ResourceReservation":
        entries = logical.assign_reservation_to_service(
            session, rid, service_id=service.id, owner=f"order:{order_id}", actor=actor, lines=lines
        )
    elif kind == "ReserveProductStock":
        stock = physical.allocate_lines(
            session, rid, lines, order_id=order_id, fulfilment_method=fulfilment_method, actor=actor
        )
        entries = [
            {
                "resourceType": "physicalAllocation",
                "id": stock.id,
                "reservationId": rid,
                "fulfilmentMethod": stock.fulfilment_method,
                "sku": stock.items[0][0] if stock.items else None,
                "quantity": stock.items[0][1] if stock.items else 0,
                "items": [{"sku": sku, "quantity": quantity} for sku, quantity in stock.items],
            }
        ]
    else:
        raise Conflict(f"reservation {rid}: unknown type {kind!r}", reason="Reservation lost")
    add_resource_entries(session, service, entries)
    audit.record(
        session,
        actor=actor,
        action="service.assignResources",
        resource_type="service",
        resource_id=service.id,
        details={"orderId": order_id, "reservation": ref, "resources": entries},
    )
    return entries


def add_resource_entries(
    session: Session, service: Service, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Add to ``service.resources`` the entries it does not carry yet (same ``resourceType`` and ``id``);
    return those added. Idempotent: an assignment run again adds nothing."""
    known = {(e.get("resourceType"), e.get("id")) for e in service.resources or []}
    new = [e for e in entries if (e.get("resourceType"), e.get("id")) not in known]
    if new:
        service.resources = [*(service.resources or []), *new]
        service.updated_at = clock.now()
        session.flush()
    return new


def move(
    session: Session, service: Service, site_id: str | None, *, phase: str, order_id: str, order_item_id: str
) -> None:
    """A move's step happened in the network (``moveOut``: off the old site; ``moveIn``: on the new one; or
    their undo). The history records it; when ``site_id`` differs from the service's site, the site changes
    and ServiceAttributeValueChangeEvent plus internal ServiceMovedEvent (old and new site) are published.
    The service stays ``active`` throughout (billing sees a move, not a termination)."""
    now = clock.now()
    session.add(
        ServiceOrderHistory(
            id=new_id(),
            service_id=service.id,
            order_id=order_id,
            order_item_id=order_item_id,
            action=phase,
            state=service.state,
            at=now,
        )
    )
    previous = service.site_id
    if site_id != previous:
        service.site_id = site_id
        service.updated_at = now
    session.flush()
    session.expire(service, ["history"])
    if site_id != previous:
        publish(
            session,
            api=API,
            event_type="ServiceAttributeValueChangeEvent",
            resource_type="service",
            resource=render_service(service),
        )
        publish(
            session,
            api=DELIVERY_API,
            event_type="ServiceMovedEvent",
            resource_type="serviceDelivery",
            resource=_delivery_fact(service, now, order_id, order_item_id)
            | {"siteId": site_id, "previousSiteId": previous},
        )
