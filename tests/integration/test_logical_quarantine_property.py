"""Property: no prefix, address or number is handed out again before its quarantine/aging ends, and a
pool reports exhaustion only when everything is really held. Time moves with turnup.kernel.clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory.logical import numbers, reservations, services
from turnup.inventory.logical.chain import Exhausted
from turnup.inventory.logical.orm import LogicalSpace
from turnup.inventory.logical.schemas import AllocationRequest, NumberImport, NumberUpdate, PoolCreate
from turnup.kernel import clock
from turnup.kernel.errors import Conflict

T0 = datetime(2031, 1, 1, tzinfo=UTC)
QUARANTINE = 3600
_names = itertools.count()

ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(0, 1)),
        st.tuples(st.just("release"), st.integers(0, 50)),
        st.tuples(st.just("advance"), st.integers(0, 2 * QUARANTINE)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops_strategy)
def test_no_prefix_is_reallocated_before_its_quarantine_ends(
    session_factory: sessionmaker[Session], ops: list[tuple[str, int]]
) -> None:
    clock.freeze(T0)
    n = next(_names) % 256
    with session_factory() as s:
        if s.scalar(select(LogicalSpace.id).where(LogicalSpace.name == "agg")) is None:
            services.create_pool(s, PoolCreate(poolType="ipAggregate", name="agg", prefix="10.0.0.0/8"), "t")
        pool = services.create_pool(
            s,
            PoolCreate(
                poolType="ipPool", name=f"p{n}", prefix=f"10.{n}.0.0/29", quarantineSeconds=QUARANTINE
            ),
            "t",
        )
        live: dict[str, tuple[int, int]] = {}
        quarantined: list[tuple[int, int, datetime]] = []  # (lo, hi, until)
        for op, arg in ops:
            now = clock.now()
            if op == "alloc":
                length = 30 if arg else 32
                try:
                    taken, _ = services.allocate(s, pool.id, AllocationRequest(prefixLength=length), "t")
                except Exhausted:
                    s.rollback()
                    held = sum(hi - lo for lo, hi in live.values()) + sum(
                        hi - lo for lo, hi, until in quarantined if until > now
                    )
                    # exhausted means no aligned block of that size is left, never a false refusal
                    assert (
                        held > 8 - (1 << (32 - length))
                        or held == 8
                        or _fragmented(live, quarantined, now, 32 - length)
                    )
                    continue
                lo, hi = taken.lo, taken.lo + (1 << taken.k)
                for qlo, qhi, until in quarantined:
                    overlaps = lo < qhi and qlo < hi
                    assert not (overlaps and until > now), "re-allocated during quarantine"
                assert all(not (lo < b and a < hi) for a, b in live.values())
                live[taken.id] = (lo, hi)
            elif op == "release" and live:
                block_id = sorted(live)[arg % len(live)]
                services.release(s, block_id, "t")
                lo, hi = live.pop(block_id)
                quarantined.append((lo, hi, now + timedelta(seconds=QUARANTINE)))
            elif op == "advance":
                clock.freeze(now + timedelta(seconds=arg))


def _fragmented(
    live: dict[str, tuple[int, int]], quarantined: list[tuple[int, int, datetime]], now: datetime, k: int
) -> bool:
    """True when every aligned block of size 2**k in the /29 touches something held."""
    base = min([lo for lo, _ in live.values()] + [lo for lo, _, _ in quarantined] or [0]) & ~7
    held = list(live.values()) + [(lo, hi) for lo, hi, until in quarantined if until > now]
    for start in range(base, base + 8, 1 << k):
        if not any(start < hi and lo < start + (1 << k) for lo, hi in held):
            return False
    return True


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("take"), st.just(0)),
            st.tuples(st.just("release"), st.integers(0, 20)),
            st.tuples(st.just("advance"), st.integers(0, 120)),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_no_number_is_reserved_again_before_its_aging_ends(
    session_factory: sessionmaker[Session], ops: list[tuple[str, int]]
) -> None:
    clock.freeze(T0)
    n = next(_names) % 1000
    head = f"+44207946{n:03d}"  # three numbers per example: +44 20 7946 nnn0..nnn2
    with session_factory() as s:
        numbers.import_numbers(s, NumberImport(start=head + "0", end=head + "2"), "t")
        assigned: dict[str, str] = {}  # number id -> digits
        aging: dict[str, datetime] = {}  # digits -> aging end
        for op, arg in ops:
            now = clock.now()
            if op == "take":
                try:
                    r = reservations.reserve(
                        s,
                        [
                            reservations.ReserveLine(
                                "telephoneNumber", {"country": "GB", "pattern": f"0207946{n:03d}?"}
                            )
                        ],
                        now + timedelta(hours=1),
                        "t",
                    )
                except Conflict:
                    assert len(assigned) + sum(1 for end in aging.values() if end > now) == 3
                    continue
                value = r.items[0].value[1:]
                assert aging.get(value, now) <= now, "number reused during aging"
                reservations.commit(s, r.id, "t", service_id="svc")
                assigned[r.items[0].number_id or ""] = value
            elif op == "release" and assigned:
                number_id = sorted(assigned)[arg % len(assigned)]
                numbers.update_number(s, number_id, NumberUpdate(status="aging"), "t")
                aging[assigned.pop(number_id)] = now + timedelta(days=90)
            elif op == "advance":
                clock.freeze(now + timedelta(days=arg))
