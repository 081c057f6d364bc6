"""The one-statement PostgreSQL allocation (``logical.fastpath``) writes exactly what the general path
writes, never duplicates or overlaps under concurrent threads, and declines (writing nothing) whenever the
general path must decide: a reclaim to do, a changed or deleted pool, an exhausted pool, every candidate
locked. Requests it does not handle (a specific prefix, IPv6, VLANs) never reach it. On SQLite the general
path serves every request, so the same assertions hold there too."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.support.spies import fast_path_outcomes
from turnup.inventory.logical import fastpath, services
from turnup.inventory.logical.codec import unhex
from turnup.inventory.logical.orm import LogicalBlock
from turnup.inventory.logical.render import INVENTORY_API, render_block
from turnup.inventory.logical.schemas import AllocationRequest, PoolCreate, PoolUpdate
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.db import is_sqlite, make_engine, make_sessionmaker
from turnup.kernel.errors import Conflict, NotFound
from turnup.kernel.outbox import EventDelivery, HubSubscription, OutboxEvent

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the fast path did on each call: 'served' or 'declined'."""
    return fast_path_outcomes(monkeypatch, fastpath, "allocate")


def _pool(
    s: Session, domain: str, prefix: str = "10.0.0.0/16", aggregate: str = "10.0.0.0/8", **extra: Any
) -> str:
    services.create_pool(
        s, PoolCreate(poolType="ipAggregate", name="agg", prefix=aggregate, routingDomain=domain), "t"
    )
    return services.create_pool(
        s, PoolCreate(poolType="ipPool", name="pool", prefix=prefix, routingDomain=domain, **extra), "t"
    ).id


def _subscribe(s: Session) -> None:
    s.add_all(
        [
            HubSubscription(
                id="sub-all", api=INVENTORY_API, callback="http://x/a", query=None, created_at=T0
            ),
            HubSubscription(
                id="sub-empty", api=INVENTORY_API, callback="http://x/e", query="", created_at=T0
            ),
            HubSubscription(
                id="sub-create",
                api=INVENTORY_API,
                callback="http://x/c",
                query="eventType=ResourceCreateEvent",
                created_at=T0,
            ),
            HubSubscription(
                id="sub-first",
                api=INVENTORY_API,
                callback="http://x/f",
                query="value=10.0.0.0/29",
                created_at=T0,
            ),
            HubSubscription(
                id="sub-reserved",
                api=INVENTORY_API,
                callback="http://x/r",
                query="lifecycleState=reserved",
                created_at=T0,
            ),
            HubSubscription(
                id="sub-other", api="resourcePoolManagement", callback="http://x/o", query=None, created_at=T0
            ),
        ]
    )
    s.commit()


def _chain(s: Session, pool_id: str, names: dict[str, str]) -> list[tuple[Any, ...]]:
    """The pool's blocks in order; ids of taken blocks by name (``names``), other ids left out."""
    rows = s.execute(select(LogicalBlock).where(LogicalBlock.space_id == pool_id).order_by(LogicalBlock.lo))
    return [
        (
            names.get(b.id, "-"),
            b.lo,
            b.hi,
            b.k,
            b.state,
            b.until,
            b.reservation_id,
            b.service_id,
            b.description,
            b.allocated_at,
            b.child_space_id,
        )
        for (b,) in rows
    ]


def _writes(s: Session, pool_id: str, taken_ids: list[str]) -> dict[str, Any]:
    """Everything the allocations wrote, with pool-, block- and event-specific ids replaced by names."""
    names = {block_id: f"taken{i}" for i, block_id in enumerate(taken_ids)}

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if isinstance(value, str):
            for real, name in [*names.items(), (pool_id, "POOL")]:
                value = value.replace(real, name)
        return value

    audits = [
        (a.at, a.actor, a.action, a.resource_type, names[a.resource_id], scrub(a.details), a.comment)
        for a in s.scalars(select(AuditEntry).where(AuditEntry.resource_id.in_(taken_ids)))
    ]
    events = s.scalars(select(OutboxEvent).where(OutboxEvent.resource_id.in_(taken_ids))).all()
    event_names = {e.id: names[e.resource_id] for e in events}
    out_events = []
    for e in events:
        payload = dict(e.payload)
        assert payload.pop("eventId") == e.id
        payload["event"]["resource"]["routingDomain"] = "DOMAIN"
        out_events.append(
            (e.api, e.event_type, e.event_time, e.resource_type, names[e.resource_id], scrub(payload))
        )
    deliveries = [
        (
            event_names[d.event_id],
            d.subscription_id,
            d.status,
            d.attempts,
            d.next_attempt_at,
            d.delivered_at,
            d.last_error,
            d.locked_by,
            d.locked_until,
            d.requeued_after,
        )
        for d in s.scalars(select(EventDelivery).where(EventDelivery.event_id.in_(list(event_names))))
    ]
    return {
        "chain": _chain(s, pool_id, names),
        "audit": sorted(audits, key=repr),
        "events": sorted(out_events, key=repr),
        "deliveries": sorted(deliveries, key=repr),
    }


