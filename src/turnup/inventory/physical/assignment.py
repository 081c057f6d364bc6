"""Commands other features use to assign stock to an order's service and give it back.

The stock rows (reservations, allocations) belong to physical inventory and change only here. Every
command runs in the caller's transaction and never commits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.inventory.physical import reservations as physical
from turnup.inventory.physical import services as physical_services
from turnup.inventory.physical.fulfilment import handed_over
from turnup.inventory.physical.orm import Allocation
from turnup.inventory.physical.orm import Reservation as StockReservation
from turnup.kernel.errors import Conflict


def release_stock_if_held(session: Session, reservation_id: str, actor: str) -> bool:
    """Release a stock reservation that is still ``held``; False (nothing done) otherwise."""
    stock = session.get(StockReservation, reservation_id)
    if stock is None or stock.status != "held":
        return False
    physical.release_reservation(session, reservation_id, actor, commit=False)
    return True


def commit_stock_for_order(session: Session, reservation_id: str, *, order_id: str, actor: str) -> str | None:
    """Commit a live stock hold for ``order_id`` (idempotent: one already committed for it is accepted);
    return the id of its allocation. Missing, released or expired holds are a ``Conflict``."""
    stock = session.get(StockReservation, reservation_id)
    if stock is None:
        raise Conflict(f"reserveProductStock {reservation_id} not found", reason="Reservation lost")
    if stock.status == "held":
        physical.commit_reservation(session, reservation_id, order_id, actor, commit=False)
    elif not (stock.status == "committed" and stock.order_id == order_id):
        raise Conflict(f"reserveProductStock {reservation_id} is {stock.status}", reason="Reservation lost")
    allocation = session.scalar(select(Allocation).where(Allocation.reservation_id == reservation_id))
    return allocation.id if allocation else None


def return_allocation(session: Session, allocation_id: str, actor: str) -> str:
    """Give back stock allocated to a service that ends: ``returnedToStock`` when never dispatched (its
    stock is available again), ``dispatched`` when its units are out there (they come back through a CPE
    return), ``notHeld`` otherwise."""
    allocation = session.get(Allocation, allocation_id)
    if allocation is not None and allocation.status == "active":
        # what was not handed over goes back to stock; handed-over lines stay out (CPE return)
        partly_out = handed_over(session, allocation_id)
        physical_services.cancel_allocation(session, allocation_id, actor, commit=False)
        return "dispatched" if partly_out else "returnedToStock"
    if allocation is not None and allocation.status in ("shipped", "issued"):
        return "dispatched"
    return "notHeld"
