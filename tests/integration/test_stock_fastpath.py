"""The one-statement PostgreSQL reservation path (``fastpath``) writes exactly what the general path writes,
and declines (writing nothing) whenever the general path must decide: expired holds to release, a reorder
point crossed, a short line, an unknown code or customer. On SQLite the general path serves every request,
so the same assertions hold there too."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.spies import fast_path_outcomes
from turnup.inventory.physical import fastpath
from turnup.inventory.physical import reservations as R
from turnup.inventory.physical import services as S
from turnup.inventory.physical.orm import (
    ReplenishmentRequest,
    Reservation,
    ReservationLine,
    StockLevel,
    StockMovement,
)
from turnup.inventory.physical.render import render_reservation
from turnup.inventory.physical.schemas import (
    LevelSettings,
    LocationCreate,
    MovementCreate,
    ReservationCreate,
    SkuCreate,
)
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import EventDelivery, HubSubscription, OutboxEvent

LINES = [
    {"sku": "CABLE", "quantity": 2, "location": "WH1"},
    {"sku": "ONT", "quantity": 1, "location": "WH2"},
    {"sku": "CABLE", "quantity": 3, "location": "WH1"},
]  # the same level twice: summed


@pytest.fixture(autouse=True)
def _no_filtered_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: no filtered subscription seen yet."""
    monkeypatch.setattr(fastpath, "_filtered_seen_at", float("-inf"))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records what the fast path did for each call: 'served' or 'declined'."""
    return fast_path_outcomes(monkeypatch, fastpath, "reserve")


def _seed(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        S.create_sku(s, SkuCreate(code="CABLE", name="Cable"), "t")
        S.create_sku(s, SkuCreate(code="ONT", name="ONT", serialised=True), "t")
        S.create_location(s, LocationCreate(code="WH1", name="WH1", locationType="warehouse"), "t")
        S.create_location(s, LocationCreate(code="WH2", name="WH2", locationType="van"), "t")
        S.create_location(s, LocationCreate(code="SITE", name="Site", locationType="customer_site"), "t")
        S.apply_movement(s, MovementCreate(kind="receipt", sku="CABLE", location="WH1", quantity=20), "t")
        S.apply_movement(
            s,
            MovementCreate(
                kind="receipt", sku="ONT", location="WH2", units=[{"serial": f"S{i}"} for i in range(4)]
            ),
            "t",
        )
        now = clock.now()
        s.add_all(
            [
                HubSubscription(
                    id="sub-all", api="stock", callback="http://x/all", query=None, created_at=now
                ),
                HubSubscription(
                    id="sub-create",
                    api="stock",
                    callback="http://x/c",
                    query="eventType=ReserveProductStockCreateEvent",
                    created_at=now,
                ),
                HubSubscription(
                    id="sub-quote",
                    api="stock",
                    callback="http://x/q",
                    query="eventType=ReserveProductStockCreateEvent&quoteId=Q-9",
                    created_at=now,
                ),
                HubSubscription(
                    id="sub-other",
                    api="stock",
                    callback="http://x/o",
                    query="eventType=ReserveProductStockStateChangeEvent",
                    created_at=now,
                ),
                HubSubscription(
                    id="sub-api", api="productCatalog", callback="http://x/p", query=None, created_at=now
                ),
            ]
        )
        s.commit()


def _record(s: Session, reservation_id: str) -> dict[str, Any]:
    """Everything a reservation wrote, with its own ids and times taken out."""
    r = s.get(Reservation, reservation_id)
    assert r is not None
    lines = s.scalars(
        select(ReservationLine)
        .where(ReservationLine.reservation_id == reservation_id)
        .order_by(ReservationLine.line_no)
    ).all()
    moves = s.scalars(
        select(StockMovement).where(StockMovement.reservation_id == reservation_id).order_by(StockMovement.id)
    ).all()
    audit = s.scalars(select(AuditEntry).where(AuditEntry.resource_id == reservation_id)).all()
    events = s.scalars(select(OutboxEvent).where(OutboxEvent.resource_id == reservation_id)).all()
    assert len(events) == 1
    deliveries = s.scalars(select(EventDelivery).where(EventDelivery.event_id == events[0].id)).all()
    payload = events[0].payload
    assert (
        payload["eventId"] == events[0].id and payload["event"]["reserveProductStock"]["id"] == reservation_id
    )
    resource = {
        k: v
        for k, v in payload["event"]["reserveProductStock"].items()
        if k not in ("id", "href", "createdAt", "lastUpdate")
    }
    return {
        "reservation": (
            r.status,
            r.expires_at,
            r.customer_id,
            r.quote_id,
            r.order_id,
            r.created_at == r.updated_at,
        ),
        "lines": [
            (
                x.line_no,
                x.level_id,
                x.sku_id,
                x.location_id,
                x.quantity,
                x.serial_numbers,
                x.status,
                x.expires_at,
            )
            for x in lines
        ],
        "moves": [
            (
                m.kind,
                m.sku_id,
                m.location_id,
                m.on_hand_delta,
                m.reserved_delta,
                m.allocated_delta,
                m.quarantined_delta,
                m.unit_id,
                m.unit_state,
                m.reference,
                m.reason,
                m.actor,
            )
            for m in moves
        ],
        "audit": [(a.actor, a.action, a.resource_type, a.details, a.comment) for a in audit],
        "event": (
            events[0].api,
            events[0].event_type,
            events[0].resource_type,
            payload["eventType"],
            resource,
        ),
        "deliveries": sorted((d.subscription_id, d.status, d.attempts, d.requeued_after) for d in deliveries),
    }


def _reserved(factory: sessionmaker[Session]) -> dict[tuple[str, str], int]:
    with factory() as s:
        return {(lv.sku_id, lv.location_id): lv.reserved for lv in s.scalars(select(StockLevel))}


def test_fast_path_writes_what_the_general_path_writes(
    engine: Any, session_factory: sessionmaker[Session], spy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(session_factory)
    expires = clock.now() + timedelta(hours=1)
    postgres = engine.dialect.name == "postgresql"
    # given the same request twice, once as it comes and once forced onto the general path
    with session_factory() as s:
        fast = R.create_reservation(
            s, ReservationCreate(lines=LINES, expiresAt=expires, quoteId="Q-9"), "alice"
        )
        fast_doc = render_reservation(fast)
    assert spy == (["served"] if postgres else [])
    with monkeypatch.context() as m:
        m.setattr(fastpath, "eligible", lambda *_: False)
        with session_factory() as s:
            general = R.create_reservation(
                s, ReservationCreate(lines=LINES, expiresAt=expires, quoteId="Q-9"), "alice"
            )
            general_doc = render_reservation(general)
    assert spy == (["served"] if postgres else [])
    with session_factory() as s:
        fast_record, general_record = _record(s, fast.id), _record(s, general.id)
        # then both wrote the same rows, ledger, audit entry, event and deliveries
        assert fast_record == general_record
        assert fast_record["deliveries"] == [
            ("sub-all", "pending", 0, 0),
            ("sub-create", "pending", 0, 0),
            ("sub-quote", "pending", 0, 0),
        ]
        assert [m[4] for m in fast_record["moves"]] == [2, 1, 3]
        # and the returned view renders as the stored reservation does, and as the event announced
        stored = render_reservation(R.get_reservation(s, fast.id))
        assert fast_doc == stored
        event = s.scalars(select(OutboxEvent).where(OutboxEvent.resource_id == fast.id)).one()
        assert event.payload["event"]["reserveProductStock"] == stored
        assert [(lv.line.level_id, lv.line.sku_id, lv.line.location_id) for lv in fast.lines] == [
            (lv.line.level_id, lv.line.sku_id, lv.line.location_id) for lv in general.lines
        ]
        assert general_doc["reserveProductStockItem"] == fast_doc["reserveProductStockItem"]
        levels = {(lv.sku_id, lv.location_id): lv for lv in s.scalars(select(StockLevel))}
        assert sorted((lv.on_hand, lv.reserved) for lv in levels.values()) == [(4, 2), (20, 10)]


def test_fast_path_declines_and_the_general_path_decides(
    engine: Any, session_factory: sessionmaker[Session], spy: list[str]
) -> None:
    _seed(session_factory)
    postgres = engine.dialect.name == "postgresql"
    soon = clock.now() + timedelta(minutes=5)
    with session_factory() as s:
        old = R.create_reservation(
            s,
            ReservationCreate(lines=[{"sku": "CABLE", "quantity": 18, "location": "WH1"}], expiresAt=soon),
            "t",
        )
    clock.advance(timedelta(minutes=10))  # that hold has expired; the sweeper has not run
    expires = clock.now() + timedelta(hours=1)
    spy.clear()

    # an expired hold on a level: declined, then released lazily by the general path, and the request fits
    with session_factory() as s:
        view = R.create_reservation(
            s,
            ReservationCreate(lines=[{"sku": "CABLE", "quantity": 15, "location": "WH1"}], expiresAt=expires),
            "t",
        )
    assert view.status == "held"
    with session_factory() as s:
        released = s.scalars(
            select(StockMovement).where(
                StockMovement.reservation_id == old.id, StockMovement.kind == "release"
            )
        ).all()
        assert [(m.reserved_delta, m.reason) for m in released] == [(-18, "expired")]
    assert spy == (["declined"] if postgres else [])

    # a short line: declined, and the 409 lists it; nothing written
    before = _reserved(session_factory), _count(session_factory)
    spy.clear()
    with session_factory() as s, pytest.raises(Conflict) as refused:
        R.create_reservation(
            s,
            ReservationCreate(
                lines=[
                    {"sku": "ONT", "quantity": 1, "location": "WH2"},
                    {"sku": "CABLE", "quantity": 3, "location": "WH1"},
                    {"sku": "CABLE", "quantity": 3, "location": "WH1"},
                ],
                expiresAt=expires,
            ),
            "t",
        )
    assert refused.value.details == [
        {"line": 2, "sku": "CABLE", "location": "WH1", "region": None, "requested": 3, "available": 2}
    ]
    assert (_reserved(session_factory), _count(session_factory)) == before
    assert spy == (["declined"] if postgres else [])

    # unknown codes, a location that holds no stock, an unknown customer: the general path's errors
    for lines, customer, error, text in [
        (
            [{"sku": "NOPE", "quantity": 1, "location": "WH1"}],
            None,
            NotFound,
            "lines[0].sku: unknown SKU 'NOPE'",
        ),
        ([{"sku": "CABLE", "quantity": 1, "location": "MARS"}], None, NotFound, "unknown location 'MARS'"),
        ([{"sku": "CABLE", "quantity": 1, "location": "SITE"}], None, InvalidInput, "which holds no stock"),
        ([{"sku": "CABLE", "quantity": 1, "location": "WH1"}], "nobody", NotFound, "customer 'nobody'"),
    ]:
        with session_factory() as s, pytest.raises(error) as exc:
            R.create_reservation(
                s, ReservationCreate(lines=lines, expiresAt=expires, customerId=customer), "t"
            )
        assert text in exc.value.message
    assert (_reserved(session_factory), _count(session_factory)) == before

    # a reservation taking a level below its reorder point: declined, and the general path opens the request
    with session_factory() as s:
        S.set_level_policy(
            s, LevelSettings(sku="ONT", location="WH2", reorderPoint=3, reorderQuantity=10), "t"
        )
    spy.clear()
    with session_factory() as s:
        R.create_reservation(
            s,
            ReservationCreate(lines=[{"sku": "ONT", "quantity": 1, "location": "WH2"}], expiresAt=expires),
            "t",
        )  # 4 -> 3 available: not below
        R.create_reservation(
            s,
            ReservationCreate(lines=[{"sku": "ONT", "quantity": 1, "location": "WH2"}], expiresAt=expires),
            "t",
        )  # 3 -> 2: below
    assert spy == (["served", "declined"] if postgres else [])
    with session_factory() as s:
        requests = s.scalars(select(ReplenishmentRequest)).all()
        assert [(r.quantity, r.status) for r in requests] == [(10, "open")]


def test_fast_path_inside_a_callers_transaction_rolls_back(
    engine: Any, session_factory: sessionmaker[Session], spy: list[str]
) -> None:
    _seed(session_factory)
    before = _reserved(session_factory), _count(session_factory)
    with session_factory() as s:
        from turnup.accounts.orm import Customer

        customer_id = new_id()  # the caller's own, not yet flushed, change in the same transaction
        s.add(
            Customer(
                id=customer_id,
                name="ACME",
                customer_type="organization",
                status="active",
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        view = R.create_reservation(
            s,
            ReservationCreate(
                lines=LINES[:1], expiresAt=clock.now() + timedelta(hours=1), customerId=customer_id
            ),
            "quote",
            commit=False,
        )
        assert view.reservation.customer_id == customer_id
        s.rollback()
    assert spy == (["served"] if engine.dialect.name == "postgresql" else [])
    assert (_reserved(session_factory), _count(session_factory)) == before


def test_contended_level_is_never_oversold(
    engine: Any, session_factory: sessionmaker[Session], spy: list[str]
) -> None:
    """16 threads race for the same two levels (lines in opposite orders): exactly the stock is held, every
    other attempt is a 409, no deadlock, and the ledger matches the level."""
    _seed(session_factory)
    clients, rounds = 16, 3
    barrier = threading.Barrier(clients)
    results: list[str] = []
    lock = threading.Lock()
    expires = clock.now() + timedelta(hours=1)

    def client(n: int) -> None:
        lines = [
            {"sku": "CABLE", "quantity": 1, "location": "WH1"},
            {"sku": "ONT", "quantity": 1, "location": "WH2"},
        ]
        if n % 2:
            lines.reverse()
        barrier.wait()
        for _ in range(rounds):
            with session_factory() as s:
                try:
                    R.create_reservation(s, ReservationCreate(lines=lines, expiresAt=expires), f"c{n}")
                    outcome = "held"
                except Conflict:
                    outcome = "refused"
                except Exception as exc:
                    outcome = repr(exc)
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(results)) == ["held", "refused"], results
    assert results.count("held") == 4  # ONT at WH2 has 4; CABLE at WH1 has 20
    with session_factory() as s:
        levels = {lv.on_hand: lv.reserved for lv in s.scalars(select(StockLevel))}
        assert levels == {20: 4, 4: 4}
        ledger = s.execute(
            select(StockMovement.location_id, func.sum(StockMovement.reserved_delta))
            .where(StockMovement.kind == "reserve")
            .group_by(StockMovement.location_id)
        ).all()
        assert sorted(total for _, total in ledger) == [4, 4]
        assert s.scalar(select(func.count()).select_from(Reservation)) == 4
    if engine.dialect.name == "postgresql":
        assert spy.count("served") == 4


def _count(factory: sessionmaker[Session]) -> tuple[int, ...]:
    with factory() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Reservation, ReservationLine, StockMovement, AuditEntry, OutboxEvent, EventDelivery)
        )


def test_statement_stays_cacheable_by_psycopg() -> None:
    """psycopg keeps the parsed form of a query only up to 4 KiB and 50 parameters; beyond that every
    reservation would pay ~0.2 ms of client CPU re-parsing it. The statement is one line, so a ``--`` comment
    in it would silently cut it short."""
    from psycopg import _queries

    assert len(fastpath.RESERVE_SQL) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert "--" not in fastpath.RESERVE_SQL and "\n" not in fastpath.RESERVE_SQL


@pytest.fixture
def solo_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``solo`` flag of every statement sent."""
    calls: list[bool] = []
    real = fastpath._execute

    def wrapped(session: Session, params: dict[str, Any], *, solo: bool) -> Any:
        calls.append(solo)
        return real(session, params, solo=solo)

    monkeypatch.setattr(fastpath, "_execute", wrapped)
    return calls


