"""IPAM through the service layer, on SQLite and PostgreSQL: hierarchy, fit policies, quarantine,
utilisation, bad input, and non-overlap enforced by the database itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from turnup.inventory.logical import services
from turnup.inventory.logical.codec import hexkey
from turnup.inventory.logical.orm import LogicalBlock, LogicalSpace
from turnup.inventory.logical.render import render_block
from turnup.inventory.logical.schemas import AllocationRequest, PoolCreate
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.outbox import OutboxEvent


def _pool(session: Session, prefix: str = "10.1.0.0/16", **extra: object) -> LogicalSpace:
    if (
        session.scalar(select(func.count()).select_from(LogicalSpace).where(LogicalSpace.role == "aggregate"))
        == 0
    ):
        services.create_pool(
            session, PoolCreate(poolType="ipAggregate", name="rfc1918", prefix="10.0.0.0/8"), "t"
        )
        services.create_pool(
            session, PoolCreate(poolType="ipAggregate", name="doc6", prefix="2001:db8::/32"), "t"
        )
    return services.create_pool(
        session, PoolCreate(poolType="ipPool", name=f"pool {prefix}", prefix=prefix, **extra), "t"
    )  # type: ignore[arg-type]


def _alloc(session: Session, pool: LogicalSpace, **req: object) -> str:
    taken, space = services.allocate(session, pool.id, AllocationRequest(**req), "t")  # type: ignore[arg-type]
    return render_block(taken, space)["value"]


def _counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(LogicalBlock)) or 0,
        session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        session.scalar(select(func.count()).select_from(OutboxEvent)) or 0,
    )


def test_best_fit_uses_the_smallest_hole_and_first_fit_the_lowest(session: Session) -> None:
    pool = _pool(session, "10.1.0.0/24")
    assert _alloc(session, pool, prefixLength=26) == "10.1.0.0/26"
    assert _alloc(session, pool, prefixLength=29) == "10.1.0.64/29"
    assert _alloc(session, pool, prefixLength=25) == "10.1.0.128/25"
    # holes now: 10.1.0.72/29, /28 at .80, /27 at .96: best fit for a /28 is .80, not a split of .96
    assert _alloc(session, pool, prefixLength=28) == "10.1.0.80/28"
    assert _alloc(session, pool, prefixLength=30, allocationPolicy="first-fit") == "10.1.0.72/30"
    assert _alloc(session, pool, prefix="10.1.0.112/28") == "10.1.0.112/28"


def test_specific_prefix_that_overlaps_is_409_and_changes_nothing(session: Session) -> None:
    pool = _pool(session)
    _alloc(session, pool, prefix="10.1.2.0/24")
    before = _counts(session)
    for prefix in ("10.1.2.0/24", "10.1.2.8/29", "10.1.0.0/22", "10.1.2.77"):
        with pytest.raises(Conflict, match=r"prefix: .* is not free"):
            _alloc(session, pool, prefix=prefix)
        session.rollback()
    assert _counts(session) == before


def test_ipv6_allocation_and_host_addresses_from_a_subnet(session: Session) -> None:
    v6 = _pool(session, "2001:db8:100::/48")
    assert _alloc(session, v6, prefixLength=64) == "2001:db8:100::/64"
    assert _alloc(session, v6, prefixLength=56) == "2001:db8:100:100::/56"
    _pool(session)
    subnet = services.create_pool(
        session, PoolCreate(poolType="ipSubnet", name="lan", prefix="10.1.7.0/29"), "t"
    )
    hosts = [_alloc(session, subnet) for _ in range(6)]
    assert hosts == [f"10.1.7.{i}/32" for i in range(1, 7)]  # .0 network and .7 broadcast are system
    with pytest.raises(Conflict, match="no free address left"):
        _alloc(session, subnet)


def test_subnet_from_an_allocated_prefix(session: Session) -> None:
    pool = _pool(session)
    taken, _ = services.allocate(session, pool.id, AllocationRequest(prefixLength=30), "t")
    subnet = services.create_pool(
        session, PoolCreate(poolType="ipSubnet", name="p2p", fromResourceId=taken.id), "t"
    )
    assert subnet.prefix == "10.1.0.0/30"
    assert [_alloc(session, subnet), _alloc(session, subnet)] == ["10.1.0.1/32", "10.1.0.2/32"]


def test_release_quarantines_until_the_period_ends(session: Session) -> None:
    pool = _pool(session, "10.1.0.0/30", quarantineSeconds=3600)
    ids = []
    for _ in range(4):
        taken, _ = services.allocate(session, pool.id, AllocationRequest(), "t")
        ids.append(taken.id)
    doc = services.release(session, ids[0], "t")
    assert doc["lifecycleState"] == "quarantine"
    with pytest.raises(Conflict) as exc:
        _alloc(session, pool)
    assert exc.value.status == 409 and exc.value.reason == "Pool exhausted"
    session.rollback()
    clock.advance(timedelta(seconds=3599))
    with pytest.raises(Conflict):
        _alloc(session, pool)
    session.rollback()
    clock.advance(timedelta(seconds=2))
    assert _alloc(session, pool) == "10.1.0.0/32"


def test_release_of_something_not_allocated_is_an_error_naming_the_id(session: Session) -> None:
    pool = _pool(session, "10.1.0.0/29")
    taken, _ = services.allocate(session, pool.id, AllocationRequest(), "t")
    services.release(session, taken.id, "t")
    with pytest.raises(NotFound, match="id: logicalResource"):
        services.release(session, taken.id, "t")  # freed at once (no quarantine) and merged
    with pytest.raises(NotFound, match="id: logicalResource 'nope'"):
        services.release(session, "nope", "t")


def test_released_buddies_merge_back(session: Session) -> None:
    pool = _pool(session, "10.1.0.0/24")
    ids = [
        services.allocate(session, pool.id, AllocationRequest(prefixLength=26), "t")[0].id for _ in range(4)
    ]
    for block_id in ids:
        services.release(session, block_id, "t")
    rows = session.execute(
        select(LogicalBlock.state, LogicalBlock.k)
        .where(LogicalBlock.space_id == pool.id)
        .order_by(LogicalBlock.lo)
    ).all()
    assert [tuple(r) for r in rows] == [("free", 8), ("end", None)]


def test_utilisation_per_pool(session: Session) -> None:
    pool = _pool(session, "10.1.0.0/24")
    _alloc(session, pool, prefixLength=26)
    _alloc(session, pool, prefixLength=28, reservedUntil=clock.now() + timedelta(hours=1))
    u = services.utilization(session, pool.id)
    assert (u["total"], u["allocated"], u["reserved"], u["free"]) == (256, 64, 16, 176)
    assert u["utilizationPercent"] == 31.25


def test_expired_reservation_returns_to_the_pool(session: Session) -> None:
    pool = _pool(session, "10.1.0.0/30")
    _alloc(session, pool, prefixLength=30, reservedUntil=clock.now() + timedelta(minutes=5))
    with pytest.raises(Conflict):
        _alloc(session, pool)
    session.rollback()
    clock.advance(timedelta(minutes=6))
    assert _alloc(session, pool, prefixLength=30) == "10.1.0.0/30"


@pytest.mark.parametrize(
    ("req", "message"),
    [
        ({"prefixLength": 15}, "prefixLength: /15 is outside pool 10.1.0.0/16"),
        ({"prefixLength": 33}, "prefixLength: /33 is outside pool"),
        ({"prefix": "10.1.0.1/24"}, "prefix: '10.1.0.1/24' has host bits set"),
        ({"prefix": "10.2.0.0/24"}, "prefix: 10.2.0.0/24 is outside pool 10.1.0.0/16"),
        ({"prefix": "banana"}, "prefix: 'banana' is not a valid IP address"),
        ({"prefix": "2001:db8::/64"}, "prefix: 2001:db8::/64 is ipv6 but pool"),
        ({"value": 5}, "value: not used for IP pools"),
    ],
)
def test_bad_allocation_input_names_the_field_and_changes_nothing(
    session: Session, req: dict[str, object], message: str
) -> None:
    pool = _pool(session)
    before = _counts(session)
    with pytest.raises(InvalidInput, match=message):
        _alloc(session, pool, **req)
    session.rollback()
    assert _counts(session) == before


def test_bad_pool_definitions(session: Session) -> None:
    _pool(session)
    before = _counts(session)
    cases = [
        (
            PoolCreate(poolType="ipAggregate", name="x", prefix="10.0.0.0/7"),
            Conflict,
            "prefix: 10.0.0.0/7 overlaps an existing aggregate",
        ),
        (
            PoolCreate(poolType="ipAggregate", name="x", prefix="10.5.0.0/16"),
            Conflict,
            "prefix: 10.5.0.0/16 overlaps",
        ),
        (
            PoolCreate(poolType="ipPool", name="x", prefix="10.0.0.0/15"),
            Conflict,
            "prefix: 10.0.0.0/15 overlaps an existing pool",
        ),
        (
            PoolCreate(poolType="ipPool", name="x", prefix="172.16.0.0/12"),
            InvalidInput,
            "prefix: 172.16.0.0/12 is not inside any ipAggregate",
        ),
        (
            PoolCreate(poolType="ipPool", name="x", prefix="10.9.0.1/16"),
            InvalidInput,
            "prefix: .* host bits set",
        ),
        (
            PoolCreate(poolType="ipPool", name="pool 10.1.0.0/16", prefix="10.9.0.0/16"),
            Conflict,
            "name: a ipv4 pool named",
        ),
    ]
    for data, error, message in cases:
        with pytest.raises(error, match=message):
            services.create_pool(session, data, "t")
        session.rollback()
    assert _counts(session) == before
    # the same prefix in another routing domain (VRF) is fine
    services.create_pool(
        session,
        PoolCreate(poolType="ipAggregate", name="cust-a", prefix="10.0.0.0/8", routingDomain="cust-a"),
        "t",
    )


def test_the_database_rejects_overlapping_blocks_even_without_the_service(session: Session) -> None:
    """Unique (space, lo), unique (space, hi), hi > lo and the deferred chain key admit no overlap."""
    pool = _pool(session, "10.1.0.0/24")
    session.commit()
    head = session.scalars(
        select(LogicalBlock).where(LogicalBlock.space_id == pool.id).order_by(LogicalBlock.lo)
    ).first()
    assert head is not None and head.k == 8
    base = 0x0A010000
    attempts = [
        # a /29 inside the free /24 (its hi links to nothing)
        lambda: session.execute(
            insert(LogicalBlock.__table__).values(
                id="x1", space_id=pool.id, lo=hexkey(base + 8), hi=hexkey(base + 16), k=3, state="allocated"
            )
        ),
        # the same start twice
        lambda: session.execute(
            insert(LogicalBlock.__table__).values(
                id="x2", space_id=pool.id, lo=hexkey(base), hi=hexkey(base + 8), k=3, state="allocated"
            )
        ),
        # shrinking a block leaves a hole the chain cannot cross
        lambda: session.execute(
            update(LogicalBlock.__table__)
            .where(LogicalBlock.id == head.id)
            .values(hi=hexkey(base + 128), k=7)
        ),
        # a block ending before it starts
        lambda: session.execute(
            update(LogicalBlock.__table__).where(LogicalBlock.id == head.id).values(hi=hexkey(base - 1))
        ),
    ]
    for attempt in attempts:
        with pytest.raises(IntegrityError):
            attempt()
            session.commit()  # the chain key is checked at commit
        session.rollback()
    assert (
        session.scalar(select(func.count()).select_from(LogicalBlock).where(LogicalBlock.space_id == pool.id))
        == 2
    )
