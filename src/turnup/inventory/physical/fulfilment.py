"""Stock that follows the order: hand-over to the customer's site and CPE returns.

Hand-over (``hand_over_allocation``, run by ordering in the transaction that records the awaited event):
the lines of an allocation that a plan item delivers (a technician fitted them, the shipment was
delivered, the customer picked them up) leave the warehouse and arrive at the location that represents
the customer's site (``customer_site`` location, created on demand, one per site). Serialised units: the
units the allocation already holds (picked in id order when the quote reserved them) — the event does not
choose serials. Each unit gets two ledger rows: ``issue`` (technician, pickup) or ``ship`` at the warehouse
(on hand and allocated -1) and ``install`` at the customer site (on hand +1 there, unit ``installed``); a
quantity line the same with its quantity. So the customer site's ``stock_level`` rows show what is installed
there (``productStock?locationId=<site location>``); a ``customer_site`` is not stock-holding, so no quote
ever reserves from it. A ``stock_handover``
row per line (unique) records it; an allocation whose lines are all handed over is ``issued`` (or
``shipped`` when every line was shipped).

Returns: a ``CpeReturnRequestedEvent`` (a service carrying dispatched stock was disconnected) creates a
return expectation (``stock_return_expectation``: the units, the customer site they are at, the stock
location they are expected back at) — ``expect_return``. ``receive_return`` takes them back into stock
(ledger ``return`` at the customer site, on hand -1 there for a unit whose installation counted it, then
``return`` into quarantine, condition ``returned``; or ``refurbished``: also ``refurbish`` back into
available stock) and closes the expectation; a second receipt is a 409.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from turnup.inventory.physical.ledger import LINE, UNIT, Ledger, dispatched_status, ensure_levels, lock_levels
from turnup.inventory.physical.orm import (
    Allocation,
    Handover,
    Location,
    ReturnExpectation,
    Sku,
    StockMovement,
    StockUnit,
)
from turnup.inventory.physical.render import API, render_allocation, render_location, render_return
from turnup.inventory.physical.schemas import MovementCreate, ReturnReceipt
from turnup.kernel import audit, clock
from turnup.kernel.db import table_of
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

LOCATION = table_of(Location)
HANDOVER = table_of(Handover)
LEDGER_KIND = {"technician": "issue", "pickup": "issue", "ship": "ship"}


# --- the customer's site ---------------------------------------------------------------------------------


def customer_site_location(session: Session, site_id: str | None, customer_id: str, actor: str) -> Location:
    """The location representing a customer's site: an existing ``customer_site`` location of that site,
    else ``SITE-<site id>`` (or ``CUSTOMER-<customer id>`` for a service without a site), created here
    (safe under concurrency: insert-or-nothing on the unique code)."""
    if site_id is not None:
        existing = session.scalar(
            select(Location)
            .where(Location.site_id == site_id, Location.location_type == "customer_site")
            .order_by(Location.created_at, Location.id)
            .limit(1)
        )
        if existing is not None:
            return existing
    code = f"SITE-{site_id}" if site_id else f"CUSTOMER-{customer_id}"
    found = session.scalar(select(Location).where(Location.code == code))
    if found is not None:
        return found
    now = clock.now()
    row = {
        "id": new_id(),
        "code": code,
        "name": f"Customer site {site_id}" if site_id else f"Customer {customer_id} (no site)",
        "location_type": "customer_site",
        "site_id": site_id,
        "power_reserved_watts": 0,
        "created_at": now,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(LOCATION) if dialect == "postgresql" else sqlite.insert(LOCATION)
    created = session.execute(
        ins.values(row).on_conflict_do_nothing(index_elements=["code"]).returning(LOCATION.c.id)
    ).first()
    loc = session.scalar(select(Location).where(Location.code == code))
    assert loc is not None
    if created:
        audit.record(
            session,
            actor=actor,
            action="stock.location.create",
            resource_type="location",
            resource_id=loc.id,
            details={"code": code, "type": "customer_site", "siteId": site_id},
        )
        publish(
            session,
            api=API,
            event_type="StockLocationCreateEvent",
            resource_type="location",
            resource=render_location(loc),
        )
    return loc


# --- hand-over -------------------------------------------------------------------------------------------


def hand_over_allocation(
    session: Session,
    allocation_id: str,
    *,
    method: str,
    want: dict[str, int] | None,
    site_id: str | None,
    customer_id: str,
    reference: str | None,
    actor: str,
) -> list[dict[str, Any]]:
    """Hand over the lines of an ``active`` allocation that ``want`` names (SKU code -> quantity still to
    hand over, decremented here; ``None``: every line) to the customer's site. Returns what moved, one
    entry per line (``sku``, ``quantity``, ``serials``, ``location``). Nothing to do (allocation unknown,
    not active, no matching line) returns ``[]``. Runs in the caller's transaction; never commits."""
    if method not in LEDGER_KIND:
        raise InvalidInput(f"method: unknown fulfilment method {method!r}")
    allocation = session.get(Allocation, allocation_id)
    if allocation is None or allocation.status != "active":
        return []
    pending = session.execute(
        select(LINE.c.id, LINE.c.level_id, LINE.c.quantity, LINE.c.sku_id, Sku.code)
        .join(Sku, Sku.id == LINE.c.sku_id)
        .where(
            LINE.c.allocation_id == allocation.id,
            LINE.c.status == "committed",
            ~exists().where(HANDOVER.c.line_id == LINE.c.id),
        )
        .order_by(LINE.c.line_no, LINE.c.id)
    ).all()
    chosen = []
    for line in pending:
        if want is None:
            chosen.append(line)
        elif want.get(line.code, 0) > 0:
            want[line.code] -= min(line.quantity, want[line.code])
            chosen.append(line)
    if not chosen:
        return []
    dest = customer_site_location(session, site_id, customer_id, actor)
    now = clock.now()
    # the warehouse levels the lines hold and the customer site's levels they arrive at, locked together
    # in primary-key order
    site_pairs = {(r.sku_id, dest.id) for r in chosen}
    ensure_levels(session, site_pairs, now)
    by_pair = lock_levels(session, pairs=site_pairs, ids=[r.level_id for r in chosen])
    levels = {lv.id: lv for lv in by_pair.values()}
    locked = session.scalar(
        select(Allocation)
        .where(Allocation.id == allocation_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    assert locked is not None
    if locked.status != "active":
        return []
    kind = LEDGER_KIND[method]
    ledger = Ledger(session, actor, now)
    reason = f"{method} hand-over" + (f" ({reference})" if reference else "")
    moved: list[dict[str, Any]] = []
    for r in chosen:
        level, at_site = levels[r.level_id], by_pair[(r.sku_id, dest.id)]
        unit_rows = session.execute(
            select(UNIT.c.id, UNIT.c.serial).where(UNIT.c.hold_line_id == r.id).order_by(UNIT.c.id)
        ).all()
        if unit_rows:
            session.execute(
                update(UNIT)
                .where(UNIT.c.id.in_([u.id for u in unit_rows]))
                .values(state="installed", hold_line_id=None, location_id=dest.id, updated_at=now)
            )
            for u in unit_rows:
                ledger.move(
                    level,
                    kind,
                    on_hand=-1,
                    allocated=-1,
                    unit_id=u.id,
                    unit_state="shipped" if kind == "ship" else "issued",
                    reservation_id=locked.reservation_id,
                    reference=locked.order_id,
                    reason=reason,
                )
                ledger.move(
                    at_site,
                    "install",
                    on_hand=1,
                    unit_id=u.id,
                    unit_state="installed",
                    reservation_id=locked.reservation_id,
                    reference=locked.order_id,
                    reason=reason,
                )
        else:
            ledger.move(
                level,
                kind,
                on_hand=-r.quantity,
                allocated=-r.quantity,
                reservation_id=locked.reservation_id,
                reference=locked.order_id,
                reason=reason,
            )
            ledger.move(
                at_site,
                "install",
                on_hand=r.quantity,
                reservation_id=locked.reservation_id,
                reference=locked.order_id,
                reason=reason,
            )
        session.add(
            Handover(
                id=new_id(),
                allocation_id=locked.id,
                line_id=r.id,
                method=method,
                location_id=dest.id,
                order_id=locked.order_id,
                reference=reference,
                at=now,
                unit_ids=[u.id for u in unit_rows] or None,
            )
        )
        moved.append(
            {
                "sku": r.code,
                "quantity": r.quantity,
                "serials": [u.serial for u in unit_rows] or None,
                "location": dest.code,
            }
        )
    ledger.flush()
    session.flush()
    left = session.scalar(
        select(LINE.c.id)
        .where(
            LINE.c.allocation_id == locked.id,
            LINE.c.status == "committed",
            ~exists().where(HANDOVER.c.line_id == LINE.c.id),
        )
        .limit(1)
    )
    if left is None:
        locked.status, locked.updated_at = dispatched_status(session, locked.id), now
        session.flush()
        publish(
            session,
            api=API,
            event_type="StockAllocationStateChangeEvent",
            resource_type="allocation",
            resource=render_allocation(locked),
        )
    audit.record(
        session,
        actor=actor,
        action=f"stock.allocation.handover.{method}",
        resource_type="allocation",
        resource_id=locked.id,
        details={"toLocation": dest.code, "lines": moved, "reference": reference},
    )
    return moved


def handed_over(session: Session, allocation_id: str) -> bool:
    return (
        session.scalar(select(Handover.id).where(Handover.allocation_id == allocation_id).limit(1))
        is not None
    )


# --- returns ---------------------------------------------------------------------------------------------


def _dispatched_units(session: Session, allocation_id: str) -> list[tuple[str, str | None]]:
    """(unit id, stock location it left) of every serialised unit the allocation handed over."""
    unit_ids = [
        u
        for ids in session.scalars(select(Handover.unit_ids).where(Handover.allocation_id == allocation_id))
        for u in ids or []
    ]
    if not unit_ids:
        return []
    rows = session.execute(
        select(StockMovement.unit_id, StockMovement.location_id)
        .where(
            StockMovement.unit_id.in_(unit_ids),
            StockMovement.kind.in_(("ship", "issue")),
        )
        .order_by(StockMovement.id)
    ).all()
    seen: dict[str, str | None] = {}
    for unit_id, location_id in rows:
        seen[str(unit_id)] = location_id  # the latest time it left stock
    return [(u, seen.get(u)) for u in dict.fromkeys(unit_ids)]


def expect_return(
    session: Session,
    *,
    source_event_id: str,
    reference: str | None,
    service_id: str | None,
    customer_id: str | None,
    order_id: str | None,
    units: list[dict[str, Any]],
    actor: str,
) -> ReturnExpectation | None:
    """Record that the units a disconnected service carried are to come back (one expectation per
    request). ``units`` entries are ``{"allocationId": …}`` (every serialised unit that allocation sent
    out) or ``{"serial": …, "sku": …}``. Units no longer out at a customer (already back, scrapped) and
    unknown serials are left out; nothing left: no expectation (None). Never commits."""
    if session.scalar(
        select(ReturnExpectation.id).where(ReturnExpectation.source_event_id == source_event_id)
    ):
        return None
    picked: dict[str, str | None] = {}
    for entry in units:
        allocation_id = entry.get("allocationId")
        if allocation_id:
            allocation = session.get(Allocation, str(allocation_id))
            if allocation is not None:
                for unit_id, origin in _dispatched_units(session, allocation.id):
                    picked.setdefault(unit_id, origin)
        elif entry.get("serial"):
            stmt = select(StockUnit).where(StockUnit.serial == str(entry["serial"]))
            if entry.get("sku"):
                stmt = stmt.join(Sku, Sku.id == StockUnit.sku_id).where(Sku.code == str(entry["sku"]))
            found = list(session.scalars(stmt.limit(2)))
            if len(found) == 1:
                picked.setdefault(found[0].id, None)
    rows = (
        list(
            session.scalars(
                select(StockUnit)
                .where(
                    StockUnit.id.in_(sorted(picked)),
                    StockUnit.state.in_(("shipped", "issued", "installed")),
                )
                .order_by(StockUnit.id)
            )
        )
        if picked
        else []
    )
    if not rows:
        return None
    skus = {s.id: s.code for s in session.scalars(select(Sku).where(Sku.id.in_({u.sku_id for u in rows})))}
    location_ids = {u.location_id for u in rows} | {o for o in picked.values() if o}
    codes = {
        i: c
        for i, c in session.execute(select(Location.id, Location.code).where(Location.id.in_(location_ids)))
    }
    origins = [picked[u.id] for u in rows if picked[u.id]]
    now = clock.now()
    expectation = ReturnExpectation(
        id=new_id(),
        status="open",
        source_event_id=source_event_id,
        reference=reference,
        service_id=service_id,
        customer_id=customer_id,
        order_id=order_id,
        from_location_id=rows[0].location_id,
        to_location_id=origins[0] if origins else None,
        units=[
            {
                "unitId": u.id,
                "serial": u.serial,
                "sku": skus[u.sku_id],
                "at": codes.get(u.location_id or "", ""),
                "origin": codes.get(picked[u.id] or "", ""),
            }
            for u in rows
        ],
        created_at=now,
        updated_at=now,
    )
    session.add(expectation)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="stock.return.expect",
        resource_type="stockReturn",
        resource_id=expectation.id,
        details={"serviceId": service_id, "serials": [u.serial for u in rows]},
    )
    publish(
        session,
        api=API,
        event_type="StockReturnCreateEvent",
        resource_type="stockReturn",
        resource=render_return(expectation, codes),
    )
    return expectation


def get_return(session: Session, return_id: str) -> ReturnExpectation:
    expectation = session.get(ReturnExpectation, return_id)
    if expectation is None:
        raise NotFound(f"stockReturn {return_id!r} not found")
    return expectation


def location_codes(session: Session, expectations: list[ReturnExpectation]) -> dict[str, str]:
    ids = {i for e in expectations for i in (e.from_location_id, e.to_location_id) if i}
    if not ids:
        return {}
    return {i: c for i, c in session.execute(select(Location.id, Location.code).where(Location.id.in_(ids)))}


def receive_return(session: Session, return_id: str, data: ReturnReceipt, actor: str) -> ReturnExpectation:
    """The units of an open return expectation arrive at a stock location (``data.location``, default the
    one they are expected at): each a ledger ``return`` into quarantine (``returned``), then for condition
    ``refurbished`` a ``refurbish`` back into available stock; the expectation is ``received``. A received
    (or cancelled) expectation is a 409; everything is checked before anything is written. Commits."""
    from turnup.inventory.physical.services import apply_movement, location_by_code

    expectation = session.scalar(
        select(ReturnExpectation)
        .where(ReturnExpectation.id == return_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if expectation is None:
        raise NotFound(f"stockReturn {return_id!r} not found")
    if expectation.status != "open":
        raise Conflict(
            f"stockReturn {return_id} is {expectation.status}; it was already closed",
            reason="Illegal state transition",
        )
    if data.location is not None:
        target = location_by_code(session, data.location, "location")
    elif expectation.to_location_id is not None:
        expected = session.get(Location, expectation.to_location_id)
        assert expected is not None
        target = expected
    else:
        raise InvalidInput("location: this return has no expected stock location; name one")
    by_sku: dict[str, list[str]] = {}
    for unit in expectation.units:
        by_sku.setdefault(unit["sku"], []).append(unit["serial"])
    for sku_code, serials in sorted(by_sku.items()):
        apply_movement(
            session,
            MovementCreate(
                kind="return",
                sku=sku_code,
                location=target.code,
                serials=serials,
                reference=expectation.id,
                reason="CPE return",
            ),
            actor,
            commit=False,
        )
        if data.condition == "refurbished":
            apply_movement(
                session,
                MovementCreate(
                    kind="refurbish",
                    sku=sku_code,
                    location=target.code,
                    serials=serials,
                    reference=expectation.id,
                    reason="CPE return refurbished",
                ),
                actor,
                commit=False,
            )
    session.execute(
        update(UNIT).where(UNIT.c.id.in_([u["unitId"] for u in expectation.units])).values(order_id=None)
    )
    now = clock.now()
    expectation.status, expectation.received_at, expectation.received_by = "received", now, actor
    expectation.condition, expectation.updated_at = data.condition, now
    expectation.to_location_id = target.id
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="stock.return.receive",
        resource_type="stockReturn",
        resource_id=expectation.id,
        details={"location": target.code, "condition": data.condition},
    )
    publish(
        session,
        api=API,
        event_type="StockReturnStateChangeEvent",
        resource_type="stockReturn",
        resource=render_return(expectation, location_codes(session, [expectation])),
    )
    session.commit()
    return expectation
