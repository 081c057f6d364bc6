"""The database itself refuses what the code must never do, on both databases; and the Python reservation API
works inside a caller's transaction (how the quote feature combines it with logical reservations)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory.physical import reservations as R
from turnup.inventory.physical import services as S
from turnup.inventory.physical.orm import (
    Location,
    RackUnitHold,
    Reservation,
    ReservationLine,
    StockLevel,
    StockMovement,
    StockUnit,
)
from turnup.inventory.physical.schemas import (
    LineRequest,
    LocationCreate,
    MovementCreate,
    ReservationCreate,
    SkuCreate,
)
from turnup.kernel import clock
from turnup.kernel.errors import Conflict


def _seed(s: Session) -> None:
    S.create_sku(s, SkuCreate(code="CABLE", name="Cable"), "t")
    S.create_sku(s, SkuCreate(code="ONT", name="ONT", serialised=True), "t")
    S.create_location(s, LocationCreate(code="WH1", name="WH1", locationType="warehouse"), "t")
    S.apply_movement(s, MovementCreate(kind="receipt", sku="CABLE", location="WH1", quantity=3), "t")
    S.apply_movement(
        s,
        MovementCreate(kind="receipt", sku="ONT", location="WH1", units=[{"serial": "A"}, {"serial": "B"}]),
        "t",
    )


def _violates(s: Session, stmt: object) -> None:
    with pytest.raises(IntegrityError):
        s.execute(stmt)  # type: ignore[call-overload]
        s.flush()
    s.rollback()


def test_check_constraints_and_unique_indexes(session: Session) -> None:
    _seed(session)
    level = session.scalar(select(StockLevel).where(StockLevel.on_hand == 3))
    assert level is not None
    _violates(session, update(StockLevel).where(StockLevel.id == level.id).values(reserved=4))  # oversell
    _violates(session, update(StockLevel).where(StockLevel.id == level.id).values(on_hand=-1))
    _violates(session, update(StockLevel).where(StockLevel.id == level.id).values(reserved=2, allocated=2))
    unit = session.scalar(select(StockUnit).where(StockUnit.serial == "A"))
    assert unit is not None
    _violates(session, update(StockUnit).where(StockUnit.id == unit.id).values(state="reserved"))  # no holder
    _violates(session, update(StockUnit).where(StockUnit.serial == "B").values(serial="A"))  # unique serial
    _violates(session, update(Location).values(power_reserved_watts=-1))


def test_a_rack_unit_is_in_one_live_hold_only(session: Session) -> None:
    from turnup.inventory.physical import racks
    from turnup.inventory.physical.schemas import RackHoldCreate

    S.create_location(
        session,
        LocationCreate(code="R", name="R", locationType="rack", rackUnits=4, powerBudgetWatts=100),
        "t",
    )
    hold = racks.reserve_rack_space(
        session,
        RackHoldCreate(rack="R", units=2, powerWatts=10, expiresAt=clock.now() + timedelta(hours=1)),
        "t",
    )
    rack_id = hold.rack_id
    _violates(
        session,
        RackUnitHold.__table__.insert().values(id="x", hold_id=hold.id, rack_id=rack_id, u=1, active=True),
    )
    session.execute(
        RackUnitHold.__table__.insert().values(id="y", hold_id=hold.id, rack_id=rack_id, u=1, active=False)
    )
    session.rollback()


def test_python_api_inside_a_callers_transaction(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        _seed(s)
    expires = clock.now() + timedelta(hours=1)
    # the caller's other step fails after the physical hold: rolling back undoes the hold
    with session_factory() as s:
        view = R.create_reservation(
            s,
            ReservationCreate(lines=[{"sku": "CABLE", "quantity": 2, "location": "WH1"}], expiresAt=expires),
            "quote",
            commit=False,
        )
        assert view.status == "held"
        s.rollback()
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Reservation)) == 0
        assert (
            R.check_availability(s, [LineRequest(sku="CABLE", quantity=3, location="WH1")])[0].available == 3
        )
    # both steps succeed: one commit by the caller
    with session_factory() as s:
        view = R.create_reservation(
            s,
            ReservationCreate(
                lines=[{"sku": "CABLE", "quantity": 3, "location": "WH1"}, {"sku": "ONT", "serials": ["B"]}],
                expiresAt=expires,
                quoteId="Q-9",
            ),
            "quote",
            commit=False,
        )
        s.commit()
    with session_factory() as s:
        with pytest.raises(Conflict) as refused:
            R.create_reservation(
                s,
                ReservationCreate(
                    lines=[{"sku": "CABLE", "quantity": 1, "location": "WH1"}], expiresAt=expires
                ),
                "quote",
            )
        assert refused.value.details == [
            {"line": 0, "sku": "CABLE", "location": "WH1", "region": None, "requested": 1, "available": 0}
        ]
        extended = R.extend_reservation(s, view.id, expires + timedelta(days=1), "quote")
        assert extended.reservation.expires_at == expires + timedelta(days=1)
        committed = R.commit_reservation(s, view.id, "ORD-1", "quote")
        assert committed.status == "committed" and committed.allocation is not None
        lines = s.scalars(
            select(ReservationLine.status).where(ReservationLine.reservation_id == view.id)
        ).all()
        assert sorted(lines) == ["committed", "committed"]
        ledger = s.execute(
            select(
                StockMovement.kind,
                func.sum(StockMovement.reserved_delta),
                func.sum(StockMovement.allocated_delta),
            )
            .where(StockMovement.reservation_id == view.id)
            .group_by(StockMovement.kind)
            .order_by(StockMovement.kind)
        ).all()
        assert [tuple(r) for r in ledger] == [("commit", -4, 4), ("reserve", 4, 0)]


def test_installed_units_count_at_the_customer_site_until_returned(session: Session) -> None:
    """An install adds on hand at the customer-site location; a return takes it off again, but only for a
    unit whose install counted it (a unit installed before sites held stock has a 0-quantity install
    entry and leaves no level behind); every level stays the sum of its movements."""
    from turnup.inventory.physical.ledger import Ledger

    _seed(session)
    S.create_location(session, LocationCreate(code="CS1", name="Acme", locationType="customer_site"), "t")
    # Given unit A shipped and installed at CS1 the current way
    for movement in (
        MovementCreate(kind="ship", sku="ONT", location="WH1", serials=["A", "B"]),
        MovementCreate(kind="install", sku="ONT", toLocation="CS1", serials=["A"]),
    ):
        S.apply_movement(session, movement, "t")
    cs1 = S.location_by_code(session, "CS1")
    # and unit B installed at CS1 the old way: an install entry with no quantity
    b = session.scalars(select(StockUnit).where(StockUnit.serial == "B")).one()
    legacy = Ledger(session, "t", clock.now())
    legacy.note(b.sku_id, cs1.id, "install", unit_id=b.id, unit_state="installed")
    legacy.flush()
    session.execute(
        update(StockUnit).where(StockUnit.id == b.id).values(state="installed", location_id=cs1.id)
    )
    session.commit()

    def levels() -> dict[str, tuple[int, int]]:
        codes = {i: c for i, c in session.execute(select(Location.id, Location.code))}
        rows = session.scalars(
            select(StockLevel)
            .join(Location, Location.id == StockLevel.location_id)
            .where(StockLevel.sku_id == b.sku_id)
        )
        return {codes[lv.location_id]: (lv.on_hand, lv.quarantined) for lv in rows}

    assert levels() == {"WH1": (0, 0), "CS1": (1, 0)}
    # When both come back to WH1
    S.apply_movement(
        session, MovementCreate(kind="return", sku="ONT", location="WH1", serials=["A", "B"]), "t"
    )
    # Then CS1 lost only A, WH1 has both in quarantine, and every level is the sum of its movements
    assert levels() == {"WH1": (0, 2), "CS1": (0, 0)}
    site_moves = session.execute(
        select(StockMovement.kind, StockMovement.on_hand_delta, StockMovement.unit_id)
        .where(StockMovement.location_id == cs1.id)
        .order_by(StockMovement.id)
    ).all()
    a = session.scalars(select(StockUnit.id).where(StockUnit.serial == "A")).one()
    assert [tuple(m) for m in site_moves] == [("install", 1, a), ("install", 0, b.id), ("return", -1, a)]
    sums = {
        (sku_id, loc_id): (on_hand, reserved, allocated, quarantined)
        for sku_id, loc_id, on_hand, reserved, allocated, quarantined in session.execute(
            select(
                StockMovement.sku_id,
                StockMovement.location_id,
                func.sum(StockMovement.on_hand_delta),
                func.sum(StockMovement.reserved_delta),
                func.sum(StockMovement.allocated_delta),
                func.sum(StockMovement.quarantined_delta),
            ).group_by(StockMovement.sku_id, StockMovement.location_id)
        )
    }
    assert sums == {
        (lv.sku_id, lv.location_id): (lv.on_hand, lv.reserved, lv.allocated, lv.quarantined)
        for lv in session.scalars(select(StockLevel))
    }
    # And a return of a unit no longer out is refused, changing nothing
    with pytest.raises(Conflict):
        S.apply_movement(
            session, MovementCreate(kind="return", sku="ONT", location="WH1", serials=["A"]), "t"
        )
    session.rollback()
    assert levels() == {"WH1": (0, 2), "CS1": (0, 0)}
