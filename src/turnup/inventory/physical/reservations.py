"""Quote-time reservations: the Python API other features use (and the API/CLI adapters call).

- ``create_reservation``: all-or-nothing hold of several lines until ``expiresAt``; a refusal is a
  ``Conflict`` (409) whose ``details`` list every short line (sku, location/region, requested, available).
- ``extend_reservation``, ``release_reservation``, ``commit_reservation`` (into an ``Allocation``).
- ``check_availability``: per line, available now, where, and when replenishment is expected.
- ``sweep_expired``: releases holds whose ``expires_at`` has passed (``turnup stock sweep``).

Each use case takes ``commit=True``; pass ``commit=False`` to run inside a caller's transaction (the caller
then commits, or rolls back on error, e.g. when combining with logical reservations).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Select, String, func, literal, select, text, union_all, update
from sqlalchemy.orm import Session

from turnup import accounts
from turnup.inventory.physical import fastpath
from turnup.inventory.physical.ledger import (
    LEVEL,
    LINE,
    LINE_HELD,
    UNIT,
    Ledger,
    Level,
    free_units,
    held_units,
    lock_levels,
    pair_condition,
    release_expired,
)
from turnup.inventory.physical.orm import (
    Allocation,
    Location,
    ReplenishmentRequest,
    Reservation,
    ReservationLine,
    Sku,
    StockUnit,
)
from turnup.inventory.physical.render import (
    API,
    LineView,
    ReservationView,
    effective_status,
    render_reservation,
)
from turnup.inventory.physical.schemas import LineRequest, ReservationCreate
from turnup.kernel import audit, clock
from turnup.kernel.db import rowcount, table_of
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.hrefs import iso
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

STOCK_HOLDING = ("warehouse", "van", "store", "data_centre", "cage")


# --- resolving codes -------------------------------------------------------------------------------------


@dataclass
class _SkuRow:
    id: str
    code: str
    serialised: bool


@dataclass
class _LocRow:
    id: str
    code: str
    location_type: str


@dataclass
class _Unit:
    id: str
    serial: str
    location_id: str | None
    state: str
    hold_line_id: str | None
    location_code: str | None = None
    hold_status: str | None = None  # the holding line's status and expiry (availability checks)
    hold_expires_at: datetime | None = None


@dataclass
class _Line:
    index: int
    request: LineRequest
    sku_id: str
    sku_code: str
    serialised: bool
    location_ids: list[str]  # candidate locations (one unless region)
    units: list[_Unit] = field(default_factory=list)


@dataclass
class _Resolved:
    lines: list[_Line]
    location_codes: dict[str, str]  # id -> code

    def pairs(self) -> set[tuple[str, str]]:
        result: set[tuple[str, str]] = set()
        for line in self.lines:
            if line.units:
                result.update((line.sku_id, u.location_id) for u in line.units if u.location_id)
            else:
                result.update((line.sku_id, loc) for loc in line.location_ids)
        return result


def _resolve(session: Session, requests: list[LineRequest]) -> _Resolved:
    """Codes to ids in two round trips; unknown SKUs, locations, regions or serials are refused naming the
    line."""
    codes = sorted({r.sku for r in requests})
    loc_codes = sorted({r.location for r in requests if r.location})
    regions = sorted({r.region for r in requests if r.region})
    # SKUs, named locations and the locations of named regions in one round trip
    parts: list[Select[*tuple[Any, ...]]] = [
        select(
            literal("s").label("kind"),
            Sku.id,
            Sku.code,
            Sku.serialised.label("flag"),
            literal(None, String).label("location_type"),
            literal(None, String).label("region"),
        ).where(Sku.code.in_(codes))
    ]
    if loc_codes:
        parts.append(
            select(
                literal("l"),
                Location.id,
                Location.code,
                literal(False, Boolean),
                Location.location_type,
                Location.region,
            ).where(Location.code.in_(loc_codes))
        )
    if regions:
        parts.append(
            select(
                literal("r"),
                Location.id,
                Location.code,
                literal(False, Boolean),
                Location.location_type,
                Location.region,
            ).where(Location.region.in_(regions), Location.location_type.in_(STOCK_HOLDING))
        )
    skus: dict[str, _SkuRow] = {}
    locations: dict[str, _LocRow] = {}
    in_region: dict[str, list[_LocRow]] = defaultdict(list)
    location_codes: dict[str, str] = {}
    for row in session.execute(union_all(*parts) if len(parts) > 1 else parts[0]):
        if row.kind == "s":
            skus[row.code] = _SkuRow(row.id, row.code, bool(row.flag))
            continue
        location_codes[row.id] = row.code
        if row.kind == "l":
            locations[row.code] = _LocRow(row.id, row.code, row.location_type)
        else:
            in_region[row.region].append(_LocRow(row.id, row.code, row.location_type))
    for rows in in_region.values():
        rows.sort(key=lambda r: r.code)
    # every named serial of every line in one round trip, with its location and holding line
    wanted = sorted({(r.sku, x) for r in requests for x in r.serials or ()})
    wanted_set = set(wanted)
    units: dict[tuple[str, str], _Unit] = {}
    if wanted:
        for unit_row in session.execute(
            select(
                Sku.code,
                UNIT.c.id,
                UNIT.c.serial,
                UNIT.c.location_id,
                UNIT.c.state,
                UNIT.c.hold_line_id,
                Location.code,
                LINE.c.status,
                LINE.c.expires_at,
            )
            .join(Sku, Sku.id == UNIT.c.sku_id)
            .outerjoin(Location, Location.id == UNIT.c.location_id)
            .outerjoin(LINE, LINE.c.id == UNIT.c.hold_line_id)
            .where(
                Sku.code.in_(sorted({k for k, _ in wanted})),
                UNIT.c.serial.in_(sorted({x for _, x in wanted})),
            )
        ):
            if (unit_row[0], unit_row.serial) not in wanted_set:
                continue
            units[(unit_row[0], unit_row.serial)] = _Unit(*unit_row[1:])
            if unit_row.location_id:
                location_codes[unit_row.location_id] = unit_row[6]
    lines: list[_Line] = []
    for i, req in enumerate(requests):
        sku = skus.get(req.sku)
        if sku is None:
            raise NotFound(f"lines[{i}].sku: unknown SKU {req.sku!r}")
        location_ids: list[str] = []
        if req.location:
            loc = locations.get(req.location)
            if loc is None:
                raise NotFound(f"lines[{i}].location: unknown location {req.location!r}")
            if loc.location_type not in STOCK_HOLDING:
                raise InvalidInput(
                    f"lines[{i}].location: {req.location!r} is a {loc.location_type}, which holds no stock"
                )
            location_ids = [loc.id]
        elif req.region:
            rows = in_region.get(req.region, [])
            if not rows:
                raise NotFound(f"lines[{i}].region: no stock locations in region {req.region!r}")
            location_ids = [row.id for row in rows]
        line = _Line(i, req, sku.id, sku.code, bool(sku.serialised), location_ids)
        if req.serials:
            if not sku.serialised:
                raise InvalidInput(f"lines[{i}].serials: SKU {req.sku!r} is not serialised")
            missing = [x for x in req.serials if (req.sku, x) not in units]
            if missing:
                raise NotFound(f"lines[{i}].serials: unknown serial {missing[0]!r} for SKU {req.sku!r}")
            line.units = [units[(req.sku, x)] for x in req.serials]
            for unit in line.units:
                if location_ids and unit.location_id not in location_ids:
                    where = req.location or f"region {req.region}"
                    raise Conflict(
                        f"lines[{i}].serials: unit {unit.serial!r} is not at {where}", reason="Unit elsewhere"
                    )
        lines.append(line)
    return _Resolved(lines, location_codes)


# --- create ----------------------------------------------------------------------------------------------


@dataclass
class _Take:
    line: _Line
    level: Level
    quantity: int
    units: list[_Unit] = field(default_factory=list)


def _short(
    line: _Line, requested: int, available: int, location: str | None, serials: list[str] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "line": line.index,
        "sku": line.sku_code,
        "location": location,
        "region": line.request.region,
        "requested": requested,
        "available": max(available, 0),
    }
    if serials:
        item["unavailableSerials"] = serials
    return item


def _plan(
    resolved: _Resolved, levels: dict[tuple[str, str], Level], units: dict[str, _Unit]
) -> tuple[list[_Take], list[dict[str, Any]]]:
    """Decide what each line takes from which level (nothing is written); collect every short line."""
    taken: dict[str, int] = defaultdict(int)
    takes: list[_Take] = []
    shorts: list[dict[str, Any]] = []
    codes = resolved.location_codes

    def left(level: Level | None) -> int:
        return 0 if level is None else level.available - taken[level.id]

    for line in resolved.lines:
        if line.units:
            by_level: dict[str, list[_Unit]] = defaultdict(list)
            busy = []
            for unit in line.units:
                current = units.get(unit.id, unit)
                if current.state != "in_stock" or current.hold_line_id is not None or not current.location_id:
                    busy.append(current.serial)
                else:
                    by_level[current.location_id].append(current)
            if busy:
                first = next(units.get(u.id, u) for u in line.units if u.serial == busy[0])
                shorts.append(
                    _short(
                        line,
                        len(line.units),
                        len(line.units) - len(busy),
                        line.request.location or codes.get(first.location_id or "", "nowhere"),
                        busy,
                    )
                )
                continue
            line_takes, ok = [], True
            for loc_id, group in sorted(by_level.items()):
                level = levels.get((line.sku_id, loc_id))
                if left(level) < len(group):
                    shorts.append(_short(line, len(group), left(level), codes.get(loc_id)))
                    ok = False
                    continue
                assert level is not None
                line_takes.append(_Take(line, level, len(group), group))
            if ok:
                for t in line_takes:
                    taken[t.level.id] += t.quantity
                takes.extend(line_takes)
            continue
        wanted = line.request.wanted
        candidates = [lv for loc in line.location_ids if (lv := levels.get((line.sku_id, loc))) is not None]
        if line.request.location:
            level = candidates[0] if candidates else None
            if left(level) < wanted:
                shorts.append(_short(line, wanted, left(level), line.request.location))
                continue
            assert level is not None
            taken[level.id] += wanted
            takes.append(_Take(line, level, wanted))
            continue
        # any location in the region: most available first, then location code; may split
        candidates.sort(key=lambda lv: (-left(lv), codes.get(lv.location_id, "")))
        total = sum(max(left(lv), 0) for lv in candidates)
        if total < wanted:
            shorts.append(_short(line, wanted, total, None))
            continue
        remaining = wanted
        for level in candidates:
            part = min(left(level), remaining)
            if part <= 0:
                continue
            taken[level.id] += part
            takes.append(_Take(line, level, part))
            remaining -= part
            if remaining == 0:
                break
    return takes, shorts


def _refusal(shorts: list[dict[str, Any]]) -> Conflict:
    parts = []
    for s in shorts:
        where = f"at {s['location']}" if s["location"] else f"in region {s['region']}"
        text_ = (
            f"lines[{s['line']}] {s['sku']} {where}: requested {s['requested']}, available {s['available']}"
        )
        if s.get("unavailableSerials"):
            text_ += f" (serials not available: {', '.join(s['unavailableSerials'])})"
        parts.append(text_)
    return Conflict("insufficient stock: " + "; ".join(parts), reason="Insufficient stock", details=shorts)


def create_reservation(
    session: Session, data: ReservationCreate, actor: str, *, commit: bool = True
) -> ReservationView:
    """Hold every line or none. Raises ``Conflict`` (409) listing each short line.

    On PostgreSQL, quantity lines at named locations first try ``fastpath.reserve`` (one statement); when it
    declines (it then wrote nothing) the general path below runs in the same transaction."""
    now = clock.now()
    if data.expiresAt <= now:
        raise InvalidInput("expiresAt: must be in the future")
    if data.customerId is not None and accounts.find_customer(session, data.customerId) is None:
        raise NotFound(f"customerId: customer {data.customerId!r} not found")
    if fastpath.eligible(session, data):
        solo = commit and fastpath.can_commit_with_statement(session)
        view = fastpath.reserve(session, data, actor, now, solo=solo)
        if view is not None:
            if commit:
                # after solo: committed on the server already; this ends the session transaction
                session.commit()
            return view

    return _create_general(session, data, actor, now, commit=commit)


def _create_general(
    session: Session, data: ReservationCreate, actor: str, now: datetime, *, commit: bool
) -> ReservationView:
    """Every request shape, on both databases: resolve, lock levels, release expired holds, plan, write."""
    resolved = _resolve(session, data.lines)
    levels = lock_levels(session, pairs=resolved.pairs(), now=now)
    ledger = Ledger(session, actor, now)
    release_expired(session, ledger, levels.values(), now)
    unit_ids = sorted({u.id for line in resolved.lines for u in line.units})
    units: dict[str, _Unit] = {}
    if unit_ids:  # units after levels, in id order
        units = {
            row.id: _Unit(*row)
            for row in session.execute(
                select(UNIT.c.id, UNIT.c.serial, UNIT.c.location_id, UNIT.c.state, UNIT.c.hold_line_id)
                .where(UNIT.c.id.in_(unit_ids))
                .order_by(UNIT.c.id)
                .with_for_update(key_share=True)
            )
        }
    takes, shorts = _plan(resolved, levels, units)
    if shorts:
        if commit:
            session.rollback()
        raise _refusal(shorts)

    res_row = {
        "id": new_id(),
        "status": "held",
        "expires_at": data.expiresAt,
        "customer_id": data.customerId,
        "quote_id": data.quoteId,
        "order_id": None,
        "created_at": now,
        "updated_at": now,
    }
    session.execute(table_of(Reservation).insert(), [res_row])
    reservation = Reservation(**res_row)
    views: list[LineView] = []
    line_rows: list[dict[str, Any]] = []
    for t in takes:
        line_id = new_id()
        serials = [u.serial for u in t.units] or None
        line_rows.append(
            {
                "id": line_id,
                "reservation_id": reservation.id,
                "line_no": t.line.index,
                "level_id": t.level.id,
                "sku_id": t.line.sku_id,
                "location_id": t.level.location_id,
                "quantity": t.quantity,
                "serial_numbers": serials,
                "status": "held",
                "expires_at": data.expiresAt,
            }
        )
        if t.units:
            for unit in t.units:
                ledger.move(
                    t.level,
                    "reserve",
                    reserved=1,
                    unit_id=unit.id,
                    unit_state="reserved",
                    reservation_id=reservation.id,
                )
        else:
            ledger.move(t.level, "reserve", reserved=t.quantity, reservation_id=reservation.id)
    session.execute(LINE.insert(), line_rows)
    for t, row in zip(takes, line_rows, strict=True):  # one line row per take, built just above
        if t.units:
            session.execute(
                update(UNIT)
                .where(UNIT.c.id.in_([u.id for u in t.units]))
                .values(state="reserved", hold_line_id=row["id"], updated_at=now)
            )
        views.append(
            LineView(
                ReservationLine(**row),
                t.line.sku_code,
                resolved.location_codes.get(t.level.location_id, t.level.location_id),
            )
        )
    ledger.flush()
    view = ReservationView(reservation, views)
    audit.record(
        session,
        actor=actor,
        action="stock.reserve",
        resource_type="reserveProductStock",
        resource_id=reservation.id,
        details={"lines": len(data.lines), "expiresAt": iso(data.expiresAt), "quoteId": data.quoteId},
    )
    publish(
        session,
        api=API,
        event_type="ReserveProductStockCreateEvent",
        resource_type="reserveProductStock",
        resource=render_reservation(view),
    )
    if commit:
        session.commit()
    return view


# --- loading, extend, release, commit ---------------------------------------------------------------------


def get_reservation(session: Session, reservation_id: str) -> ReservationView:
    reservation = session.get(Reservation, reservation_id)
    if reservation is None:
        raise NotFound(f"reserveProductStock {reservation_id!r} not found")
    return _view(session, reservation)


def _view(session: Session, reservation: Reservation) -> ReservationView:
    rows = session.execute(
        select(ReservationLine, Sku.code, Location.code)
        .join(Sku, Sku.id == ReservationLine.sku_id)
        .join(Location, Location.id == ReservationLine.location_id)
        .where(ReservationLine.reservation_id == reservation.id)
        .order_by(ReservationLine.line_no, ReservationLine.id)
    ).all()
    allocations = list(
        session.scalars(
            select(Allocation)
            .where(Allocation.reservation_id == reservation.id)
            .order_by(Allocation.created_at, Allocation.id)
        )
    )
    return ReservationView(
        reservation,
        [LineView(line, sku, loc) for line, sku, loc in rows],
        allocations[0] if allocations else None,
        allocations,
    )


def _lock_reservation(
    session: Session, reservation_id: str
) -> tuple[Reservation, dict[tuple[str, str], Level]]:
    """Lock the reservation's levels (primary-key order), then the reservation row itself."""
    level_ids = session.scalars(select(LINE.c.level_id).where(LINE.c.reservation_id == reservation_id)).all()
    if not level_ids and session.get(Reservation, reservation_id) is None:
        raise NotFound(f"reserveProductStock {reservation_id!r} not found")
    levels = lock_levels(session, ids=level_ids)
    reservation = session.scalar(
        select(Reservation)
        .where(Reservation.id == reservation_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if reservation is None:
        raise NotFound(f"reserveProductStock {reservation_id!r} not found")
    return reservation, levels


def extend_reservation(
    session: Session, reservation_id: str, expires_at: datetime, actor: str, *, commit: bool = True
) -> ReservationView:
    now = clock.now()
    reservation = session.scalar(
        select(Reservation)
        .where(Reservation.id == reservation_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if reservation is None:
        raise NotFound(f"reserveProductStock {reservation_id!r} not found")
    status = effective_status(reservation.status, reservation.expires_at, now)
    if status != "held":
        raise Conflict(
            f"reserveProductStock {reservation_id!r} is {status}; only a held reservation can be extended",
            reason="Illegal state transition",
        )
    if expires_at <= now:
        raise InvalidInput("expiresAt: must be in the future")
    held = session.scalar(
        select(func.count()).select_from(LINE).where(LINE.c.reservation_id == reservation_id, LINE_HELD)
    )
    changed = rowcount(
        session.execute(
            update(LINE)
            .where(LINE.c.reservation_id == reservation_id, LINE_HELD, LINE.c.expires_at > now)
            .values(expires_at=expires_at)
        )
    )
    if changed != held:
        raise Conflict(
            f"reserveProductStock {reservation_id!r} expired while being extended",
            reason="Illegal state transition",
        )
    old = reservation.expires_at
    reservation.expires_at, reservation.updated_at = expires_at, now
    session.flush()
    view = _view(session, reservation)
    audit.record(
        session,
        actor=actor,
        action="stock.reservation.extend",
        resource_type="reserveProductStock",
        resource_id=reservation_id,
        details={"from": iso(old), "to": iso(expires_at)},
    )
    publish(
        session,
        api=API,
        event_type="ReserveProductStockAttributeValueChangeEvent",
        resource_type="reserveProductStock",
        resource=render_reservation(view),
    )
    if commit:
        session.commit()
    return view


def release_reservation(
    session: Session, reservation_id: str, actor: str, *, commit: bool = True
) -> ReservationView:
    """Release a held reservation (an expired one is released as expired)."""
    now = clock.now()
    reservation, levels = _lock_reservation(session, reservation_id)
    if reservation.status != "held":
        raise Conflict(
            f"reserveProductStock {reservation_id!r} is already {reservation.status}",
            reason="Illegal state transition",
        )
    expired = reservation.expires_at <= now
    ledger = Ledger(session, actor, now)
    _release_lines(session, ledger, reservation.id, levels, "expired" if expired else "released")
    ledger.flush()
    reservation.status = "expired" if expired else "released"
    reservation.updated_at = now
    session.flush()
    view = _view(session, reservation)
    audit.record(
        session,
        actor=actor,
        action="stock.reservation.release",
        resource_type="reserveProductStock",
        resource_id=reservation_id,
        details={"status": reservation.status},
    )
    publish(
        session,
        api=API,
        event_type="ReserveProductStockStateChangeEvent",
        resource_type="reserveProductStock",
        resource=render_reservation(view),
    )
    if commit:
        session.commit()
    return view


def _release_lines(
    session: Session, ledger: Ledger, reservation_id: str, levels: dict[tuple[str, str], Level], status: str
) -> None:
    by_id = {lv.id: lv for lv in levels.values()}
    rows = session.execute(
        update(LINE)
        .where(LINE.c.reservation_id == reservation_id, LINE_HELD)
        .values(status=status)
        .returning(LINE.c.id, LINE.c.level_id, LINE.c.quantity, LINE.c.serial_numbers)
    ).all()
    units = held_units(session, [r.id for r in rows if r.serial_numbers])
    free_units(session, [u for us in units.values() for u in us], ledger.now)
    reason = "expired" if status == "expired" else None
    for r in sorted(rows, key=lambda r: r.id):
        level = by_id[r.level_id]
        if r.serial_numbers:
            for unit_id in units.get(r.id, []):
                ledger.move(
                    level,
                    "release",
                    reserved=-1,
                    unit_id=unit_id,
                    unit_state="in_stock",
                    reservation_id=reservation_id,
                    reason=reason,
                )
        else:
            ledger.move(level, "release", reserved=-r.quantity, reservation_id=reservation_id, reason=reason)


def commit_reservation(
    session: Session, reservation_id: str, order_id: str, actor: str, *, commit: bool = True
) -> ReservationView:
    """Turn a live hold into an allocation for ``order_id``; serialised quantity lines pick their units."""
    now = clock.now()
    reservation, levels = _lock_reservation(session, reservation_id)
    status = effective_status(reservation.status, reservation.expires_at, now)
    if status != "held":
        raise Conflict(
            f"reserveProductStock {reservation_id!r} is {status}; only a live hold can be committed",
            reason="Illegal state transition",
        )
    by_id = {lv.id: lv for lv in levels.values()}
    lines = session.execute(
        select(
            LINE.c.id,
            LINE.c.level_id,
            LINE.c.quantity,
            LINE.c.serial_numbers,
            LINE.c.sku_id,
            LINE.c.location_id,
        )
        .where(LINE.c.reservation_id == reservation_id, LINE_HELD)
        .order_by(LINE.c.id)
    ).all()
    serialised = set(
        session.scalars(select(Sku.id).where(Sku.id.in_({r.sku_id for r in lines}), Sku.serialised.is_(True)))
    )
    ledger = Ledger(session, actor, now)
    held = held_units(session, [r.id for r in lines if r.serial_numbers])
    for r in lines:
        level = by_id[r.level_id]
        if r.serial_numbers:
            unit_ids = held.get(r.id, [])
        elif r.sku_id in serialised:
            unit_ids = list(
                session.scalars(
                    select(UNIT.c.id)
                    .where(
                        UNIT.c.sku_id == r.sku_id,
                        UNIT.c.location_id == r.location_id,
                        UNIT.c.state == "in_stock",
                    )
                    .order_by(UNIT.c.id)
                    .limit(r.quantity)
                    .with_for_update(key_share=True)
                )
            )
            if len(unit_ids) != r.quantity:
                raise Conflict(
                    f"{r.quantity} units needed at level {r.level_id}, {len(unit_ids)} in stock",
                    reason="Inconsistent stock",
                )
        else:
            ledger.move(
                level,
                "commit",
                reserved=-r.quantity,
                allocated=r.quantity,
                reservation_id=reservation_id,
                reference=order_id,
            )
            continue
        session.execute(
            update(UNIT)
            .where(UNIT.c.id.in_(unit_ids))
            .values(state="allocated", hold_line_id=r.id, order_id=order_id, updated_at=now)
        )
        for unit_id in unit_ids:
            ledger.move(
                level,
                "commit",
                reserved=-1,
                allocated=1,
                unit_id=unit_id,
                unit_state="allocated",
                reservation_id=reservation_id,
                reference=order_id,
            )
    allocation_id = new_id()
    session.execute(
        update(LINE)
        .where(LINE.c.reservation_id == reservation_id, LINE_HELD)
        .values(status="committed", allocation_id=allocation_id)
    )
    ledger.flush()
    reservation.status, reservation.order_id, reservation.updated_at = "committed", order_id, now
    allocation = Allocation(
        id=allocation_id,
        reservation_id=reservation_id,
        order_id=order_id,
        status="active",
        created_at=now,
        updated_at=now,
    )
    session.add(allocation)
    session.flush()
    view = _view(session, reservation)
    audit.record(
        session,
        actor=actor,
        action="stock.reservation.commit",
        resource_type="reserveProductStock",
        resource_id=reservation_id,
        details={"orderId": order_id, "allocationId": allocation.id},
    )
    publish(
        session,
        api=API,
        event_type="ReserveProductStockStateChangeEvent",
        resource_type="reserveProductStock",
        resource=render_reservation(view),
    )
    if commit:
        session.commit()
    return view


# --- availability ----------------------------------------------------------------------------------------


@dataclass
class LineAvailability:
    line: int
    sku: str
    requested: int
    available: int
    sufficient: bool
    locations: list[dict[str, Any]]  # [{"location", "available"}] where stock is, most first
    replenishment: list[dict[str, Any]]  # open requests: [{"location", "quantity", "expectedAt"}]
    serials: list[dict[str, Any]] | None = None  # per requested serial: state, location, available

    def as_dict(self) -> dict[str, Any]:
        doc = {
            "line": self.line,
            "sku": self.sku,
            "requested": self.requested,
            "available": self.available,
            "sufficient": self.sufficient,
            "locations": self.locations,
            "replenishment": self.replenishment,
        }
        if self.serials is not None:
            doc["serials"] = self.serials
        return doc


def expired_held(session: Session, level_ids: list[str], now: datetime) -> dict[str, int]:
    """Quantity of expired, not yet swept holds per level: no longer reserved."""
    if not level_ids:
        return {}
    return dict(
        session.execute(
            select(LINE.c.level_id, func.sum(LINE.c.quantity))
            .where(LINE.c.level_id.in_(sorted(set(level_ids))), LINE_HELD, LINE.c.expires_at <= now)
            .group_by(LINE.c.level_id)
        ).all()
    )


def check_availability(session: Session, requests: list[LineRequest]) -> list[LineAvailability]:
    """Answer per line without locking: available now (expired holds count as free), where, and when open
    replenishment requests are expected. Does not reserve anything."""
    now = clock.now()
    resolved = _resolve(session, requests)
    pairs = sorted(resolved.pairs())
    levels: dict[tuple[str, str], Any] = {}
    if pairs:  # one round trip: levels, expired-but-unswept holds, open replenishment
        expired = (
            select(func.coalesce(func.sum(LINE.c.quantity), 0))
            .where(LINE.c.level_id == LEVEL.c.id, LINE_HELD, LINE.c.expires_at <= now)
            .scalar_subquery()
            .label("expired")
        )
        requests_t = table_of(ReplenishmentRequest)
        open_repl = text("stock_replenishment_request.status = 'open'")
        repl_qty = (
            select(func.sum(requests_t.c.quantity))
            .where(requests_t.c.level_id == LEVEL.c.id, open_repl)
            .scalar_subquery()
            .label("repl_qty")
        )
        repl_at = (
            select(func.min(requests_t.c.expected_at))
            .where(requests_t.c.level_id == LEVEL.c.id, open_repl)
            .scalar_subquery()
            .label("repl_at")
        )
        levels = {
            (r.sku_id, r.location_id): r
            for r in session.execute(
                select(
                    LEVEL.c.id,
                    LEVEL.c.sku_id,
                    LEVEL.c.location_id,
                    LEVEL.c.on_hand,
                    LEVEL.c.reserved,
                    LEVEL.c.allocated,
                    expired,
                    repl_qty,
                    repl_at,
                ).where(pair_condition(session, pairs))
            )
        }
    codes = resolved.location_codes

    def avail(row: Any) -> int:
        return int(row.on_hand - row.reserved - row.allocated + int(row.expired or 0))

    results = []
    for line in resolved.lines:
        serial_info: list[dict[str, Any]] | None = None
        if line.units:
            serial_info = []
            for u in line.units:
                expired_hold = (
                    u.state == "reserved"
                    and u.hold_status == "held"
                    and u.hold_expires_at is not None
                    and u.hold_expires_at <= now
                )
                free = u.location_id is not None and (u.state == "in_stock" or expired_hold)
                serial_info.append(
                    {
                        "serial": u.serial,
                        "state": u.state,
                        "location": codes.get(u.location_id or ""),
                        "available": free,
                    }
                )
            loc_ids = sorted({u.location_id for u in line.units if u.location_id})
        else:
            loc_ids = line.location_ids
        places: list[dict[str, Any]] = []
        repl: list[dict[str, Any]] = []
        for loc in loc_ids:
            row = levels.get((line.sku_id, loc))
            if row is None:
                continue
            places.append({"location": codes.get(loc, loc), "available": max(avail(row), 0)})
            if row.repl_qty:
                repl.append(
                    {
                        "location": codes.get(loc, loc),
                        "quantity": int(row.repl_qty),
                        "expectedAt": iso(_utc(row.repl_at)),
                    }
                )
        places.sort(key=lambda p: (-p["available"], p["location"]))
        repl.sort(key=lambda r: (r["expectedAt"] is None, r["expectedAt"] or "", r["location"]))
        total = sum(p["available"] for p in places)
        if serial_info is not None:
            total = min(total, sum(1 for s in serial_info if s["available"]))
        wanted = line.request.wanted
        results.append(
            LineAvailability(
                line=line.index,
                sku=line.sku_code,
                requested=wanted,
                available=total,
                sufficient=total >= wanted,
                locations=[p for p in places if p["available"] > 0],
                replenishment=repl,
                serials=serial_info,
            )
        )
    return results


def _utc(value: Any) -> datetime | None:
    """Aggregates bypass the UTCDateTime type: SQLite returns text, PostgreSQL an aware datetime."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- sweeper ---------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    lines_released: int = 0
    reservations_expired: int = 0
    rack_holds_expired: int = 0


def sweep_expired(session: Session, *, actor: str = "system:sweeper", batch: int = 200) -> SweepResult:
    """Release every hold whose ``expires_at`` has passed; one transaction per batch of levels."""
    from turnup.inventory.physical import racks

    result = SweepResult()
    while True:
        now = clock.now()
        level_ids = list(
            session.scalars(
                select(LINE.c.level_id)
                .where(LINE_HELD, LINE.c.expires_at <= now)
                .distinct()
                .order_by(LINE.c.level_id)
                .limit(batch)
            )
        )
        if not level_ids:
            session.rollback()
            break
        levels = lock_levels(session, ids=level_ids)
        ledger = Ledger(session, actor, now)
        result.lines_released += release_expired(session, ledger, levels.values(), now)
        ledger.flush()
        session.commit()
    now = clock.now()
    expired = list(
        session.scalars(
            update(Reservation)
            .where(
                text("stock_reservation.status = 'held'"),
                Reservation.expires_at <= now,
                ~select(LINE.c.id).where(LINE.c.reservation_id == Reservation.id, LINE_HELD).exists(),
            )
            .values(status="expired", updated_at=now)
            .returning(Reservation.id)
        )
    )
    for reservation_id in sorted(expired):
        reservation = session.get(Reservation, reservation_id, populate_existing=True)
        assert reservation is not None
        audit.record(
            session,
            actor=actor,
            action="stock.reservation.expire",
            resource_type="reserveProductStock",
            resource_id=reservation_id,
        )
        publish(
            session,
            api=API,
            event_type="ReserveProductStockStateChangeEvent",
            resource_type="reserveProductStock",
            resource=render_reservation(_view(session, reservation)),
        )
    result.reservations_expired = len(expired)
    session.commit()
    result.rack_holds_expired = racks.sweep_expired_rack_holds(session, actor=actor)
    return result


__all__ = [
    "LineAvailability",
    "ReservationView",
    "StockUnit",
    "SweepResult",
    "check_availability",
    "commit_reservation",
    "create_reservation",
    "extend_reservation",
    "get_reservation",
    "release_reservation",
    "sweep_expired",
]
