"""An order's stock allocation split per service and fulfilment method (``physical.allocate_lines``):
the lines move to their own allocation without touching stock levels (no oversell, no ledger entry),
asking again answers the same allocation (a re-run step finds its work done), and cancelling one split
allocation gives back exactly its lines. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory import physical
from turnup.inventory.physical import LineRequest
from turnup.inventory.physical.orm import Allocation, ReservationLine, StockLevel, StockMovement
from turnup.kernel import clock
from turnup.kernel.errors import Conflict

STOCK = "/tmf-api/stock/v4"


def _seed(client: TestClient) -> None:
    for code in ("ROUTER", "HANDSET"):
        assert client.post(f"{STOCK}/sku", json={"code": code, "name": code}).status_code == 201
    assert (
        client.post(
            f"{STOCK}/location",
            json={"code": "WH", "name": "Warehouse", "locationType": "warehouse", "region": "North"},
        ).status_code
        == 201
    )
    for code in ("ROUTER", "HANDSET"):
        body = {"kind": "receipt", "sku": code, "location": "WH", "quantity": 5}
        assert client.post(f"{STOCK}/adjustProductStock", json=body).status_code == 201


def _levels(s: Session) -> list[tuple[int, int, int]]:
    return [
        (lv.on_hand, lv.reserved, lv.allocated)
        for lv in s.scalars(select(StockLevel).order_by(StockLevel.sku_id))
    ]


def _lines_of(s: Session, allocation_id: str) -> list[int]:
    return sorted(
        s.scalars(select(ReservationLine.line_no).where(ReservationLine.allocation_id == allocation_id))
    )


def test_an_order_allocation_splits_per_service_idempotently_and_without_touching_stock(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # Given a stock hold of three lines (a router per unit, two handsets) committed for order O
    _seed(client)
    with session_factory() as s:
        hold = physical.hold_stock(
            s,
            [
                LineRequest(sku="ROUTER", quantity=1, region="North"),
                LineRequest(sku="ROUTER", quantity=1, region="North"),
                LineRequest(sku="HANDSET", quantity=2, region="North"),
            ],
            expires_at=clock.now() + timedelta(hours=1),
            customer_id=None,
            quote_id="q1",
            actor="t",
        )
        physical.commit_reservation(s, hold.id, "O", "t", commit=False)
        s.commit()
        (original,) = s.scalars(select(Allocation.id).where(Allocation.reservation_id == hold.id))
        before = _levels(s)
        movements = s.scalar(select(func.count()).select_from(StockMovement))
        assert before == [(5, 0, 2), (5, 0, 2)]
    # When the first unit's router is allocated to its service (technician), twice (a re-run step)
    with session_factory() as s:
        first = physical.allocate_lines(
            s, hold.id, [0], order_id="O", fulfilment_method="technician", actor="t"
        )
        s.commit()
    with session_factory() as s:
        again = physical.allocate_lines(
            s, hold.id, [0], order_id="O", fulfilment_method="technician", actor="t"
        )
        s.commit()
    # Then it has its own allocation holding just that line, the same both times
    assert first == again
    assert first.id != original and first.fulfilment_method == "technician"
    assert first.items == (("ROUTER", 1),)
    # When the second unit's router and the handsets are allocated to theirs
    with session_factory() as s:
        second = physical.allocate_lines(
            s, hold.id, [1], order_id="O", fulfilment_method="technician", actor="t"
        )
        handsets = physical.allocate_lines(s, hold.id, [2], order_id="O", fulfilment_method="ship", actor="t")
        s.commit()
    # Then the last lines keep the order's allocation; nothing moved in stock
    assert (
        handsets.id == original
        and handsets.items == (("HANDSET", 2),)
        and handsets.fulfilment_method == "ship"
    )
    with session_factory() as s:
        assert [_lines_of(s, a) for a in (first.id, second.id, original)] == [[0], [1], [2]]
        assert _levels(s) == before
        assert s.scalar(select(func.count()).select_from(StockMovement)) == movements
        assert s.scalar(select(func.count()).select_from(Allocation)) == 3
    # When the second unit's allocation is given back (its service ends before dispatch)
    with session_factory() as s:
        assert physical.return_allocation(s, second.id, "t") == "returnedToStock"
        s.commit()
    # Then exactly its router is available again; the others stay allocated
    with session_factory() as s:
        assert sorted(_levels(s)) == sorted([(5, 0, 1), (5, 0, 2)])
        statuses = {a.id: a.status for a in s.scalars(select(Allocation))}
        assert statuses == {first.id: "active", second.id: "cancelled", original: "active"}
    # And lines of another allocation cannot be taken together with these
    with session_factory() as s:
        with pytest.raises(Conflict, match="not held by one allocation"):
            physical.allocate_lines(s, hold.id, [0, 2], order_id="O", fulfilment_method=None, actor="t")
        with pytest.raises(Conflict, match="no line 7"):
            physical.allocate_lines(s, hold.id, [7], order_id="O", fulfilment_method=None, actor="t")
