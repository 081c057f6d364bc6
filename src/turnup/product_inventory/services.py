"""TMF637 product inventory, derived from what orders and the service inventory already record (no table).

A product is an ``add`` product order item; its realising services are the services the item's plan
activates (``order_plan_item`` rows of kind serviceActivation). Its status follows those services
(TMF637 ProductStatusType subset):

- ``created`` while any live service is still designed/reserved (the order is being delivered);
- ``active`` when every live service is active (``startDate``: the earliest activation);
- ``suspended`` when every live service is inactive (suspended);
- ``terminated`` when all services are terminated after one was active (``terminationDate``: the latest
  termination), ``cancelled`` when none ever was (order cancelled, aborted, skipped).

Events (same transaction as the change): ``ProductCreateEvent`` at acceptance, ``ProductStateChangeEvent``
when a service change changes the product's status, ``ProductAttributeValueChangeEvent`` on a move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.kernel.outbox import publish
from turnup.ordering.orm import PlanItem, ProductOrder, ProductOrderItem
from turnup.service_inventory.orm import Service, ServiceOrderHistory

API = "productInventory"


@dataclass
class ProductView:
    item: ProductOrderItem
    order: ProductOrder
    services: list[Service]

    @property
    def status(self) -> str:
        return derive_status([(s.state, s.activation_date) for s in self.services])

    @property
    def start_date(self) -> datetime | None:
        dates = [s.activation_date for s in self.services if s.activation_date is not None]
        return min(dates) if dates else None

    @property
    def termination_date(self) -> datetime | None:
        if not self.services or any(s.state != "terminated" for s in self.services):
            return None
        dates = [s.termination_date for s in self.services if s.termination_date is not None]
        return max(dates) if dates else None

    @property
    def site_id(self) -> str | None:
        live = [s.site_id for s in self.services if s.state != "terminated" and s.site_id]
        return live[0] if live else next((s.site_id for s in self.services if s.site_id), None)


def derive_status(services: list[tuple[str, datetime | None]]) -> str:
    live = [state for state, _ in services if state != "terminated"]
    if not live:
        return "terminated" if any(activated for _, activated in services) else "cancelled"
    if any(state in ("designed", "reserved") for state in live):
        return "created"
    if all(state == "inactive" for state in live):
        return "suspended"
    return "active"


def services_of(session: Session, order_item_id: str) -> list[Service]:
    ids = session.scalars(
        select(PlanItem.service_id)
        .where(
            PlanItem.order_item_id == order_item_id,
            PlanItem.kind == "serviceActivation",
            PlanItem.action == "add",
        )
        .order_by(PlanItem.position)
    ).all()
    found = [session.get(Service, sid) for sid in dict.fromkeys(ids)]
    return [s for s in found if s is not None]


def view(session: Session, item: ProductOrderItem) -> ProductView:
    order = session.get(ProductOrder, item.order_id)
    assert order is not None
    return ProductView(item=item, order=order, services=services_of(session, item.id))


def get_product(session: Session, product_id: str) -> ProductView | None:
    item = session.get(ProductOrderItem, product_id)
    if item is None or item.action != "add":
        return None
    return view(session, item)


def products_select() -> Any:
    return (
        select(ProductOrderItem)
        .join(ProductOrder, ProductOrder.id == ProductOrderItem.order_id)
        .where(ProductOrderItem.action == "add")
    )


def announce_created(session: Session, item: ProductOrderItem) -> None:
    from turnup.product_inventory.render import render_product

    session.flush()
    publish(
        session,
        api=API,
        event_type="ProductCreateEvent",
        resource_type="product",
        resource=render_product(view(session, item)),
    )


def product_item_of_service(session: Session, service_id: str) -> ProductOrderItem | None:
    """The product a service realises: the order item whose plan added the service."""
    item_id = session.scalar(
        select(ServiceOrderHistory.order_item_id)
        .where(ServiceOrderHistory.service_id == service_id, ServiceOrderHistory.action == "add")
        .limit(1)
    )
    if item_id is None:
        return None
    item = session.get(ProductOrderItem, item_id)
    return item if item is not None and item.action == "add" else None


def follow_service(
    session: Session,
    service: Service,
    previous_state: str | None = None,
    previous_activation: datetime | None = None,
    *,
    moved: bool = False,
) -> None:
    """After ``service`` changed (state, or site when ``moved``): publish the product's change, if any."""
    from turnup.product_inventory.render import render_product

    item = product_item_of_service(session, service.id)
    if item is None:
        return
    current = view(session, item)
    if previous_state is not None:
        before = derive_status(
            [
                (previous_state, previous_activation) if s.id == service.id else (s.state, s.activation_date)
                for s in current.services
            ]
        )
        if before != current.status:
            publish(
                session,
                api=API,
                event_type="ProductStateChangeEvent",
                resource_type="product",
                resource=render_product(current),
            )
    if moved:
        publish(
            session,
            api=API,
            event_type="ProductAttributeValueChangeEvent",
            resource_type="product",
            resource=render_product(current),
        )
