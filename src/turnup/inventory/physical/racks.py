"""Rack space: contiguous rack units with enough power headroom; hold / extend / commit / release / expiry.

The rack's location row is the lock (one rack per request, so there is no ordering problem). Occupied units
are rows of ``stock_rack_unit`` with a unique partial index on (rack, U) among live holds, and the rack's
``power_reserved_watts`` has a CHECK against its budget, so the database refuses double booking even if the
code were wrong. Expired holds on the rack are released inside the reserving transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from turnup.inventory.physical.orm import Location, RackHold, RackUnitHold
from turnup.inventory.physical.render import API, effective_status, render_rack_hold
from turnup.inventory.physical.schemas import RackHoldCreate
from turnup.kernel import audit, clock
from turnup.kernel.db import table_of
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.hrefs import iso
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

RU = table_of(RackUnitHold)


def _lock_rack(
    session: Session, *, code: str | None = None, rack_id: str | None = None, field: str = "rack"
) -> Location:
    stmt = select(Location).with_for_update(key_share=True).execution_options(populate_existing=True)
    stmt = stmt.where(Location.code == code) if code is not None else stmt.where(Location.id == rack_id)
    rack = session.scalar(stmt)
    if rack is None:
        raise NotFound(f"{field}: unknown location {code or rack_id!r}")
    if rack.location_type != "rack":
        raise InvalidInput(f"{field}: {rack.code!r} is a {rack.location_type}, not a rack")
    return rack


def _release_expired_on(session: Session, rack: Location, now: datetime, actor: str) -> list[RackHold]:
    holds = list(
        session.scalars(
            select(RackHold)
            .where(
                RackHold.rack_id == rack.id,
                text("stock_rack_hold.status = 'held'"),
                RackHold.expires_at <= now,
            )
            .order_by(RackHold.id)
            .execution_options(populate_existing=True)
        )
    )
    for hold in holds:
        _free(session, rack, hold, "expired", now)
    return holds


def _free(session: Session, rack: Location, hold: RackHold, status: str, now: datetime) -> None:
    session.execute(update(RU).where(RU.c.hold_id == hold.id).values(active=False))
    rack.power_reserved_watts -= hold.power_watts
    rack.updated_at = now
    hold.status, hold.updated_at = status, now


def _free_blocks(size: int, occupied: set[int]) -> list[tuple[int, int]]:
    """(start, length) of every free run of rack units."""
    blocks, start = [], None
    for u in range(1, size + 2):
        free = u <= size and u not in occupied
        if free and start is None:
            start = u
        elif not free and start is not None:
            blocks.append((start, u - start))
            start = None
    return blocks


def reserve_rack_space(
    session: Session, data: RackHoldCreate, actor: str, *, commit: bool = True
) -> RackHold:
    now = clock.now()
    if data.expiresAt <= now:
        raise InvalidInput("expiresAt: must be in the future")
    rack = _lock_rack(session, code=data.rack)
    assert rack.rack_units is not None and rack.power_budget_watts is not None
    if data.units > rack.rack_units:
        raise InvalidInput(f"units: rack {rack.code!r} has only {rack.rack_units} units")
    if data.startU is not None and data.startU + data.units - 1 > rack.rack_units:
        raise InvalidInput(
            f"startU: U{data.startU}+{data.units} goes past the top of rack {rack.code!r} "
            f"({rack.rack_units}U)"
        )
    expired = _release_expired_on(session, rack, now, actor)
    session.flush()
    occupied = set(session.scalars(select(RU.c.u).where(RU.c.rack_id == rack.id, RU.c.active.is_(True))))
    blocks = _free_blocks(rack.rack_units, occupied)
    if data.startU is not None:
        wanted = set(range(data.startU, data.startU + data.units))
        start = data.startU if not wanted & occupied else None
    else:
        start = next((s for s, length in blocks if length >= data.units), None)
    headroom = rack.power_budget_watts - rack.power_reserved_watts
    problems: dict[str, Any] = {}
    if start is None:
        problems.update(requestedUnits=data.units, largestFreeBlock=max((b[1] for b in blocks), default=0))
    if data.powerWatts > headroom:
        problems.update(requestedPowerWatts=data.powerWatts, availablePowerWatts=headroom)
    if problems:
        if commit:
            session.rollback()
        parts = []
        if "requestedUnits" in problems:
            where = f" at U{data.startU}" if data.startU else ""
            parts.append(
                f"no {data.units} contiguous free units{where} (largest free block "
                f"{problems['largestFreeBlock']})"
            )
        if "requestedPowerWatts" in problems:
            parts.append(f"power {data.powerWatts} W requested, {headroom} W headroom")
        raise Conflict(
            f"rack {rack.code}: " + "; ".join(parts),
            reason="Insufficient rack space",
            details=[{"rack": rack.code, **problems}],
        )
    assert start is not None
    hold = RackHold(
        id=new_id(),
        rack_id=rack.id,
        start_u=start,
        units=data.units,
        power_watts=data.powerWatts,
        status="held",
        expires_at=data.expiresAt,
        customer_id=data.customerId,
        quote_id=data.quoteId,
        created_at=now,
        updated_at=now,
    )
    session.add(hold)
    rack.power_reserved_watts += data.powerWatts
    rack.updated_at = now
    session.flush()
    session.execute(
        RU.insert(),
        [
            {"id": new_id(), "hold_id": hold.id, "rack_id": rack.id, "u": u, "active": True}
            for u in range(start, start + data.units)
        ],
    )
    audit.record(
        session,
        actor=actor,
        action="stock.rack.reserve",
        resource_type="rackSpaceReservation",
        resource_id=hold.id,
        details={
            "rack": rack.code,
            "startU": start,
            "units": data.units,
            "powerWatts": data.powerWatts,
            "releasedExpired": [h.id for h in expired],
        },
    )
    publish(
        session,
        api=API,
        event_type="RackSpaceReservationCreateEvent",
        resource_type="rackSpaceReservation",
        resource=render_rack_hold(hold),
    )
    if commit:
        session.commit()
    return hold


def get_rack_hold(session: Session, hold_id: str) -> RackHold:
    hold = session.get(RackHold, hold_id)
    if hold is None:
        raise NotFound(f"rackSpaceReservation {hold_id!r} not found")
    return hold


def _locked_hold(session: Session, hold_id: str) -> tuple[Location, RackHold]:
    hold = get_rack_hold(session, hold_id)
    rack = _lock_rack(session, rack_id=hold.rack_id)
    session.refresh(hold)
    return rack, hold


def _finish(
    session: Session,
    hold: RackHold,
    actor: str,
    action: str,
    event: str,
    details: dict[str, Any],
    commit: bool,
) -> RackHold:
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        resource_type="rackSpaceReservation",
        resource_id=hold.id,
        details=details,
    )
    publish(
        session,
        api=API,
        event_type=event,
        resource_type="rackSpaceReservation",
        resource=render_rack_hold(hold),
    )
    if commit:
        session.commit()
    return hold


def extend_rack_hold(
    session: Session, hold_id: str, expires_at: datetime, actor: str, *, commit: bool = True
) -> RackHold:
    now = clock.now()
    _, hold = _locked_hold(session, hold_id)
    status = effective_status(hold.status, hold.expires_at, now)
    if status != "held":
        raise Conflict(
            f"rackSpaceReservation {hold_id!r} is {status}; only a held one can be extended",
            reason="Illegal state transition",
        )
    if expires_at <= now:
        raise InvalidInput("expiresAt: must be in the future")
    old = hold.expires_at
    hold.expires_at, hold.updated_at = expires_at, now
    return _finish(
        session,
        hold,
        actor,
        "stock.rack.extend",
        "RackSpaceReservationAttributeValueChangeEvent",
        {"from": iso(old), "to": iso(expires_at)},
        commit,
    )


def release_rack_hold(session: Session, hold_id: str, actor: str, *, commit: bool = True) -> RackHold:
    now = clock.now()
    rack, hold = _locked_hold(session, hold_id)
    if hold.status not in ("held", "committed"):
        raise Conflict(
            f"rackSpaceReservation {hold_id!r} is already {hold.status}", reason="Illegal state transition"
        )
    status = "expired" if effective_status(hold.status, hold.expires_at, now) == "expired" else "released"
    _free(session, rack, hold, status, now)
    return _finish(
        session,
        hold,
        actor,
        "stock.rack.release",
        "RackSpaceReservationStateChangeEvent",
        {"status": status},
        commit,
    )


def commit_rack_hold(
    session: Session, hold_id: str, order_id: str, actor: str, *, commit: bool = True
) -> RackHold:
    now = clock.now()
    _, hold = _locked_hold(session, hold_id)
    status = effective_status(hold.status, hold.expires_at, now)
    if status != "held":
        raise Conflict(
            f"rackSpaceReservation {hold_id!r} is {status}; only a live hold can be committed",
            reason="Illegal state transition",
        )
    hold.status, hold.order_id, hold.updated_at = "committed", order_id, now
    return _finish(
        session,
        hold,
        actor,
        "stock.rack.commit",
        "RackSpaceReservationStateChangeEvent",
        {"orderId": order_id},
        commit,
    )


def sweep_expired_rack_holds(session: Session, *, actor: str = "system:sweeper") -> int:
    now = clock.now()
    rack_ids = sorted(
        set(
            session.scalars(
                select(RackHold.rack_id).where(
                    text("stock_rack_hold.status = 'held'"), RackHold.expires_at <= now
                )
            )
        )
    )
    count = 0
    for rack_id in rack_ids:
        rack = _lock_rack(session, rack_id=rack_id)
        for hold in _release_expired_on(session, rack, now, actor):
            count += 1
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="stock.rack.expire",
                resource_type="rackSpaceReservation",
                resource_id=hold.id,
            )
            publish(
                session,
                api=API,
                event_type="RackSpaceReservationStateChangeEvent",
                resource_type="rackSpaceReservation",
                resource=render_rack_hold(hold),
            )
        session.commit()
    session.rollback()
    return count
