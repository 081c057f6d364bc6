"""PostgreSQL fast path for the common reservation shape: quantity lines at named locations.

One statement does what the general path (``reservations._create_general``) does in about nine round trips:

1. resolve SKU and location codes to ids (stock-holding locations only) and find the ``stock_level`` rows;
2. lock those levels in primary-key order (``ORDER BY id FOR NO KEY UPDATE`` in a materialised CTE, the same
   lock and order as ``ledger.lock_levels``);
3. decide, on the locked (latest) row versions, whether *every* line fits: quantity per level summed over the
   lines, no expired-but-unswept hold on any of the levels, no reorder point crossed (the customer, owned by
   accounts, was checked through its face before the statement);
4. only if so: add to ``reserved`` (CHECK constraints stay the last line of defence), insert the reservation,
   its lines, one ``reserve`` ledger row per line, the audit entry, the outbox event and its deliveries for
   hub subscriptions without a query filter.

Anything else — an unknown code, a short line (whose 409 lists every short line), an expired hold to release
lazily, a replenishment request to open, a hub subscription with a query filter (matched in Python) — is
answered by the statement's result and handled in Python *in the same transaction*: the statement wrote
nothing when it said "not ok", and the general path then locks the same levels in the same order (the locks
already taken are a prefix of that order). So every case keeps the general path's semantics and messages.

When the reservation is the caller's whole transaction (``create_reservation(commit=True)`` on a session that
has not begun one, ``can_commit_with_statement``), the statement runs in autocommit mode (``solo``): one
statement is one transaction, so a reservation costs one round trip with no ``BEGIN`` or ``COMMIT``, and the
level locks are released as soon as the statement ends. A declined solo statement wrote nothing, and the
general path then runs in a transaction of its own, which is equally correct because nothing else belonged
to the transaction. Events for hub subscriptions with a query filter are matched in Python before the commit,
so while such a subscription exists the solo statement declines and the request is sent again without
``solo``.

Why the decision is safe under READ COMMITTED: the lock CTE returns the newest committed version of each
level row (PostgreSQL re-reads a row it had to wait for), the availability test is computed from those
versions, and the ``UPDATE`` adds to the newest version (``reserved = reserved + n``). The expired-hold probe
reads the statement snapshot; a hold that committed after the snapshot cannot already be past its expiry
(``expiresAt`` must be in the future when a hold is made), and a concurrent release it missed only sends us
to the general path.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from turnup.inventory.physical.render import (
    API,
    LineRecord,
    LineView,
    ReservationRecord,
    ReservationView,
    render_reservation,
)
from turnup.inventory.physical.schemas import ReservationCreate
from turnup.kernel import audit
from turnup.kernel.hrefs import iso
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import EventDelivery, subscription_matches

EVENT_TYPE = "ReserveProductStockCreateEvent"
RESOURCE_TYPE = "reserveProductStock"

# Stock-holding location types (reservations.STOCK_HOLDING) are spelled out in the SQL below.
_RESERVE_SQL = """
WITH req AS (
    SELECT (r.ord - 1)::int AS line_no, r.sku, r.loc, r.qty, r.line_id
    FROM unnest(%(skus)s::text[], %(locs)s::text[], %(qtys)s::int[], %(lids)s::text[])
         WITH ORDINALITY AS r(sku, loc, qty, line_id, ord)
    WHERE r.ord <= %(n)s
), ids AS MATERIALIZED (
    SELECT q.line_no, q.qty, q.line_id,
           (SELECT s.id FROM stock_sku s WHERE s.code = q.sku) AS sku_id,
           (SELECT l.id FROM stock_location l WHERE l.code = q.loc
                AND l.location_type IN ('warehouse', 'van', 'store', 'data_centre', 'cage')) AS location_id
    FROM req q
), matched AS MATERIALIZED (
    SELECT i.line_no, i.qty, i.line_id, i.sku_id, i.location_id,
           (SELECT lv.id FROM stock_level lv WHERE lv.sku_id = i.sku_id AND lv.location_id = i.location_id)
               AS level_id
    FROM ids i
), want AS MATERIALIZED (
    SELECT level_id, sum(qty) AS qty FROM matched WHERE level_id IS NOT NULL GROUP BY level_id
), locked AS MATERIALIZED (
    SELECT lv.id, lv.on_hand - lv.reserved - lv.allocated AS available, lv.reorder_point, w.qty
    FROM want w JOIN stock_level lv ON lv.id = w.level_id
    ORDER BY lv.id
    FOR NO KEY UPDATE OF lv
), decision AS MATERIALIZED (
    SELECT (SELECT count(*) FROM locked) = (SELECT count(*) FROM want)
       AND (SELECT count(*) FROM matched WHERE level_id IS NOT NULL) = %(n)s
       AND NOT EXISTS (
           SELECT 1 FROM locked k
           WHERE k.available < k.qty
              OR (k.reorder_point IS NOT NULL AND k.available - k.qty < k.reorder_point)
              OR (SELECT x.expires_at FROM stock_reservation_line x
                  WHERE x.level_id = k.id AND x.status = 'held' AND x.expires_at <= %(now)s
                  ORDER BY x.level_id, x.expires_at LIMIT 1) IS NOT NULL)
       AND NOT (%(solo)s AND EXISTS (SELECT 1 FROM hub_subscription h
                                     WHERE h.api = %(api)s AND h.query <> ''))
           AS ok
), upd AS (
    UPDATE stock_level s SET reserved = s.reserved + w.qty, updated_at = %(now)s
    FROM want w
    WHERE s.id = w.level_id AND (SELECT ok FROM decision)
    RETURNING s.id
), ins_reservation AS (
    INSERT INTO stock_reservation (id, status, expires_at, customer_id, quote_id, created_at, updated_at)
    SELECT %(rid)s, 'held', %(exp)s, %(cid)s::text, %(qid)s, %(now)s, %(now)s
    WHERE (SELECT ok FROM decision)
), ins_lines AS (
    INSERT INTO stock_reservation_line (id, reservation_id, line_no, level_id, sku_id, location_id, quantity,
                                        serial_numbers, status, expires_at)
    SELECT m.line_id, %(rid)s, m.line_no, m.level_id, m.sku_id, m.location_id, m.qty,
           'null'::jsonb, 'held', %(exp)s
    FROM matched m WHERE (SELECT ok FROM decision)
), ins_moves AS (
    INSERT INTO stock_movement (at, kind, sku_id, location_id, on_hand_delta, reserved_delta, allocated_delta,
                                quarantined_delta, reservation_id, actor)
    SELECT %(now)s, 'reserve', m.sku_id, m.location_id, 0, m.qty, 0, 0, %(rid)s, %(actor)s
    FROM matched m WHERE (SELECT ok FROM decision)
    ORDER BY m.line_no
), ins_audit AS (
    INSERT INTO audit_entry (id, at, actor, action, resource_type, resource_id, details)
    SELECT %(aid)s, %(now)s, %(actor)s, 'stock.reserve', 'reserveProductStock', %(rid)s,
           %(det)s::jsonb
    WHERE (SELECT ok FROM decision)
), ins_event AS (
    INSERT INTO outbox_event (id, api, event_type, event_time, resource_type, resource_id, payload)
    SELECT %(eid)s, %(api)s, %(et)s, %(now)s, %(rt)s, %(rid)s,
           %(payload)s::jsonb
    WHERE (SELECT ok FROM decision)
    RETURNING id
), ins_deliveries AS (
    INSERT INTO event_delivery (id, event_id, subscription_id, status, attempts, next_attempt_at,
                                requeued_after)
    SELECT replace(gen_random_uuid()::text, '-', ''), e.id, h.id, 'pending', 0, %(now)s, 0
    FROM ins_event e JOIN hub_subscription h ON h.api = %(api)s AND (h.query IS NULL OR h.query = '')
)
SELECT (SELECT ok FROM decision) AS ok,
       (SELECT count(*) FROM upd) AS levels_updated,
       (SELECT count(*) FROM want) AS levels_wanted,
       (SELECT json_agg(json_build_array(m.line_no, m.level_id, m.sku_id, m.location_id)) FROM matched m)
           AS placed,
       (SELECT json_agg(json_build_array(h.id, h.query) ORDER BY h.id) FROM hub_subscription h
        WHERE h.api = %(api)s AND h.query <> '') AS filtered_subscriptions
