"""Next free ASN in 4200000000-4294967294 with 1M ASNs in use, through the service layer on PostgreSQL, with
the memory it costs. The 32-bit private range is never materialised: the pool is its chain of aligned blocks.

    nice -n 10 .venv/bin/python bench/asn_next.py          # 1M used (packed, and scattered)
    .venv/bin/python bench/asn_next.py --smoke             # 20k used
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import sys
import time
import tracemalloc
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

LO, HI = 4200000000, 4294967295  # [LO, HI)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def heap_peak(fn: object, repeat: int = 50) -> float:
    """Peak Python heap (MB) over a separate loop (tracemalloc slows Python; latency is timed without it)."""
    tracemalloc.start()
    for _ in range(repeat):
        fn()  # type: ignore[operator]
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def load(url: str, space_id: str, used: list[int]) -> int:
    out = io.StringIO()
    cursor = LO

    def free(a: int, b: int) -> None:
        for start, k in decompose(a, b):
            out.write(f"{new_id()}\t{space_id}\t{hexkey(start)}\t{hexkey(start + (1 << k))}\t{k}\tfree\n")

    for value in used:
        if value > cursor:
            free(cursor, value)
        out.write(f"{new_id()}\t{space_id}\t{hexkey(value)}\t{hexkey(value + 1)}\t0\tallocated\n")
        cursor = value + 1
    free(cursor, HI)
    out.write(f"{new_id()}\t{space_id}\t{hexkey(HI)}\t\\N\t\\N\tend\n")
    return copy_blocks(url, space_id, out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--used", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.used, args.samples = 20_000, 50
    rng = random.Random(7)
    with bench_database() as (url, engine):
        factory = make_sessionmaker(engine)
        with factory() as s:
            packed = services.create_pool(
                s, PoolCreate(poolType="asnPool", name="packed", start=LO, end=HI - 1), "b"
            )
            packed_id = packed.id
        t0 = time.perf_counter()
        rows = load(url, packed_id, list(range(LO, LO + args.used)))
        print(
            f"packed: {args.used:,} ASNs used, chain of {rows:,} rows, loaded in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        base = baseline_ms(engine)
        print(f"baseline SELECT 1 round trip p50 = {base:.3f} ms")
        with factory() as s:
            first, _space = services.allocate(s, packed_id, AllocationRequest(), "b")
            assert first.lo == LO + args.used, first.lo
            gc.collect()
            rss0 = rss_mb()
            samples = timed(lambda: services.allocate(s, packed_id, AllocationRequest(), "b"), args.samples)
            rss1 = rss_mb()
            peak = heap_peak(lambda: services.allocate(s, packed_id, AllocationRequest(), "b"))
        print(report("next free ASN, 1M used (packed)", samples, base))
        print(
            f"  first free was {first.lo} (= {LO} + {args.used:,}); "
            "Python heap peak over 50 more allocations "
            f"{peak:.2f} MB; RSS {rss0:.0f} -> {rss1:.0f} MB"
        )
        # scattered: the used ASNs are a random half of the first 2M values of a fresh 32-bit space
        with raw_connection(url) as conn:
            conn.execute("DELETE FROM logical_block WHERE space_id = %s", (packed_id,))
            conn.execute(
                "UPDATE logical_block SET state = 'free', child_space_id = NULL WHERE child_space_id = %s",
                (packed_id,),
            )
            conn.execute("DELETE FROM logical_space WHERE id = %s", (packed_id,))
            conn.commit()
        with factory() as s:
            scattered_id = services.create_pool(
                s, PoolCreate(poolType="asnPool", name="scattered", start=LO, end=HI - 1), "b"
            ).id
        used = sorted(rng.sample(range(LO, LO + 2 * args.used), args.used))
        rows = load(url, scattered_id, used)
        print(f"scattered: {args.used:,} ASNs used, chain of {rows:,} rows")
        with factory() as s:
            gc.collect()
            rss0 = rss_mb()
            samples = timed(
                lambda: services.allocate(s, scattered_id, AllocationRequest(), "b"), args.samples
            )
            rss1 = rss_mb()
            peak = heap_peak(lambda: services.allocate(s, scattered_id, AllocationRequest(), "b"))
        print(report("next free ASN, 1M used (scattered)", samples, base))
        print(f"  Python heap peak over 50 more allocations {peak:.2f} MB; RSS {rss0:.0f} -> {rss1:.0f} MB")


if __name__ == "__main__":
    main()