def _seed_plain(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        S.create_sku(s, SkuCreate(code="CABLE", name="Cable"), "t")
        S.create_location(s, LocationCreate(code="WH1", name="WH1", locationType="warehouse"), "t")
        S.apply_movement(s, MovementCreate(kind="receipt", sku="CABLE", location="WH1", quantity=25), "t")
        s.add(
            HubSubscription(
                id="sub-all", api="stock", callback="http://x/all", query=None, created_at=clock.now()
            )
        )
        s.commit()


def test_the_statement_commits_itself_only_when_it_is_the_whole_transaction(
    engine: Any, session_factory: sessionmaker[Session], solo_calls: list[bool]
) -> None:
    _seed_plain(session_factory)
    postgres = engine.dialect.name == "postgresql"
    expires = clock.now() + timedelta(hours=1)
    one = [{"sku": "CABLE", "quantity": 1, "location": "WH1"}]

    # a fresh session asking for a commit: one round trip, and the reservation is durable and complete
    with session_factory() as s:
        view = R.create_reservation(s, ReservationCreate(lines=one, expiresAt=expires), "t")
    assert solo_calls == ([True] if postgres else [])
    with session_factory() as s:
        assert s.get(Reservation, view.id) is not None
        assert len(_record(s, view.id)["deliveries"]) == 1
    # a session that already began a transaction, or a caller keeping the transaction open: never solo
    solo_calls.clear()
    with session_factory() as s:
        s.execute(select(func.count()).select_from(StockLevel)).scalar_one()
        R.create_reservation(s, ReservationCreate(lines=one, expiresAt=expires), "t")
        kept = R.create_reservation(s, ReservationCreate(lines=one, expiresAt=expires), "t", commit=False)
        s.rollback()
    assert solo_calls == ([False, False] if postgres else [])
    with session_factory() as s:
        assert s.get(Reservation, kept.id) is None
        assert s.scalars(select(StockLevel)).one().reserved == 2

    # a solo statement that declines (short line; then an expired hold) commits nothing of its own, and the
    # general path answers in a transaction of its own
    before = _reserved(session_factory), _count(session_factory)
    solo_calls.clear()
    with session_factory() as s, pytest.raises(Conflict):
        R.create_reservation(
            s,
            ReservationCreate(lines=[{"sku": "CABLE", "quantity": 24, "location": "WH1"}], expiresAt=expires),
            "t",
        )  # 23 available
    assert (_reserved(session_factory), _count(session_factory)) == before
    with session_factory() as s:
        short_lived = R.create_reservation(
            s,
            ReservationCreate(
                lines=[{"sku": "CABLE", "quantity": 18, "location": "WH1"}],
                expiresAt=clock.now() + timedelta(minutes=1),
            ),
            "t",
        )
    clock.advance(timedelta(minutes=2))
    with session_factory() as s:
        view = R.create_reservation(
            s,
            ReservationCreate(
                lines=[{"sku": "CABLE", "quantity": 17, "location": "WH1"}],
                expiresAt=clock.now() + timedelta(hours=1),
            ),
            "t",
        )
    assert solo_calls == ([True, True, True] if postgres else [])
    with session_factory() as s:
        assert R.get_reservation(s, short_lived.id).status == "expired"
        assert s.scalars(select(StockLevel)).one().reserved == 2 + 17

    # a subscription with a query filter: the solo statement declines, the request is sent again inside a
    # transaction (the filtered delivery is written with it), and the process stops trying solo for a while
    with session_factory() as s:
        s.add(
            HubSubscription(
                id="sub-q",
                api="stock",
                callback="http://x/q",
                query="eventType=ReserveProductStockCreateEvent",
                created_at=clock.now(),
            )
        )
        s.commit()
    solo_calls.clear()
    views = []
    for _ in range(2):
        with session_factory() as s:
            views.append(
                R.create_reservation(
                    s,
                    ReservationCreate(
                        lines=[{"sku": "CABLE", "quantity": 1, "location": "WH1"}], expiresAt=expires
                    ),
                    "t",
                )
            )
    assert solo_calls == ([True, False, False] if postgres else [])
    with session_factory() as s:
        for v in views:
            assert [d[0] for d in _record(s, v.id)["deliveries"]] == ["sub-all", "sub-q"]


def test_the_statement_runs_on_a_generic_plan(engine: Any, session_factory: sessionmaker[Session]) -> None:
    """After its first executions on a connection, PostgreSQL keeps one generic plan for the statement instead
    of planning it again at every reservation (the ``WHERE r.ord <= n`` hint in ``fastpath``)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("plan caching is PostgreSQL's; SQLite serves every request through the general path")
    _seed_plain(session_factory)
    expires = clock.now() + timedelta(hours=1)
    from turnup.kernel.db import make_engine, make_sessionmaker

    single = make_engine(str(engine.url.render_as_string(hide_password=False)), pool_size=1, max_overflow=0)
    try:
        factory = make_sessionmaker(single)
        for _ in range(20):  # (psycopg forgets its prepared statements at a rollback: these commit)
            with factory() as s:
                R.create_reservation(
                    s,
                    ReservationCreate(
                        lines=[{"sku": "CABLE", "quantity": 1, "location": "WH1"}], expiresAt=expires
                    ),
                    "t",
                )
        with single.connect() as conn:
            plans = conn.exec_driver_sql(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'WITH "
                "req AS%%'"
            ).one()
    finally:
        single.dispose()
    generic, custom = plans
    assert generic >= 10 and custom <= 5, plans