"""
# ``WHERE r.ord <= n`` is always true; it tells the planner that the request has a handful of lines rather
# than the default guess for an array, which makes the generic plan cost what a custom one does: PostgreSQL
# then keeps the generic plan instead of re-planning the statement at every execution (~0.4 ms of server CPU
# here; ``test_the_statement_runs_on_a_generic_plan``).
# Every look-up is written so that any plan, generic or custom, on fresh or analysed tables, is an index probe
# per line: the codes and the level through scalar sub-selects (unique indexes), the levels to lock through
# a nested-loop join on the primary key, the expired-hold probe as an ``ORDER BY ... LIMIT 1`` sub-select on
# the partial index ``ix_stock_reservation_line_live``. (Written as joins and ``EXISTS``, the generic plan
# hashed the whole ``stock_sku`` table and scanned all of ``stock_reservation_line`` for every reservation.)
# No ``--`` comments inside the SQL: it is joined into one line.
# One line of single spaces: under psycopg's 4 KiB limit for caching the parsed query (no string literal
# above contains whitespace). psycopg prepares it server-side after a few executions on a connection.
RESERVE_SQL = " ".join(_RESERVE_SQL.split())


def _execute(session: Session, params: dict[str, Any], *, solo: bool) -> tuple[Any, ...]:
    """Run the statement. ``solo``: it is the whole transaction, so it runs in autocommit mode, where one
    statement is one transaction — one round trip, no ``BEGIN``/``COMMIT`` (a declined statement wrote
    nothing, so nothing is committed). Otherwise in a psycopg pipeline, so that the implicit ``BEGIN`` and the
    statement leave in one packet, inside the caller's transaction."""
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None  # a checked-out pool connection always has its DBAPI connection
    try:
        if solo:
            driver.autocommit = True  # allowed: the session has not begun a transaction on the server
            try:
                row = driver.execute(RESERVE_SQL, params).fetchone()
            finally:
                if not driver.closed:
                    driver.autocommit = False
        else:
            with driver.pipeline():
                cursor = driver.execute(RESERVE_SQL, params)
            row = cursor.fetchone()
    except psycopg.Error as exc:  # the same exception types as any other statement through SQLAlchemy
        raise DBAPIError.instance(
            RESERVE_SQL, params, exc, psycopg.Error, dialect=connection.dialect
        ) from exc
    assert row is not None
    return tuple(row)


