"""How physical inventory follows services: CPE returns.

- ``physical_inventory.cpe_returns`` (``CpeReturnRequestedEvent``, published by service inventory when a
  service carrying dispatched stock is disconnected): a return expectation for the units out at the
  customer's site (``fulfilment.expect_return``), which ``turnup stock receive-return`` /
  ``POST /tmf-api/stock/v4/stockReturn/{id}/receive`` closes.

Handlers use the worker's session and never commit (``turnup.kernel.consumers``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from turnup.inventory.physical.fulfilment import expect_return
from turnup.kernel.consumers import Event, consumer

ACTOR = "physical_inventory.cpe_returns"


@consumer("physical_inventory.cpe_returns", events=["CpeReturnRequestedEvent"])
def expect_cpe_return(session: Session, event: Event) -> None:
    """Create a return expectation (RMA) for the units a disconnected service leaves at the customer."""
    fact = event.resource
    units = [u for u in fact.get("units") or [] if isinstance(u, dict)]

    def text(key: str) -> str | None:
        value = fact.get(key)
        return str(value) if value else None

    expect_return(
        session,
        source_event_id=event.id,
        reference=text("id"),
        service_id=text("serviceId"),
        customer_id=text("customerId"),
        order_id=text("productOrderId"),
        units=units,
        actor=ACTOR,
    )
