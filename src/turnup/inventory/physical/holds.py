"""Stock holds as other features see them: a command that holds stock inside the caller's transaction and
returns a plain read model, and queries that answer without handing out ORM rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.inventory.physical.orm import Location, Reservation
from turnup.inventory.physical.render import effective_status
from turnup.inventory.physical.reservations import STOCK_HOLDING, create_reservation
from turnup.inventory.physical.schemas import LineRequest, ReservationCreate
from turnup.kernel import clock


@dataclass(frozen=True)
class HeldStockLine:
    line_no: int  # index of the request line it came from
    sku: str
    quantity: int
    location: str


@dataclass(frozen=True)
class StockHold:
    id: str
    lines: tuple[HeldStockLine, ...]


def hold_stock(
    session: Session,
    lines: Sequence[LineRequest],
    *,
    expires_at: datetime,
    customer_id: str | None,
    quote_id: str | None,
    actor: str,
) -> StockHold:
    """Hold every line or none (``Conflict`` lists each short line); no commit."""
    view = create_reservation(
        session,
        ReservationCreate(lines=list(lines), expiresAt=expires_at, customerId=customer_id, quoteId=quote_id),
        actor,
        commit=False,
    )
    return StockHold(
        view.id,
        tuple(
            HeldStockLine(lv.line.line_no, lv.sku_code, lv.line.quantity, lv.location_code)
            for lv in view.lines
        ),
    )


def stock_regions(session: Session) -> set[str]:
    """Every region that has a stock-holding location."""
    return set(
        session.scalars(
            select(Location.region)
            .where(Location.location_type.in_(STOCK_HOLDING), Location.region.is_not(None))
            .distinct()
        )
    )


@dataclass(frozen=True)
class StockHoldFacts:
    """What an order needs to know about a stock hold it cites: its status as of now (a held one past its
    expiry is ``expired``), whom it is held for, and the order it is committed to."""

    status: str  # held | committed | released | expired
    customer_id: str | None
    order_id: str | None


def stock_hold_facts(
    session: Session, reservation_id: str, now: datetime | None = None
) -> StockHoldFacts | None:
    """The stock hold's facts as stored now, or None when there is no such hold."""
    row = session.get(Reservation, reservation_id, populate_existing=True)
    if row is None:
        return None
    return StockHoldFacts(
        effective_status(row.status, row.expires_at, now or clock.now()), row.customer_id, row.order_id
    )


def stock_hold_status(session: Session, reservation_id: str, now: datetime | None = None) -> str:
    """A stock hold's status as of ``now`` (a held one past its expiry is ``expired``), or ``missing``."""
    row = session.get(Reservation, reservation_id, populate_existing=True)
    if row is None:
        return "missing"
    return effective_status(row.status, row.expires_at, now or clock.now())
