"""TMF637 product inventory, derived from what orders and the service inventory already record (no table).

A product is an ``add`` product order item; its realising services are the services the item's plan
activates. Both are read through the faces of ``turnup.ordering`` and ``turnup.service_inventory``. Its
status follows those services (TMF637 ProductStatusType subset):

- ``created`` while any live service is still designed/reserved (the order is being delivered);
- ``active`` when every live service is active (``startDate``: the earliest activation);
- ``suspended`` when every live service is inactive (suspended);
- ``terminated`` when all services are terminated after one was active (``terminationDate``: the latest
  termination), ``cancelled`` when none ever was (order cancelled, aborted, skipped).

Events are published by the consumers in ``turnup.product_inventory.consumers`` (product inventory follows
orders and services through their events; nobody calls it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from turnup import catalog, ordering, service_inventory
from turnup.ordering import OrderedProduct
from turnup.service_inventory import ServiceView

API = "productInventory"


@dataclass
class ProductView:
    """A product and its realising services; a bundle's product also its child products (one per bundle
    member of the offering, each realised by the services of that member's specifications)."""

    product: OrderedProduct
    services: list[ServiceView]
    children: list[ProductView] = field(default_factory=list)
    parent_id: str | None = None  # a child product: the bundle product it belongs to
    is_bundle: bool = False

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
    """A product's status from its services' (state, activation date)."""
    live = [state for state, _ in services if state != "terminated"]
    if not live:
        return "terminated" if any(activated for _, activated in services) else "cancelled"
    if any(state in ("designed", "reserved") for state in live):
        return "created"
    if all(state == "inactive" for state in live):
        return "suspended"
    return "active"


CHILD_SEPARATOR = "-"  # a child product's id: ``<bundle product id>-<member number (1-based)>``


def view(session: Session, product: OrderedProduct) -> ProductView:
    """The product as derived now; for a bundle offering, with a child product per bundle member."""
    services = service_inventory.service_views(session, product.service_ids)
    members = catalog.bundle_members_of(session, product.offering_id)
    if not members:
        return ProductView(product=product, services=services)
    children = []
    for number, member in enumerate(members, start=1):
        mine = [s for s in services if s.specification_id in member.specification_ids]
        child = replace(
            product,
            id=f"{product.id}{CHILD_SEPARATOR}{number}",
            offering_id=member.id,
            offering_name=member.name,
            service_ids=tuple(s.id for s in mine),
        )
        children.append(
            ProductView(product=child, services=mine, parent_id=product.id, is_bundle=bool(member.members))
        )
    return ProductView(product=product, services=services, children=children, is_bundle=True)


def get_product(session: Session, product_id: str) -> ProductView | None:
    """The product with this id (an ``add`` order item's id, or a bundle's child product), or None."""
    product = ordering.ordered_product(session, product_id)
    if product is not None:
        return view(session, product)
    parent_id, _, number = product_id.rpartition(CHILD_SEPARATOR)
    if not parent_id or not number.isdigit():
        return None
    parent = ordering.ordered_product(session, parent_id)
    if parent is None:
        return None
    children = view(session, parent).children
    return children[int(number) - 1] if 1 <= int(number) <= len(children) else None


def products_select() -> Select[Any]:
    """What lists products: the ``add`` order items (rendered with ``render.render_item``)."""
    return ordering.product_items_select()
