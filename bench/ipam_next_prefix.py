"""Next free /29 from a /8 holding N existing /29 allocations (packed, and randomly scattered), through the
service layer (validation, allocation, audit, outbox event, commit) on PostgreSQL.

    nice -n 10 .venv/bin/python bench/ipam_next_prefix.py            # 1M existing allocations
    .venv/bin/python bench/ipam_next_prefix.py --smoke               # 20k, quick

The existing allocations are bulk-loaded as chain rows with COPY (building 1M through the API would take
longer than the bench); the chain is verified (contiguous, no overlap) before and after measuring.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from turnup.inventory.logical import services
from turnup.inventory.logical.benchkit import (
    baseline_ms,
    bench_database,
    copy_blocks,
    raw_connection,
    report,
    timed,
)
from turnup.inventory.logical.codec import decompose, hexkey
from turnup.inventory.logical.schemas import AllocationRequest, PoolCreate
from turnup.kernel.db import make_sessionmaker
from turnup.kernel.ids import new_id
from turnup.wiring import wire

wire()  # every consumer registered: publish refuses to run in an unwired process

SLOTS = 1 << 21  # /29s in a /8


def chain_rows(space_id: str, base: int, taken_slots: list[int]) -> io.StringIO:
    """COPY text for a /8 chain: the taken /29 slots allocated, every gap as aligned free blocks."""
    out = io.StringIO()
    cursor = 0

    def free(a: int, b: int) -> None:
        for start, k in decompose(base + a * 8, base + b * 8):
            out.write(f"{new_id()}\t{space_id}\t{hexkey(start)}\t{hexkey(start + (1 << k))}\t{k}\tfree\n")

    for slot in taken_slots:
        if slot > cursor:
            free(cursor, slot)
        lo = base + slot * 8
        out.write(f"{new_id()}\t{space_id}\t{hexkey(lo)}\t{hexkey(lo + 8)}\t3\tallocated\n")
        cursor = slot + 1
    if cursor < SLOTS:
        free(cursor, SLOTS)
    out.write(f"{new_id()}\t{space_id}\t{hexkey(base + SLOTS * 8)}\t\\N\t\\N\tend\n")
    out.seek(0)
    return out


def load(url: str, space_id: str, base: int, slots: list[int]) -> int:
    return copy_blocks(url, space_id, chain_rows(space_id, base, slots))


def verify(url: str, space_id: str) -> tuple[int, int]:
    """(links broken, overlaps): both must be 0."""
    with raw_connection(url) as conn:
        broken = conn.execute(
            "SELECT count(*) FROM (SELECT hi, lead(lo) OVER (ORDER BY lo) AS nxt FROM logical_block "
            "WHERE space_id = %s) c WHERE hi IS NOT NULL AND hi <> nxt",
            (space_id,),
        ).fetchone()[0]
        dup = conn.execute(
            "SELECT count(*) - count(DISTINCT lo) FROM logical_block WHERE space_id = %s", (space_id,)
        ).fetchone()[0]
    return int(broken), int(dup)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--existing", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--smoke", action="store_true", help="20k existing, 50 samples")
    args = parser.parse_args()
    if args.smoke:
        args.existing, args.samples = 20_000, 50
    rng = random.Random(42)
    with bench_database() as (url, engine):
        factory = make_sessionmaker(engine)
        pools = {}
        with factory() as s:
            for i, name in enumerate(("packed", "scattered")):
                prefix = f"{10 + i}.0.0.0/8"
                services.create_pool(
                    s, PoolCreate(poolType="ipAggregate", name=f"agg-{name}", prefix=prefix), "b"
                )
                pools[name] = (
                    services.create_pool(s, PoolCreate(poolType="ipPool", name=name, prefix=prefix), "b").id,
                    (10 + i) << 24,
                )
        t0 = time.perf_counter()
        n_rows = {}
        n_rows["packed"] = load(url, pools["packed"][0], pools["packed"][1], list(range(args.existing)))
        n_rows["scattered"] = load(
            url, pools["scattered"][0], pools["scattered"][1], sorted(rng.sample(range(SLOTS), args.existing))
        )
        print(f"loaded {args.existing:,} allocations per pool ({n_rows}) in {time.perf_counter() - t0:.1f} s")
        base = baseline_ms(engine)
        print(f"baseline SELECT 1 round trip p50 = {base:.3f} ms")
        for name, (pool_id, _) in pools.items():
            broken, dup = verify(url, pool_id)
            assert (broken, dup) == (0, 0), (name, broken, dup)
            for policy in ("best-fit", "first-fit"):
                with factory() as s:
                    req = AllocationRequest(prefixLength=29, allocationPolicy=policy)  # type: ignore[arg-type]
                    samples = timed(partial(services.allocate, s, pool_id, req, "bench"), args.samples)
                print(report(f"next free /29, {name}, {policy}", samples, base))
            broken, dup = verify(url, pool_id)
            print(f"  chain after: broken links={broken} duplicate starts={dup}")
            assert (broken, dup) == (0, 0)


if __name__ == "__main__":
    main()
