"""What other features may read of orders, as plain data: the products orders create and the services
their plans realise them with, and whether an unfinished order is working on a service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, lazyload

from turnup.ordering.model import FINAL
from turnup.ordering.orm import PlanItem, ProductOrder, ProductOrderItem


@dataclass(frozen=True)
class OrderedProduct:
    """An ``add`` order item: the product (TMF637) it creates. ``id`` is the order item's id."""

    id: str
    item_ref: str
    order_id: str
    order_date: datetime
    customer_id: str
    quantity: int
    offering_id: str
    offering_name: str
    service_ids: tuple[str, ...]  # the services its plan adds, in plan order


def _service_ids(session: Session, order_item_id: str) -> tuple[str, ...]:
    ids = session.scalars(
        select(PlanItem.service_id)
        .where(
            PlanItem.order_item_id == order_item_id,
            PlanItem.kind == "serviceActivation",
            PlanItem.action == "add",
        )
        .order_by(PlanItem.position)
    ).all()
    return tuple(dict.fromkeys(ids))


def _product(session: Session, item: ProductOrderItem) -> OrderedProduct:
    order = session.get(ProductOrder, item.order_id, options=[lazyload(ProductOrder.items)])
    assert order is not None
    return OrderedProduct(
        id=item.id,
        item_ref=item.item_ref,
        order_id=order.id,
        order_date=order.order_date,
        customer_id=order.customer_id,
        quantity=item.quantity,
        offering_id=item.offering_id,
        offering_name=item.offering_name,
        service_ids=_service_ids(session, item.id),
    )


def ordered_product(session: Session, item_id: str) -> OrderedProduct | None:
    """The product an ``add`` order item creates, or None (unknown id, or not an ``add`` item)."""
    item = session.get(ProductOrderItem, item_id)
    if item is None or item.action != "add":
        return None
    return _product(session, item)


def ordered_products(session: Session, order_id: str) -> list[OrderedProduct]:
    """The products an order creates (its ``add`` items), in item order."""
    items = session.scalars(
        select(ProductOrderItem)
        .where(ProductOrderItem.order_id == order_id, ProductOrderItem.action == "add")
        .order_by(ProductOrderItem.position)
    ).all()
    return [_product(session, item) for item in items]


def product_of_service(session: Session, service_id: str) -> str | None:
    """The id of the product (``add`` order item) whose plan added the service, or None."""
    return session.scalar(
        select(PlanItem.order_item_id)
        .join(ProductOrderItem, ProductOrderItem.id == PlanItem.order_item_id)
        .where(
            PlanItem.service_id == service_id,
            PlanItem.kind == "serviceActivation",
            PlanItem.action == "add",
            ProductOrderItem.action == "add",
        )
        .limit(1)
    )


def product_items_select() -> Select[Any]:
    """``add`` order items joined to their orders (for listing products with TMF filters)."""
    return (
        select(ProductOrderItem)
        .join(ProductOrder, ProductOrder.id == ProductOrderItem.order_id)
        .where(ProductOrderItem.action == "add")
    )


def open_order_for_service(session: Session, service_id: str) -> str | None:
    """The id of an unfinished order whose plan names the service, or None."""
    return session.scalar(
        select(PlanItem.order_id)
        .join(ProductOrder, ProductOrder.id == PlanItem.order_id)
        .where(PlanItem.service_id == service_id, ProductOrder.state.not_in(sorted(FINAL)))
        .limit(1)
    )


def find_orders(
    session: Session,
    *,
    state: str | None = None,
    customer_id: str | None = None,
    offering_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ProductOrder]:
    """Orders newest first (by order date, then id), optionally of one state / customer / offering."""
    stmt = select(ProductOrder).order_by(ProductOrder.order_date.desc(), ProductOrder.id)
    if state:
        stmt = stmt.where(ProductOrder.state == state)
    if customer_id:
        stmt = stmt.where(ProductOrder.customer_id == customer_id)
    if offering_id:
        stmt = stmt.where(
            ProductOrder.id.in_(
                select(ProductOrderItem.order_id).where(ProductOrderItem.offering_id == offering_id)
            )
        )
    return list(session.scalars(stmt.limit(limit).offset(offset)))
