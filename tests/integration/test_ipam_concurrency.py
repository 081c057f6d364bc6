"""32 real threads allocating from ONE pool (SQLite and PostgreSQL): no duplicates, no overlaps, every
success recorded exactly once, exhaustion a 409 for everybody; and on PostgreSQL an open allocation
transaction blocks neither its own pool nor another pool."""

from __future__ import annotations

import threading
from collections import Counter
from itertools import pairwise

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory.logical import chain, services
from turnup.inventory.logical.codec import unhex
from turnup.inventory.logical.orm import LogicalBlock, LogicalSpace
from turnup.inventory.logical.schemas import AllocationRequest, PoolCreate
from turnup.kernel.audit import AuditEntry
from turnup.kernel.db import is_sqlite, make_engine, make_sessionmaker
from turnup.kernel.errors import Conflict

CLIENTS = 32


def _setup(factory: sessionmaker[Session], *prefixes: str) -> list[str]:
    with factory() as s:
        services.create_pool(s, PoolCreate(poolType="ipAggregate", name="agg", prefix="10.0.0.0/8"), "t")
        return [
            services.create_pool(s, PoolCreate(poolType="ipPool", name=p, prefix=p), "t").id for p in prefixes
        ]


@pytest.mark.slow
def test_32_clients_on_one_pool_never_duplicate_or_overlap(db_url: str, engine: object) -> None:
    # given a /21 pool: exactly 256 /29s
    eng = make_engine(db_url, pool_size=CLIENTS + 2, max_overflow=0)
    factory = make_sessionmaker(eng)
    (pool_id,) = _setup(factory, "10.20.0.0/21")
    results: list[tuple[str, int, int]] = []
    refusals: list[Conflict] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        start.wait()
        # mix sizes so clients split and fight over the same big blocks
        length = 29 if n % 4 else 28
        with factory() as session:
            while True:
                try:
                    taken, _ = services.allocate(
                        session, pool_id, AllocationRequest(prefixLength=length), f"c{n}"
                    )
                except Conflict as exc:
                    session.rollback()
                    if exc.reason == "Pool exhausted":
                        with lock:
                            refusals.append(exc)
                        if length == 28:
                            length = 29
                            continue
                        return
                    raise
                except BaseException as exc:  # pragma: no cover - reported below
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    results.append((taken.id, taken.lo, taken.k))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        # then: no duplicates, no overlaps, the pool is exactly full
        assert len({r[0] for r in results}) == len(results)
        spans = sorted((lo, lo + (1 << k)) for _, lo, k in results)
        assert all(a[1] <= b[0] for a, b in pairwise(spans))
        assert sum(b - a for a, b in spans) == 2048
        assert all(exc.status == 409 for exc in refusals) and len(refusals) >= CLIENTS
        with factory() as s:
            rows = s.execute(
                select(LogicalBlock.id, LogicalBlock.lo, LogicalBlock.k).where(
                    LogicalBlock.space_id == pool_id, LogicalBlock.state == "allocated"
                )
            ).all()
            assert sorted((r.id, unhex(r.lo), r.k) for r in rows) == sorted(results)
            # every success recorded once in the audit trail
            audited = Counter(
                s.scalars(
                    select(AuditEntry.resource_id).where(AuditEntry.action == "logicalResource.allocate")
                )
            )
            assert audited == Counter(r[0] for r in results)
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(LogicalBlock)
                    .where(LogicalBlock.space_id == pool_id, LogicalBlock.state == "free")
                )
                == 0
            )
    finally:
        eng.dispose()


def test_an_open_allocation_blocks_neither_its_pool_nor_another(db_url: str, engine: object) -> None:
    if is_sqlite(db_url):
        pytest.skip("SQLite serialises every writer (BEGIN IMMEDIATE); per-pool independence is PostgreSQL's")
    eng = make_engine(db_url)
    factory = make_sessionmaker(eng)
    pool_a, pool_b = _setup(factory, "10.1.0.0/16", "10.2.0.0/16")
    with factory() as first:  # a used pool: its space is spread over several free blocks
        services.allocate(first, pool_a, AllocationRequest(prefixLength=24), "first")
    holder = factory()
    try:
        # given a transaction that took a block of pool A and has not committed
        space_a = holder.get(LogicalSpace, pool_a)
        assert space_a is not None
        held = chain.take(holder, space_a, 8)
        # when other clients allocate from pool A and pool B, refusing to wait for any lock
        for pool_id in (pool_a, pool_b, pool_a):
            with factory() as other:
                other.execute(text("SET LOCAL lock_timeout = '3s'"))
                taken, _ = services.allocate(other, pool_id, AllocationRequest(prefixLength=24), "other")
                # then they succeed, on blocks that do not overlap the held one
                assert not (taken.lo < held.lo + 256 and held.lo < taken.lo + 256)
    finally:
        holder.rollback()
        holder.close()
        eng.dispose()