REQUESTS = [
    AllocationRequest(prefixLength=29),  # splits the /16 down to a /29
    AllocationRequest(prefixLength=29, serviceId="SVC-1", description="uplink"),  # the /29 buddy: k == r
    AllocationRequest(prefixLength=24, allocationPolicy="first-fit"),
    AllocationRequest(),  # one address: /32, r = 0
    AllocationRequest(prefixLength=30, reservedUntil=T0 + timedelta(hours=1)),  # a reservation
    AllocationRequest(prefixLength=16 + 4),
]


def _run(factory: sessionmaker[Session], pool_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    taken_ids, documents = [], []
    with factory() as s:
        for req in REQUESTS:
            taken, space = services.allocate(s, pool_id, req, "alice")
            taken_ids.append(taken.id)
            documents.append(render_block(taken, space))
    return taken_ids, documents


def test_fast_path_writes_exactly_what_the_general_path_writes(
    db_url: str, session_factory: sessionmaker[Session], spy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two identical pools in two routing domains, hub subscriptions (some filtered) and a frozen clock
    clock.freeze(T0)
    with session_factory() as s:
        _subscribe(s)
        fast_pool, general_pool = _pool(s, "fast"), _pool(s, "general")
    # when the same requests run through the default path and, on the other pool, the general path only
    fast_ids, fast_docs = _run(session_factory, fast_pool)
    monkeypatch.setattr(fastpath, "ENABLED", False)
    general_ids, general_docs = _run(session_factory, general_pool)
    # then the fast path served every request on PostgreSQL (and never ran on SQLite)
    assert spy == ([] if is_sqlite(db_url) else ["served"] * len(REQUESTS))
    # and the returned blocks, the chain, audit entries, events and deliveries are the same
    for fast, general in zip(fast_docs, general_docs, strict=True):
        for doc, pool_id in ((fast, fast_pool), (general, general_pool)):
            assert doc.pop("id") and doc.pop("href")
            assert doc.pop("resourcePool")["id"] == pool_id
            doc.pop("routingDomain")
        assert fast == general
    assert [d["value"] for d in fast_docs] == [
        "10.0.0.0/29",
        "10.0.0.8/29",
        "10.0.1.0/24",
        "10.0.0.16/32",
        "10.0.0.20/30",
        "10.0.16.0/20",
    ]
    with session_factory() as s:
        fast_writes, general_writes = _writes(s, fast_pool, fast_ids), _writes(s, general_pool, general_ids)
    assert fast_writes == general_writes
    # and the filtered subscriptions got exactly the events they asked for
    per_sub: dict[str, list[str]] = {}
    for event, sub, *_ in fast_writes["deliveries"]:
        per_sub.setdefault(sub, []).append(event)
    assert {k: sorted(v) for k, v in per_sub.items()} == {
        "sub-all": [f"taken{i}" for i in range(6)],
        "sub-empty": [f"taken{i}" for i in range(6)],
        "sub-create": [f"taken{i}" for i in range(6)],
        "sub-first": ["taken0"],
        "sub-reserved": ["taken4"],
    }
    assert len(fast_writes["chain"]) == len(general_writes["chain"]) > len(REQUESTS)


def test_a_due_quarantine_is_reclaimed_by_the_general_path(
    session_factory: sessionmaker[Session], spy: list[str], db_url: str
) -> None:
    # given a released /29 whose quarantine has ended
    clock.freeze(T0)
    with session_factory() as s:
        pool_id = _pool(s, "q", prefix="10.0.0.0/28", quarantineSeconds=60)
        first, _ = services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")
        services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")  # the pool is now full
        services.release(s, first.id, "t")
    clock.advance(timedelta(seconds=61))
    spy.clear()
    # when the (full) pool is asked for a /29
    with session_factory() as s:
        taken, _ = services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")
    # then the fast path declined (a reclaim is due) and the general path reclaimed and reused the block
    assert spy == ([] if is_sqlite(db_url) else ["declined"])
    assert (taken.lo, taken.k) == (10 << 24, 3)
    with session_factory() as s:
        states = (
            s.execute(
                select(LogicalBlock.state).where(LogicalBlock.space_id == pool_id).order_by(LogicalBlock.lo)
            )
            .scalars()
            .all()
        )
        assert states == ["allocated", "allocated", "end"]
        assert (
            s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.resource_id == taken.id))
            == 1
        )


