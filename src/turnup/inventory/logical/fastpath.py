"""PostgreSQL fast path for the common allocation: the next free IPv4 prefix of a length from a pool.

``services.allocate`` tries this first for requests without ``prefix``/``value`` on IPv4 pools
(PostgreSQL with psycopg 3). One SQL statement does what the general path does in about nine statements
through the ORM (pool read, reclaim probe, candidate probe, split, buddies, audit, outbox event, hub lookup):

1. check that the pool row still equals the copy cached in this process (so the event's pool name and the
   policy used are current) and that no quarantined or reserved block of the pool is due for reclaiming;
2. lock the candidate free block with the probe of ``chain._candidate`` (partial index of free blocks,
   best-fit ``ORDER BY k, lo`` or first-fit ``ORDER BY lo``, ``LIMIT 1 FOR UPDATE SKIP LOCKED``);
3. only if both hold: rewrite that block in place as the taken block (``lo`` unchanged, new id, as
   ``chain._split_and_take`` does) and insert its free buddies ``[lo + 2**j, lo + 2**(j+1))`` for
   ``j = r..k-1``; insert the audit entry, the outbox event (the document is rendered in Python by
   ``render_block``; the statement fills in the value, which depends on the block chosen) and one delivery
   per hub subscription without a query filter. Filtered subscriptions are matched in Python afterwards,
   as ``outbox.publish`` does, in the same transaction.

When the statement says "no" it wrote nothing, and the caller takes the general path in the same
transaction: a pool that changed or vanished, a reclaim to do, every candidate locked by other clients (the
general path polls, then queues), an exhausted pool (its 409). The database enforces the same invariants
either way (unique ``(space, lo)`` and ``(space, hi)``, the deferred chain foreign key, CHECK constraints).

Why it is safe under READ COMMITTED: ``FOR UPDATE SKIP LOCKED`` re-checks the newest version of the row it
locks (``state = 'free' AND k >= r``) and returns that version's ``lo``/``k``; the ``UPDATE`` rewrites the
row we hold. The buddies lie inside the locked block, where nobody else can insert. The buddies' insert
reads the ``UPDATE``'s ``RETURNING`` rows, so the block's ``hi`` moves before the last buddy takes the old
``hi`` (the unique index on ``(space, hi)`` is not deferrable).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from turnup.inventory.logical.chain import Taken
from turnup.inventory.logical.codec import WIDTH, format_address, format_ip, unhex
from turnup.inventory.logical.orm import LogicalSpace
from turnup.inventory.logical.render import INVENTORY_API, render_block
from turnup.kernel import audit
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import EventDelivery, subscription_matches

ENABLED = True  # the benches switch it off to measure the general path
EVENT_TYPE = "ResourceCreateEvent"
RESOURCE_TYPE = "resource"
_COLUMNS = tuple(c.key for c in LogicalSpace.__table__.columns)
_CACHE_MAX = 4096
_pools: dict[str, dict[str, Any]] = {}  # pool id -> column values last read (checked by every statement)

_SQL = """
WITH sp AS MATERIALIZED (
    SELECT 1 FROM logical_space s
    WHERE s.id = %(pool)s AND s.name = %(name)s AND s.policy = %(pool_policy)s
      AND s.purpose IS NOT DISTINCT FROM %(purpose)s::text AND s.site IS NOT DISTINCT FROM %(site)s::text
      AND s.description IS NOT DISTINCT FROM %(pool_description)s::text
      AND s.quarantine_seconds = %(quarantine)s::int AND s.updated_at = %(updated_at)s::timestamptz
      AND NOT EXISTS (SELECT 1 FROM logical_block d WHERE d.space_id = %(pool)s
                      AND d.state IN ('quarantine', 'reserved') AND d.until <= %(now)s::timestamptz)
), cand AS MATERIALIZED (
    SELECT b.id, b.k, ('x' || right(b.lo, 16))::bit(64)::bigint AS n FROM logical_block b
    WHERE b.space_id = %(pool)s AND b.state = 'free' AND b.k >= %(r)s::int AND EXISTS (SELECT 1 FROM sp)
    ORDER BY @ORDER@ LIMIT 1 FOR UPDATE OF b SKIP LOCKED
), upd AS (
    UPDATE logical_block b SET id = %(taken_id)s, hi = lpad(to_hex(c.n + (1::bigint << %(r)s::int)), 33, '0'),
        k = %(r)s::int, state = %(state)s, until = %(until)s::timestamptz, reservation_id = NULL,
        service_id = %(service_id)s::text, description = %(description)s::text,
        allocated_at = %(now)s::timestamptz
    FROM cand c WHERE b.id = c.id
    RETURNING c.n, c.k
), ins_blocks AS (
    INSERT INTO logical_block (id, space_id, lo, hi, k, state)
    SELECT replace(gen_random_uuid()::text, '-', ''), %(pool)s, lpad(to_hex(u.n + (1::bigint << j)), 33, '0'),
           lpad(to_hex(u.n + (1::bigint << (j + 1))), 33, '0'), j, 'free'
    FROM upd u CROSS JOIN generate_series(%(r)s::int, u.k - 1) AS j
    RETURNING 1
), val AS MATERIALIZED (
    SELECT u.n, host('0.0.0.0'::inet + u.n) AS address FROM upd u
), ins_audit AS (
    INSERT INTO audit_entry (id, at, actor, action, resource_type, resource_id, details)
    SELECT %(audit_id)s, %(now)s::timestamptz, %(actor)s, %(action)s, 'logicalResource', %(taken_id)s,
           jsonb_build_object('pool', %(pool)s::text, 'value', v.address || %(suffix)s::text)
    FROM val v
), ins_event AS (
    INSERT INTO outbox_event (id, api, event_type, event_time, resource_type, resource_id, payload)
    SELECT %(event_id)s, %(api)s, %(event_type)s, %(now)s::timestamptz, %(resource_type)s, %(taken_id)s,
           CASE WHEN %(r)s::int = 0
                THEN jsonb_set(jsonb_set(%(payload)s::jsonb, '{event,resource,value}',
                                         to_jsonb(v.address || %(suffix)s::text)),
                               '{event,resource,address}', to_jsonb(v.address))
                ELSE jsonb_set(%(payload)s::jsonb, '{event,resource,value}',
                               to_jsonb(v.address || %(suffix)s::text))
           END
    FROM val v
    RETURNING id
), ins_deliveries AS (
    INSERT INTO event_delivery (id, event_id, subscription_id, status, attempts, next_attempt_at,
                                requeued_after)
    SELECT replace(gen_random_uuid()::text, '-', ''), e.id, h.id, 'pending', 0, %(now)s::timestamptz, 0
    FROM ins_event e JOIN hub_subscription h ON h.api = %(api)s AND (h.query IS NULL OR h.query = '')
)
SELECT (SELECT n FROM val) AS n,
       (SELECT count(*) FROM ins_blocks) AS buddies,
       (SELECT json_agg(json_build_array(h.id, h.query) ORDER BY h.id) FROM hub_subscription h
        WHERE h.api = %(api)s AND h.query <> '') AS filtered
