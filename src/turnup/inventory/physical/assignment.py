"""Commands other features use to assign stock to an order's service and give it back.

The stock rows (reservations, allocations) belong to physical inventory and change only here. Every
command runs in the caller's transaction and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.inventory.physical import reservations as physical
from turnup.inventory.physical import services as physical_services
from turnup.inventory.physical.fulfilment import handed_over
from turnup.inventory.physical.orm import Allocation, ReservationLine, Sku
from turnup.inventory.physical.orm import Reservation as StockReservation
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict
from turnup.kernel.ids import new_id


@dataclass(frozen=True)
class AllocatedStock:
    """An allocation holding some lines of a committed reservation: its id, fulfilment method and what it
    holds (SKU code -> quantity, in line order)."""

    id: str
    fulfilment_method: str | None
    items: tuple[tuple[str, int], ...]


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
    allocation = session.scalars(
        select(Allocation)
        .where(Allocation.reservation_id == reservation_id)
        .order_by(Allocation.created_at, Allocation.id)
    ).first()
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


def allocate_lines(
    session: Session,
    reservation_id: str,
    line_nos: list[int] | None,
    *,
    order_id: str,
    fulfilment_method: str | None,
    actor: str,
) -> AllocatedStock:
    """The allocation of exactly the request lines ``line_nos`` (None: all) of a stock reservation
    committed for ``order_id`` (committed first when still held): the order's allocation split per service
    and fulfilment method. When the lines share their allocation with others, they move to a new allocation
    (same status, same order); when they are all its lines, that allocation is theirs. Idempotent: asked
    again, the same allocation is answered. Stock levels and the ledger do not change (the stock stays
    allocated). A line that is not committed for the order is a ``Conflict``."""
    commit_stock_for_order(session, reservation_id, order_id=order_id, actor=actor)
    allocations = list(
        session.scalars(
            select(Allocation)
            .where(Allocation.reservation_id == reservation_id)
            .order_by(Allocation.id)
            .with_for_update()
        )
    )
    lines = list(
        session.scalars(
            select(ReservationLine)
            .where(ReservationLine.reservation_id == reservation_id)
            .order_by(ReservationLine.line_no, ReservationLine.id)
        )
    )
    wanted = sorted({ln.line_no for ln in lines} if line_nos is None else set(line_nos))
    mine = [ln for ln in lines if ln.line_no in wanted]
    if sorted({ln.line_no for ln in mine}) != wanted:
        missing = sorted(set(wanted) - {ln.line_no for ln in mine})
        raise Conflict(
            f"reserveProductStock {reservation_id}: no line {missing[0]}", reason="Reservation lost"
        )
    holders = {ln.allocation_id for ln in mine}
    if len(holders) != 1 or None in holders:
        raise Conflict(
            f"reserveProductStock {reservation_id}: lines {wanted} are not held by one allocation",
            reason="Reservation lost",
        )
    holder_id = next(iter(holders))
    holder = next((a for a in allocations if a.id == holder_id), None)
    assert holder is not None
    now = clock.now()
    others = [ln for ln in lines if ln.allocation_id == holder_id and ln.line_no not in wanted]
    if not others:
        target = holder
        if fulfilment_method and target.fulfilment_method != fulfilment_method:
            target.fulfilment_method, target.updated_at = fulfilment_method, now
    else:
        target = Allocation(
            id=new_id(),
            reservation_id=reservation_id,
            order_id=holder.order_id,
            status=holder.status,
            fulfilment_method=fulfilment_method,
            created_at=now,
            updated_at=now,
        )
        session.add(target)
        session.flush()
        for ln in mine:
            ln.allocation_id = target.id
        audit.record(
            session,
            actor=actor,
            action="stock.allocation.split",
            resource_type="allocation",
            resource_id=target.id,
            details={"from": holder_id, "reservationId": reservation_id, "lines": wanted},
        )
    codes = {
        sku_id: code
        for sku_id, code in session.execute(
            select(Sku.id, Sku.code).where(Sku.id.in_({ln.sku_id for ln in mine}))
        )
    }
    items: dict[str, int] = {}
    for ln in sorted(mine, key=lambda ln: (ln.line_no, ln.id)):
        items[codes[ln.sku_id]] = items.get(codes[ln.sku_id], 0) + ln.quantity
    session.flush()
    return AllocatedStock(target.id, target.fulfilment_method, tuple(items.items()))