# When a stock subscription with a query filter exists, events must be matched in Python inside the
# transaction, so the statement cannot commit itself (it declines, and is sent again without ``solo``). Seeing
# one makes this process skip ``solo`` for a while instead of paying that twice per reservation; the hint only
# chooses between two correct ways, the statement always checks.
FILTERED_HINT_SECONDS = 30.0
_filtered_seen_at = float("-inf")


def can_commit_with_statement(session: Session) -> bool:
    """Whether ``reserve(..., solo=True)`` is allowed: the caller wants the reservation committed, and the
    session has no transaction yet and nothing pending, so committing together with the statement commits
    exactly the reservation."""
    return (
        not session.in_transaction()
        and not (session.new or session.dirty or session.deleted)
        and time.monotonic() - _filtered_seen_at > FILTERED_HINT_SECONDS
    )


def eligible(session: Session, data: ReservationCreate) -> bool:
    """The shape the fast path handles: PostgreSQL (psycopg 3), every line a quantity at a named location.
    Region lines (most-available-first split) and named serials stay on the general path."""
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":  # psycopg 3: pipeline mode
        return False
    return all(
        line.location is not None and line.region is None and not line.serials and line.quantity is not None
        for line in data.lines
    )


def reserve(
    session: Session, data: ReservationCreate, actor: str, now: datetime, *, solo: bool = False
) -> ReservationView | None:
    """Try the one-statement reservation. Returns the view, or ``None`` when the statement wrote nothing and
    the caller must take the general path (same transaction; see the module docstring).

    ``solo`` (only when ``can_commit_with_statement``): the reservation is committed in the same round trip
    as the statement; after ``None`` the general path runs in a new transaction."""
    global _filtered_seen_at
    view, filtered = _attempt(session, data, actor, now, solo=solo)
    if view is None and solo and filtered:  # declined, perhaps only because it could not commit itself:
        _filtered_seen_at = time.monotonic()  # again, in a transaction of its own, without solo
        view, _ = _attempt(session, data, actor, now, solo=False)
    return view


