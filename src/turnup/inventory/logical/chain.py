"""The allocation engine shared by IP prefixes/addresses, VLANs, ASNs and identifiers.

A space ``[lo, hi)`` is partitioned into aligned power-of-two blocks (a buddy system) stored as rows that
link ``lo -> hi`` up to an ``end`` sentinel. Finding space is one index probe on a partial index of free
blocks (best-fit: smallest ``k >= r``; first-fit: lowest ``lo``); splitting inserts at most ``k - r`` free
buddies; releasing merges buddies back. Nothing here reads more than a handful of rows, however many
children a space has. Design and proofs: docs/adr/0002-ipam-allocation.md.

Concurrency: PostgreSQL locks only the block rows it changes (``FOR UPDATE SKIP LOCKED``; a waiting
``FOR UPDATE`` only when every candidate is locked by someone else), so allocations in one space proceed in
parallel on different blocks and spaces never wait for each other. SQLite serialises writers
(``BEGIN IMMEDIATE``). Nothing here commits: callers commit once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnClause, Row, delete, insert, literal_column, select, update
from sqlalchemy.orm import Session

from turnup.inventory.logical.codec import decompose, hexkey, split_plan, unhex
from turnup.inventory.logical.orm import LogicalBlock, LogicalSpace
from turnup.kernel import clock
from turnup.kernel.db import table_of
from turnup.kernel.errors import Conflict
from turnup.kernel.ids import new_id

T = table_of(LogicalBlock)
BlockRow = Row[*tuple[Any, ...]]  # a logical_block row as selected here (some of its columns)
FREE: ColumnClause[str] = literal_column(
    "'free'"
)  # a literal, so PostgreSQL always matches the partial indexes
RECLAIM_BATCH = 64
MAX_ATTEMPTS = 2000
POLLS = 60


@dataclass
class Taken:
    """One block taken out of a space (what the caller renders and records)."""

    id: str
    space_id: str
    lo: int
    k: int
    state: str
    until: datetime | None
    reservation_id: str | None
    service_id: str | None
    description: str | None
    allocated_at: datetime


class Exhausted(Conflict):
    reason = "Pool exhausted"


def init_chain(session: Session, space_id: str, lo: int, hi: int) -> None:
    """Partition a new space into free aligned blocks plus the end sentinel."""
    rows = [
        dict(id=new_id(), space_id=space_id, lo=hexkey(s), hi=hexkey(s + (1 << k)), k=k, state="free")
        for s, k in decompose(lo, hi)
    ]
    rows.append(dict(id=new_id(), space_id=space_id, lo=hexkey(hi), hi=None, k=None, state="end"))
    session.execute(insert(T), rows)


def _candidate(session: Session, space_id: str, r: int, policy: str, lock: str | None) -> BlockRow | None:
    stmt = select(T.c.id, T.c.lo, T.c.k).where(T.c.space_id == space_id, T.c.state == FREE, T.c.k >= r)
    stmt = stmt.order_by(T.c.k, T.c.lo) if policy == "best-fit" else stmt.order_by(T.c.lo)
    stmt = stmt.limit(1)
    if lock == "skip":
        stmt = stmt.with_for_update(skip_locked=True)
    elif lock == "wait":
        stmt = stmt.with_for_update()
    return session.execute(stmt).first()


def _containing(session: Session, space_id: str, at: int) -> BlockRow | None:
    stmt = (
        select(T.c.id, T.c.lo, T.c.hi, T.c.k, T.c.state)
        .where(T.c.space_id == space_id, T.c.lo <= hexkey(at))
        .order_by(T.c.lo.desc())
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return session.execute(stmt).first()


def _pause(attempt: int) -> None:
    """Back off while the blocks we need are locked by transactions about to commit.

    We poll instead of waiting on a row lock: a waiting ``FOR UPDATE`` can keep a lock on a row it then
    filters out, and that stray lock can close a deadlock cycle with the chain's foreign-key checks.
    """
    time.sleep(min(0.0005 * (attempt + 1), 0.02))


def take(
    session: Session,
    space: LogicalSpace,
    r: int,
    *,
    policy: str = "best-fit",
    target: int | None = None,
    state: str = "allocated",
    until: datetime | None = None,
    reservation_id: str | None = None,
    service_id: str | None = None,
    description: str | None = None,
    label: str = "value",
    what: str = "block",
) -> Taken:
    """Take a free aligned block of size ``2**r`` (the next one by ``policy``, or exactly ``target``)."""
    pg = session.get_bind().dialect.name == "postgresql"
    reclaim(session, space.id)
    for attempt in range(MAX_ATTEMPTS):
        if target is None:
            row = _candidate(session, space.id, r, policy, "skip")
            if row is None:
                if not pg or _candidate(session, space.id, r, policy, None) is None:
                    raise Exhausted(f"{label}: pool {space.name!r} has no free {what} left")
                if attempt < POLLS:
                    _pause(attempt)  # every candidate is being split by someone else right now
                    continue
                # still locked after polling: queue on the lock (a rare deadlock is retried by the caller)
                row = _candidate(session, space.id, r, policy, "wait")
                if row is None:
                    continue
            lo, k = unhex(row.lo), row.k
            at = lo
        else:
            found = _containing(session, space.id, target)
            if found is None or found.hi is None:
                raise Conflict(f"{label}: {what} is outside pool {space.name!r}")
            if unhex(found.hi) <= target:  # the containing block is locked by someone: look again
                _pause(attempt)
                continue
            if found.state != "free" or found.k < r or unhex(found.lo) + (1 << found.k) < target + (1 << r):
                raise Conflict(
                    f"{label}: {what} is not free in pool {space.name!r} (overlaps a {found.state} block)",
                    reason="Already allocated",
                )
            row, lo, k, at = found, unhex(found.lo), found.k, target
        return _split_and_take(
            session,
            space.id,
            row.id,
            lo,
            k,
            at,
            r,
            state=state,
            until=until,
            reservation_id=reservation_id,
            service_id=service_id,
            description=description,
        )
    raise Conflict(f"{label}: pool {space.name!r} is too busy; retry", reason="Busy")


def _split_and_take(
    session: Session,
    space_id: str,
    old_id: str,
    lo: int,
    k: int,
    at: int,
    r: int,
    *,
    state: str,
    until: datetime | None,
    reservation_id: str | None,
    service_id: str | None,
    description: str | None,
) -> Taken:
    pieces, target = split_plan(lo, k, at, r)
    now = clock.now()
    taken_id = new_id()
    blocks = sorted([(s, kk, False) for s, kk in pieces] + [(target[0], target[1], True)])
    end = lo + (1 << k)
    rows = []
    for i, (start, kk, is_target) in enumerate(blocks):
        nxt = blocks[i + 1][0] if i + 1 < len(blocks) else end
        row = dict(
            id=taken_id if is_target else new_id(),
            space_id=space_id,
            lo=hexkey(start),
            hi=hexkey(nxt),
            k=kk,
            state=state if is_target else "free",
            until=until if is_target else None,
            reservation_id=reservation_id if is_target else None,
            service_id=service_id if is_target else None,
            description=description if is_target else None,
            allocated_at=now if is_target else None,
        )
        rows.append(row)
    first = rows[0]  # starts at lo: the existing row is rewritten in place (its lo never changes)
    if first["id"] != taken_id:
        first["id"] = old_id
    session.execute(
        update(T)
        .where(T.c.id == old_id)
        .values(
            id=first["id"],
            hi=first["hi"],
            k=first["k"],
            state=first["state"],
            until=first["until"],
            reservation_id=first["reservation_id"],
            service_id=first["service_id"],
            description=first["description"],
            allocated_at=first["allocated_at"],
        )
    )
    if len(rows) > 1:
        session.execute(insert(T), rows[1:])
    return Taken(
        id=taken_id,
        space_id=space_id,
        lo=target[0],
        k=r,
        state=state,
        until=until,
        reservation_id=reservation_id,
        service_id=service_id,
        description=description,
        allocated_at=now,
    )


def free_block(session: Session, space_id: str, block_id: str, lo: int, k: int) -> None:
    """Make a (locked) block free and merge it with free buddies."""
    session.execute(
        update(T)
        .where(T.c.id == block_id)
        .values(
            state="free",
            until=None,
            reservation_id=None,
            service_id=None,
            description=None,
            allocated_at=None,
            child_space_id=None,
        )
    )
    coalesce(session, space_id, block_id, lo, k)


def coalesce(session: Session, space_id: str, block_id: str, lo: int, k: int) -> None:
    while True:
        buddy = lo ^ (1 << k)
        row = session.execute(
            select(T.c.id, T.c.k, T.c.state, T.c.hi)
            .where(T.c.space_id == space_id, T.c.lo == hexkey(buddy))
            .with_for_update(skip_locked=True)
        ).first()
        if row is None or row.state != "free" or row.k != k:
            return
        if buddy > lo:
            lower_id, upper_id, upper_hi = block_id, row.id, row.hi
        else:
            lower_id, upper_id, upper_hi = row.id, block_id, hexkey(lo + (1 << k))
        session.execute(delete(T).where(T.c.id == upper_id))
        session.execute(update(T).where(T.c.id == lower_id).values(k=k + 1, hi=upper_hi))
        block_id, lo, k = lower_id, min(lo, buddy), k + 1


def reclaim(session: Session, space_id: str) -> int:
    """Return expired reservations and ended quarantines of one space to the free list (bounded batch)."""
    now = clock.now()
    rows = session.execute(
        select(T.c.id, T.c.lo, T.c.k)
        .where(
            T.c.space_id == space_id,
            T.c.state.in_([literal_column("'quarantine'"), literal_column("'reserved'")]),
            T.c.until <= now,
        )
        .order_by(T.c.until)
        .limit(RECLAIM_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        free_block(session, space_id, row.id, unhex(row.lo), row.k)
    return len(rows)


def lock_block(session: Session, block_id: str) -> BlockRow | None:
    return session.execute(
        select(
            T.c.id,
            T.c.space_id,
            T.c.lo,
            T.c.k,
            T.c.state,
            T.c.until,
            T.c.reservation_id,
            T.c.service_id,
            T.c.description,
            T.c.allocated_at,
            T.c.child_space_id,
        )
        .where(T.c.id == block_id)
        .with_for_update()
    ).first()


def release(session: Session, space: LogicalSpace, row: BlockRow, quarantine: bool = True) -> datetime | None:
    """Release a locked reserved/allocated block: into quarantine, or straight back to the free list.

    Returns the end of the quarantine (None when freed at once).
    """
    if quarantine and row.state == "allocated" and space.quarantine_seconds > 0:
        until = clock.now() + timedelta(seconds=space.quarantine_seconds)
        session.execute(
            update(T).where(T.c.id == row.id).values(state="quarantine", until=until, reservation_id=None)
        )
        return until
    free_block(session, space.id, row.id, unhex(row.lo), row.k)
    return None


def usage(session: Session, space_id: str) -> dict[str, int]:
    """Size in units (addresses, ids) per block state. Reads one row per block: a report, not a probe."""
    from sqlalchemy import func

    totals: dict[str, int] = {}
    for state, k, count in session.execute(
        select(T.c.state, T.c.k, func.count())
        .where(T.c.space_id == space_id, T.c.state != "end")
        .group_by(T.c.state, T.c.k)
    ):
        totals[state] = totals.get(state, 0) + count * (1 << k)
    return totals