def test_a_changed_pool_is_read_again_and_a_deleted_one_is_not_found(
    session_factory: sessionmaker[Session], spy: list[str], db_url: str
) -> None:
    # given a pool this process has allocated from (and so cached)
    with session_factory() as s:
        pool_id = _pool(s, "c")
        services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")
        # when another client renames it
        services.update_pool(s, pool_id, PoolUpdate(name="renamed"), "t")
    spy.clear()
    with session_factory() as s:
        taken, space = services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")
        again, _ = services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")
    # then the fast path declined once, the general path used the new name, and the fast path serves again
    assert spy == ([] if is_sqlite(db_url) else ["declined", "served"])
    assert space.name == "renamed"
    with session_factory() as s:
        payloads = s.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.resource_id.in_([taken.id, again.id]))
        )
        assert [p["event"]["resource"]["resourcePool"]["name"] for p in payloads] == ["renamed", "renamed"]
        # when the pool is emptied and deleted, an allocation is a 404 and writes nothing
        for block_id in (taken.id, again.id):
            services.release(s, block_id, "t")
        first = s.scalar(
            select(LogicalBlock.id).where(LogicalBlock.space_id == pool_id, LogicalBlock.state == "allocated")
        )
        assert first is not None
        services.release(s, first, "t")
        services.delete_pool(s, pool_id, "t")
        events = s.scalar(select(func.count()).select_from(OutboxEvent))
    with session_factory() as s, pytest.raises(NotFound, match="poolId: resource pool"):
        services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == events


def test_a_pool_renamed_by_another_client_is_read_again_by_a_long_lived_session(
    session_factory: sessionmaker[Session], spy: list[str], db_url: str
) -> None:
    # given a session that allocated from a pool (and holds its row), and another client that renames it
    long_lived = session_factory()
    try:
        with session_factory() as s:
            pool_id = _pool(s, "r")
        services.allocate(long_lived, pool_id, AllocationRequest(prefixLength=29), "t")
        with session_factory() as other:
            services.update_pool(other, pool_id, PoolUpdate(name="renamed"), "other")
        spy.clear()
        # when the long-lived session allocates again, twice
        first, space = services.allocate(long_lived, pool_id, AllocationRequest(prefixLength=29), "t")
        second, again = services.allocate(long_lived, pool_id, AllocationRequest(prefixLength=29), "t")
    finally:
        long_lived.close()
    # then the fast path declined the stale copy once, and both events carry the new name
    if not is_sqlite(db_url):
        assert spy == ["declined", "served"]
        assert (space.name, again.name) == ("renamed", "renamed")
        with session_factory() as s:
            names = s.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.resource_id.in_([first.id, second.id]))
            )
            assert [p["event"]["resource"]["resourcePool"]["name"] for p in names] == ["renamed", "renamed"]


def test_an_exhausted_pool_is_a_409_from_the_general_path(
    session_factory: sessionmaker[Session], spy: list[str], db_url: str
) -> None:
    with session_factory() as s:
        pool_id = _pool(s, "x", prefix="10.0.0.0/29")
        services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")
        audits = s.scalar(select(func.count()).select_from(AuditEntry))
    with (
        session_factory() as s,
        pytest.raises(Conflict, match="prefixLength: pool 'pool' has no free /29 left"),
    ):
        services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")
    assert spy == ([] if is_sqlite(db_url) else ["served", "declined"])
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == audits


def test_other_requests_never_reach_the_fast_path(
    session_factory: sessionmaker[Session], spy: list[str]
) -> None:
    with session_factory() as s:
        pool_id = _pool(s, "o")
        services.create_pool(s, PoolCreate(poolType="ipAggregate", name="v6", prefix="2001:db8::/32"), "t")
        v6 = services.create_pool(
            s, PoolCreate(poolType="ipPool", name="v6p", prefix="2001:db8::/48"), "t"
        ).id
        vlan = services.create_pool(s, PoolCreate(poolType="vlanPool", name="v", start=100, end=199), "t").id
        spy.clear()
        a, _ = services.allocate(s, pool_id, AllocationRequest(prefix="10.0.5.0/24"), "t")
        b, _ = services.allocate(s, v6, AllocationRequest(prefixLength=64), "t")
        c, _ = services.allocate(s, vlan, AllocationRequest(), "t")
        d, _ = services.allocate(s, vlan, AllocationRequest(value=150), "t")
    assert spy == []
    assert [(x.lo, x.k) for x in (a, c, d)] == [((10 << 24) + (5 << 8), 8), (100, 0), (150, 0)]
    assert b.k == 64