"""
# One line of single spaces (no string literal above contains whitespace): short enough for psycopg to cache
# the parsed query; psycopg prepares it server-side after a few executions on a connection.
SQL = {
    policy: " ".join(_SQL.replace("@ORDER@", order).split())
    for policy, order in (("best-fit", "b.k, b.lo"), ("first-fit", "b.lo"))
}


@dataclass
class _Placeholder:
    """What ``render_block`` reads, before the statement has chosen the block."""

    id: str
    lo: int
    k: int
    state: str
    until: datetime | None
    reservation_id: None
    service_id: str | None
    description: str | None
    allocated_at: datetime


def eligible(session: Session, prefix: str | None, value: int | None) -> bool:
    """PostgreSQL with psycopg 3 (pipeline mode), and a request for the *next* block (no prefix or value)."""
    if not ENABLED or prefix is not None or value is not None:
        return False
    dialect = session.get_bind().dialect
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def cached_pool(pool_id: str) -> LogicalSpace | None:
    """A detached copy of the pool row last read by this process (every statement checks it is current), or
    None when this process has not read it yet."""
    values = _pools.get(pool_id)
    return None if values is None else LogicalSpace(**values)


def remember(space: LogicalSpace) -> None:
    if len(_pools) >= _CACHE_MAX:
        _pools.clear()
    _pools[space.id] = {name: getattr(space, name) for name in _COLUMNS}


def forget(pool_id: str) -> None:
    _pools.pop(pool_id, None)


def applies_to(space: LogicalSpace, target: int | None) -> bool:
    return space.resource_type == "ipv4" and target is None


def _execute(session: Session, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None  # a checked-out pool connection always has its DBAPI connection
    try:
        with driver.pipeline():  # the implicit BEGIN and the statement leave together
            cursor = driver.execute(sql, params)
        row = cursor.fetchone()
    except psycopg.Error as exc:  # surfaced as SQLAlchemy errors, like every other statement
        raise DBAPIError.instance(sql, params, exc, psycopg.Error, dialect=connection.dialect) from exc
    assert row is not None
    return tuple(row)


def allocate(
    session: Session,
    space: LogicalSpace,
    r: int,
    *,
    policy: str,
    state: str,
    until: datetime | None,
    service_id: str | None,
    description: str | None,
    actor: str,
    now: datetime,
) -> Taken | None:
    """Try the one-statement allocation (nothing committed). Returns the taken block, or None when the
    statement wrote nothing and the caller must take the general path (same transaction)."""
    taken_id, event_id = new_id(), new_id()
    rt = space.resource_type
    placeholder = _Placeholder(
        id=taken_id,
        lo=unhex(space.lo),
        k=r,
        state=state,
        until=until,
        reservation_id=None,
        service_id=service_id,
        description=description,
        allocated_at=now,
    )
    document = render_block(placeholder, space)
    payload = {
        "eventId": event_id,
        "eventTime": now.isoformat().replace("+00:00", "Z"),
        "eventType": EVENT_TYPE,
        "event": {RESOURCE_TYPE: document},
    }
    params = {
        "pool": space.id,
        "name": space.name,
        "pool_policy": space.policy,
        "purpose": space.purpose,
        "site": space.site,
        "pool_description": space.description,
        "quarantine": space.quarantine_seconds,
        "updated_at": space.updated_at,
        "now": now,
        "r": r,
        "taken_id": taken_id,
        "state": state,
        "until": until,
        "service_id": service_id,
        "description": description,
        "audit_id": new_id(),
        "actor": actor,
        "action": f"logicalResource.{'reserve' if state == 'reserved' else 'allocate'}",
        "suffix": f"/{WIDTH[rt] - r}",
        "event_id": event_id,
        "api": INVENTORY_API,
        "event_type": EVENT_TYPE,
        "resource_type": RESOURCE_TYPE,
        "payload": json.dumps(payload),
    }
    if session.new or session.dirty or session.deleted:
        session.flush()  # as the general path's first query would (autoflush)
    n, _buddies, filtered = _execute(session, SQL[policy], params)
    if n is None:
        return None
    audit.note_appended(session, str(params["audit_id"]))  # chained when the session commits
    n = int(n)
    taken = Taken(
        id=taken_id,
        space_id=space.id,
        lo=n,
        k=r,
        state=state,
        until=until,
        reservation_id=None,
        service_id=service_id,
        description=description,
        allocated_at=now,
    )
    if filtered:  # subscriptions with a query: matched in Python exactly as kernel.outbox.publish does
        document.update(value=format_ip(rt, n, r))
        if r == 0:
            document.update(address=format_address(rt, n))
        rows = [
            {
                "id": new_id(),
                "event_id": event_id,
                "subscription_id": sub_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
            for sub_id, query in filtered
            if subscription_matches(query, EVENT_TYPE, document, RESOURCE_TYPE)
        ]
        if rows:
            session.execute(insert(EventDelivery), rows)
    return taken
