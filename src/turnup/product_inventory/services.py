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

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from turnup import ordering, service_inventory
from turnup.ordering import OrderedProduct
from turnup.service_inventory import ServiceView

API = "productInventory"


@dataclass
class ProductView:
    product: OrderedProduct
    services: list[ServiceView]

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


def view(session: Session, product: OrderedProduct) -> ProductView:
    return ProductView(
        product=product, services=service_inventory.service_views(session, product.service_ids)
    )


def get_product(session: Session, product_id: str) -> ProductView | None:
    """The product with this id (an ``add`` order item's id), or None."""
    product = ordering.ordered_product(session, product_id)
    return view(session, product) if product is not None else None


def products_select() -> Select[Any]:
    """What lists products: the ``add`` order items (rendered with ``render.render_item``)."""
    return ordering.product_items_select()
