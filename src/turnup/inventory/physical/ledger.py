"""The ledger engine shared by every stock-changing use case.

Rules every writer follows (this is what keeps the invariants and avoids deadlocks):

1. Lock the ``stock_level`` rows involved, and only those, in primary-key order, with one
   ``SELECT … ORDER BY id FOR NO KEY UPDATE`` (``lock_levels``). On SQLite the whole transaction already holds
   the write lock (``BEGIN IMMEDIATE``).
2. Only then lock/change serialised units or reservation lines of those levels (units in id order).
3. Release holds on the locked levels whose ``expires_at`` has passed (``release_expired``) before judging
   availability, so an expired hold never blocks the next quote even if the sweeper has not run.
4. Record every quantity change through ``Ledger.move`` (one immutable ``stock_movement`` row) and write the
   new totals with ``Ledger.flush``; CHECK constraints on ``stock_level`` are the last line of defence.

``fastpath`` (PostgreSQL, quantity lines at named locations) follows the same rules inside one SQL
statement: the same lock in the same order, no write at all when an expired hold would need releasing or a
reorder point would be crossed (the general path then runs), one ``reserve`` ledger row per line and the
level totals in the same statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, false, func, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from turnup.inventory.physical.orm import (
    Handover,
    ReplenishmentRequest,
    ReservationLine,
    StockLevel,
    StockMovement,
    StockUnit,
)
from turnup.inventory.physical.render import API, render_replenishment
from turnup.kernel.db import table_of
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

LEVEL = table_of(StockLevel)
LINE = table_of(ReservationLine)
UNIT = table_of(StockUnit)
MOVE = table_of(StockMovement)
# Literal predicates so PostgreSQL can match the partial indexes.
LINE_HELD = text("stock_reservation_line.status = 'held'")


@dataclass
class Level:
    """A locked ``stock_level`` row, changed in memory and written back by ``Ledger.flush``."""

    id: str
    sku_id: str
    location_id: str
    on_hand: int
    reserved: int
    allocated: int
    quarantined: int
    reorder_point: int | None
    reorder_quantity: int | None
    lead_time_days: int | None
    expired: int | None = None  # held lines past expiry on this level, when known (see lock_levels)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved - self.allocated


_LEVEL_COLUMNS = (
    LEVEL.c.id,
    LEVEL.c.sku_id,
    LEVEL.c.location_id,
    LEVEL.c.on_hand,
    LEVEL.c.reserved,
    LEVEL.c.allocated,
    LEVEL.c.quarantined,
    LEVEL.c.reorder_point,
    LEVEL.c.reorder_quantity,
    LEVEL.c.lead_time_days,
)


def pair_condition(session: Session, pairs: Iterable[tuple[str, str]]) -> Any:
    """``stock_level`` rows of these (sku_id, location_id) pairs. SQLite scans the whole table for a
    row-value ``IN`` list, so there the pairs become OR-ed equalities, which use the unique (sku_id,
    location_id) index."""
    pairs = sorted(set(pairs))
    if not pairs:
        return false()
    if session.get_bind().dialect.name == "sqlite":
        return or_(*(and_(LEVEL.c.sku_id == s, LEVEL.c.location_id == loc) for s, loc in pairs))
    return tuple_(LEVEL.c.sku_id, LEVEL.c.location_id).in_(pairs)


def lock_levels(
    session: Session,
    *,
    pairs: Iterable[tuple[str, str]] = (),
    ids: Iterable[str] = (),
    now: datetime | None = None,
) -> dict[tuple[str, str], Level]:
    """Lock the given levels (by (sku_id, location_id) or id) in primary-key order; missing pairs are absent.

    With ``now``, the same statement also counts each level's expired-but-held lines, so the common case
    (nothing expired) needs no extra round trip for the lazy release."""
    pairs, ids = sorted(set(pairs)), sorted(set(ids))
    if not pairs and not ids:
        return {}
    condition = pair_condition(session, pairs) if pairs else LEVEL.c.id.in_(ids)
    if pairs and ids:
        condition = condition | LEVEL.c.id.in_(ids)
    columns: list[Any] = list(_LEVEL_COLUMNS)
    if now is not None:
        columns.append(
            select(func.count())
            .select_from(LINE)
            .where(LINE.c.level_id == LEVEL.c.id, LINE_HELD, LINE.c.expires_at <= now)
            .scalar_subquery()
        )
    stmt = select(*columns).where(condition).order_by(LEVEL.c.id).with_for_update(key_share=True)
    return {(row.sku_id, row.location_id): Level(*row) for row in session.execute(stmt)}


def ensure_levels(session: Session, pairs: Iterable[tuple[str, str]], now: datetime) -> None:
    """Create missing level rows (receipts and transfers into new places); safe under concurrency."""
    rows = [
        {
            "id": new_id(),
            "sku_id": s,
            "location_id": loc,
            "on_hand": 0,
            "reserved": 0,
            "allocated": 0,
            "quarantined": 0,
            "created_at": now,
            "updated_at": now,
        }
        for s, loc in sorted(set(pairs))
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(LEVEL) if dialect == "postgresql" else sqlite.insert(LEVEL)
    session.execute(ins.on_conflict_do_nothing(index_elements=["sku_id", "location_id"]), rows)


class Ledger:
    """Collects movements and level changes of one transaction."""

    def __init__(self, session: Session, actor: str, now: datetime) -> None:
        self.session, self.actor, self.now = session, actor, now
        self.moves: list[dict[str, Any]] = []
        self.touched: dict[str, Level] = {}
        self.received: set[str] = set()

    def move(
        self,
        level: Level,
        kind: str,
        *,
        on_hand: int = 0,
        reserved: int = 0,
        allocated: int = 0,
        quarantined: int = 0,
        unit_id: str | None = None,
        unit_state: str | None = None,
        reservation_id: str | None = None,
        reference: str | None = None,
        reason: str | None = None,
        location_id: str | None = None,
    ) -> None:
        level.on_hand += on_hand
        level.reserved += reserved
        level.allocated += allocated
        level.quarantined += quarantined
        self.touched[level.id] = level
        if kind == "receipt" or (kind == "refurbish" and on_hand > 0):
            self.received.add(level.id)
        self.moves.append(
            {
                "at": self.now,
                "kind": kind,
                "sku_id": level.sku_id,
                "location_id": location_id or level.location_id,
                "on_hand_delta": on_hand,
                "reserved_delta": reserved,
                "allocated_delta": allocated,
                "quarantined_delta": quarantined,
                "unit_id": unit_id,
                "unit_state": unit_state,
                "reservation_id": reservation_id,
                "reference": reference,
                "reason": reason,
                "actor": self.actor,
            }
        )

    def note(
        self,
        sku_id: str,
        location_id: str | None,
        kind: str,
        *,
        unit_id: str | None = None,
        unit_state: str | None = None,
        reservation_id: str | None = None,
        reference: str | None = None,
        reason: str | None = None,
    ) -> None:
        """A ledger entry that changes no quantity (no writer uses it today: installing at a customer site
        is a ``move`` that adds on hand at the site's level)."""
        self.moves.append(
            {
                "at": self.now,
                "kind": kind,
                "sku_id": sku_id,
                "location_id": location_id,
                "on_hand_delta": 0,
                "reserved_delta": 0,
                "allocated_delta": 0,
                "quarantined_delta": 0,
                "unit_id": unit_id,
                "unit_state": unit_state,
                "reservation_id": reservation_id,
                "reference": reference,
                "reason": reason,
                "actor": self.actor,
            }
        )

    def flush(self) -> None:
        if self.touched:  # one statement: the rows are locked, so absolute values are safe
            levels = sorted(self.touched.values(), key=lambda lv: lv.id)
            values: dict[str, Any] = {"updated_at": self.now}
            for column in ("on_hand", "reserved", "allocated", "quarantined"):
                if len(levels) == 1:
                    values[column] = getattr(levels[0], column)
                else:
                    values[column] = case({lv.id: getattr(lv, column) for lv in levels}, value=LEVEL.c.id)
            self.session.execute(
                update(LEVEL).where(LEVEL.c.id.in_([lv.id for lv in levels])).values(**values)
            )
        if self.moves:  # executemany: psycopg pipelines it, SQLite loops in C
            self.session.execute(insert(MOVE), self.moves)
        self._replenishment()
        self.touched, self.moves, self.received = {}, [], set()

    def _replenishment(self) -> None:
        """Receipts close open requests; falling below the reorder point opens one (one per level)."""
        for level_id in sorted(self.received):
            closed = self.session.scalars(
                select(ReplenishmentRequest).where(
                    ReplenishmentRequest.level_id == level_id, ReplenishmentRequest.status == "open"
                )
            ).all()
            for req in closed:
                req.status, req.closed_at = "closed", self.now
                self.session.flush()
                publish(
                    self.session,
                    api=API,
                    event_type="ReplenishmentRequestStateChangeEvent",
                    resource_type="replenishmentRequest",
                    resource=render_replenishment(req),
                )
        for level in sorted(self.touched.values(), key=lambda lv: lv.id):
            if level.reorder_point is None or level.available >= level.reorder_point:
                continue
            existing = self.session.scalar(
                select(ReplenishmentRequest.id).where(
                    ReplenishmentRequest.level_id == level.id, ReplenishmentRequest.status == "open"
                )
            )
            if existing:
                continue
            quantity = level.reorder_quantity or max(level.reorder_point - level.available, 1)
            req = ReplenishmentRequest(
                id=new_id(),
                level_id=level.id,
                sku_id=level.sku_id,
                location_id=level.location_id,
                quantity=quantity,
                status="open",
                created_at=self.now,
                expected_at=(
                    self.now + timedelta(days=level.lead_time_days)
                    if level.lead_time_days is not None
                    else None
                ),
                comment=f"available {level.available} below reorder point {level.reorder_point}",
            )
            self.session.add(req)
            self.session.flush()
            publish(
                self.session,
                api=API,
                event_type="ReplenishmentRequestCreateEvent",
                resource_type="replenishmentRequest",
                resource=render_replenishment(req),
            )


def release_expired(session: Session, ledger: Ledger, levels: Iterable[Level], now: datetime) -> int:
    """Release held lines on these (locked) levels whose expiry has passed; returns how many lines."""
    by_id = {lv.id: lv for lv in levels}
    if not by_id or all(lv.expired == 0 for lv in by_id.values()):
        return 0
    rows = session.execute(
        update(LINE)
        .where(LINE.c.level_id.in_(sorted(by_id)), LINE_HELD, LINE.c.expires_at <= now)
        .values(status="expired")
        .returning(LINE.c.id, LINE.c.reservation_id, LINE.c.level_id, LINE.c.quantity, LINE.c.serial_numbers)
    ).all()
    if not rows:
        return 0
    units_by_line = held_units(session, [r.id for r in rows if r.serial_numbers])
    if units_by_line:
        free_units(session, [u for us in units_by_line.values() for u in us], now)
    for r in sorted(rows, key=lambda r: r.id):
        level = by_id[r.level_id]
        if r.serial_numbers:
            for unit_id in units_by_line.get(r.id, []):
                ledger.move(
                    level,
                    "release",
                    reserved=-1,
                    unit_id=unit_id,
                    unit_state="in_stock",
                    reservation_id=r.reservation_id,
                    reason="expired",
                )
        else:
            ledger.move(
                level, "release", reserved=-r.quantity, reservation_id=r.reservation_id, reason="expired"
            )
    return len(rows)


def held_units(session: Session, line_ids: Iterable[str]) -> dict[str, list[str]]:
    """Unit ids held by each of these lines (callers hold the lines' level locks)."""
    line_ids = sorted(set(line_ids))
    if not line_ids:
        return {}
    result: dict[str, list[str]] = {}
    for unit_id, line_id in session.execute(
        select(UNIT.c.id, UNIT.c.hold_line_id).where(UNIT.c.hold_line_id.in_(line_ids)).order_by(UNIT.c.id)
    ):
        result.setdefault(line_id, []).append(unit_id)
    return result


def free_units(session: Session, unit_ids: Iterable[str], now: datetime) -> None:
    ids = sorted(set(unit_ids))
    if ids:
        session.execute(
            update(UNIT).where(UNIT.c.id.in_(ids)).values(state="in_stock", hold_line_id=None, updated_at=now)
        )


def dispatched_status(session: Session, allocation_id: str, otherwise: str = "issued") -> str:
    """``shipped`` when every handed-over line of the allocation was shipped, ``issued`` when some was
    fitted or picked up; ``otherwise`` when none was handed over."""
    methods = set(session.scalars(select(Handover.method).where(Handover.allocation_id == allocation_id)))
    if not methods:
        return otherwise
    return "shipped" if methods == {"ship"} else "issued"