def _attempt(
    session: Session, data: ReservationCreate, actor: str, now: datetime, *, solo: bool
) -> tuple[ReservationView | None, Any]:
    reservation_id = new_id()
    event_id = new_id()
    lines = data.lines
    line_rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "reservation_id": reservation_id,
            "line_no": i,
            "level_id": None,
            "sku_id": None,
            "location_id": None,
            "quantity": line.quantity,
            "serial_numbers": None,
            "status": "held",
            "expires_at": data.expiresAt,
        }
        for i, line in enumerate(lines)
    ]
    reservation = ReservationRecord(
        id=reservation_id,
        status="held",
        expires_at=data.expiresAt,
        customer_id=data.customerId,
        quote_id=data.quoteId,
        order_id=None,
        created_at=now,
        updated_at=now,
    )
    view = ReservationView(
        reservation,
        [
            LineView(LineRecord(**row), line.sku, line.location or "")
            for row, line in zip(line_rows, lines, strict=True)
        ],
    )
    resource = render_reservation(view)
    payload = {
        "eventId": event_id,
        "eventTime": now.isoformat().replace("+00:00", "Z"),
        "eventType": EVENT_TYPE,
        "event": {RESOURCE_TYPE: resource},
    }
    details = {"lines": len(lines), "expiresAt": iso(data.expiresAt), "quoteId": data.quoteId}
    params = {
        "skus": [line.sku for line in lines],
        "locs": [line.location for line in lines],
        "qtys": [line.quantity for line in lines],
        "lids": [row["id"] for row in line_rows],
        "n": len(lines),
        "now": now,
        "cid": data.customerId,
        "rid": reservation_id,
        "exp": data.expiresAt,
        "qid": data.quoteId,
        "actor": actor,
        "aid": new_id(),
        "det": json.dumps(details),
        "eid": event_id,
        "api": API,
        "et": EVENT_TYPE,
        "rt": RESOURCE_TYPE,
        "payload": json.dumps(payload),
        "solo": solo,
    }
    if session.new or session.dirty or session.deleted:
        session.flush()  # as the general path's first query would (autoflush), e.g. a caller's new customer
    ok, updated, wanted, placed, filtered = _execute(session, params, solo=solo)
    if not ok:
        return None, filtered
    audit.note_appended(session, str(params["aid"]))  # chained when the session commits (after solo: at once)
    if updated != wanted:  # cannot happen: every wanted level was locked and found
        raise RuntimeError(f"reservation fast path updated {updated} of {wanted} stock levels")
    for line_no, level_id, sku_id, location_id in placed:
        row = view.lines[line_no].line
        row.level_id, row.sku_id, row.location_id = level_id, sku_id, location_id
    if filtered:  # subscriptions with a query: matched in Python exactly as kernel.outbox.publish does
        deliveries = [
            {
                "id": new_id(),
                "event_id": event_id,
                "subscription_id": sub_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "requeued_after": 0,
            }
            for sub_id, query in filtered
            if subscription_matches(query, EVENT_TYPE, resource, RESOURCE_TYPE)
        ]
        if deliveries:
            session.execute(insert(EventDelivery), deliveries)
    return view, filtered