def test_locked_candidates_send_the_request_to_the_general_path(
    db_url: str, session_factory: sessionmaker[Session], spy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if is_sqlite(db_url):
        pytest.skip("row locks and SKIP LOCKED are PostgreSQL's")
    tried = threading.Event()
    spied = fastpath.allocate

    def signalling(*args: Any, **kwargs: Any) -> Any:
        try:
            return spied(*args, **kwargs)
        finally:
            tried.set()

    monkeypatch.setattr(fastpath, "allocate", signalling)
    with session_factory() as s:
        pool_id = _pool(s, "l", prefix="10.0.0.0/29")
    holder = session_factory()
    outcome: list[Any] = []
    try:
        # given another transaction holding the pool's only free block locked
        holder.execute(
            text("SELECT id FROM logical_block WHERE space_id = :p AND state = 'free' FOR UPDATE"),
            {"p": pool_id},
        )

        def client() -> None:
            with session_factory() as s:
                outcome.append(services.allocate(s, pool_id, AllocationRequest(prefixLength=29), "t")[0])

        thread = threading.Thread(target=client)
        thread.start()
        # when that transaction ends without changing anything, after the client's fast path has run
        assert tried.wait(60)
        holder.rollback()
        thread.join()
    finally:
        holder.close()
    # then the fast path declined (nothing it could lock) and the general path allocated the block
    assert spy == ["declined"]
    assert [(t.lo, t.k) for t in outcome] == [(10 << 24, 3)]


@pytest.mark.slow
def test_concurrent_threads_on_one_pool_never_duplicate_or_overlap(
    db_url: str, engine: object, spy: list[str]
) -> None:
    # given a /20 pool (4096 addresses) and 16 threads asking for /29s and /28s until it is full
    eng = make_engine(db_url, pool_size=18, max_overflow=0)
    factory = make_sessionmaker(eng)
    with factory() as s:
        pool_id = _pool(s, "cc", prefix="10.9.0.0/20")
    results: list[tuple[str, int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def client(n: int) -> None:
        length = 28 if n % 3 == 0 else 29
        barrier.wait()
        with factory() as s:
            while True:
                try:
                    taken, _ = services.allocate(s, pool_id, AllocationRequest(prefixLength=length), f"c{n}")
                except Conflict as exc:
                    s.rollback()
                    if exc.reason == "Pool exhausted" and length == 28:
                        length = 29
                        continue
                    if exc.reason != "Pool exhausted":
                        with lock:
                            errors.append(exc)
                    return
                except BaseException as exc:  # pragma: no cover - reported below
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    results.append((taken.id, taken.lo, taken.k))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        # then: no duplicate, no overlap, the pool exactly full, every success written once
        spans = sorted((lo, lo + (1 << k)) for _, lo, k in results)
        assert len({r[0] for r in results}) == len(results)
        assert all(a[1] <= b[0] for a, b in pairwise(spans))
        assert sum(b - a for a, b in spans) == 4096
        if not is_sqlite(db_url):
            assert spy.count("served") > 0
        with factory() as s:
            rows = s.execute(
                select(LogicalBlock.id, LogicalBlock.lo, LogicalBlock.hi, LogicalBlock.k, LogicalBlock.state)
                .where(LogicalBlock.space_id == pool_id)
                .order_by(LogicalBlock.lo)
            ).all()
            assert [r.state for r in rows] == ["allocated"] * len(results) + ["end"]
            assert all(a.hi == b.lo for a, b in pairwise(rows))  # an unbroken chain
            assert sorted((r.id, unhex(r.lo), r.k) for r in rows[:-1]) == sorted(results)
            ids = [r[0] for r in results]
            assert s.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.resource_id.in_(ids))
            ) == len(results)
            assert s.scalar(
                select(func.count(func.distinct(OutboxEvent.resource_id))).where(
                    OutboxEvent.resource_id.in_(ids)
                )
            ) == len(results)
            assert s.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.resource_id.in_(ids))
            ) == len(results)
    finally:
        eng.dispose()
