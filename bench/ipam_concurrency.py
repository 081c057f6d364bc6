"""Concurrent allocation on PostgreSQL through the service layer: 32 clients (4 processes x 8 threads) on ONE
pool, then the same 32 clients spread over 8 and 32 pools, against a 1-client baseline. After each run the
database is checked: duplicates = 0, overlaps = 0, allocated rows = successes.

    nice -n 10 .venv/bin/python bench/ipam_concurrency.py            # 15 s per scenario
    .venv/bin/python bench/ipam_concurrency.py --smoke               # 3 s per scenario
    nice -n 10 .venv/bin/python bench/ipam_concurrency.py --general-path   # PostgreSQL fast path off

The last column counts how the PostgreSQL fast path (``logical.fastpath``) answered: served / declined (a
declined allocation is then made by the general path in the same transaction).
"""

from __future__ import annotations

import argparse
import ipaddress
import multiprocessing as mp
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from turnup.inventory.logical import fastpath, services
from turnup.inventory.logical.benchkit import baseline_ms, bench_database, pct, raw_connection
from turnup.inventory.logical.schemas import AllocationRequest, PoolCreate
from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.kernel.errors import Conflict
from turnup.wiring import wire

wire()  # every consumer registered: publish refuses to run in an unwired process


def worker(
    url: str, pool_ids: list[str], threads: int, seconds: float, start_at: float, out: mp.Queue, general: bool
) -> None:
    fastpath.ENABLED = not general
    outcomes = {"served": 0, "declined": 0}
    counting = threading.Lock()
    real = fastpath.allocate

    def counted(*args: object, **kwargs: object) -> object:
        taken = real(*args, **kwargs)  # type: ignore[arg-type]
        with counting:
            outcomes["declined" if taken is None else "served"] += 1
        return taken

    fastpath.allocate = counted  # type: ignore[assignment]
    engine = make_engine(url, pool_size=threads + 1, max_overflow=0)
    factory = make_sessionmaker(engine)
    results: list[tuple[int, int, list[float]]] = []

    def client(i: int) -> None:
        pool_id = pool_ids[i % len(pool_ids)]
        ok = refused = 0
        lat: list[float] = []
        req = AllocationRequest(prefixLength=29)
        with factory() as s:
            while time.time() < start_at:
                time.sleep(0.001)
            while time.time() < start_at + seconds:
                t0 = time.perf_counter()
                try:
                    services.allocate(s, pool_id, req, "bench")
                    ok += 1
                    lat.append((time.perf_counter() - t0) * 1000)
                except Conflict:
                    s.rollback()
                    refused += 1
        results.append((ok, refused, lat))

    ts = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    engine.dispose()
    out.put((results, outcomes))


def run(
    url: str, pools: list[str], clients: int, procs: int, seconds: float, general: bool
) -> dict[str, float]:
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()
    start_at = time.time() + 2.0
    per = clients // procs
    ps = []
    for p in range(procs):
        mine = [pools[(p * per + i) % len(pools)] for i in range(per)]  # client i -> pool i mod pools
        ps.append(ctx.Process(target=worker, args=(url, mine, per, seconds, start_at, q, general)))
    for p in ps:
        p.start()
    answers = [q.get() for _ in ps]
    results = [r for rs, _ in answers for r in rs]
    for p in ps:
        p.join()
    ok = sum(r[0] for r in results)
    lat = [x for r in results for x in r[2]]
    return {
        "ok": ok,
        "refused": sum(r[1] for r in results),
        "rate": ok / seconds,
        "p50": pct(lat, 50) if lat else 0,
        "p99": pct(lat, 99) if lat else 0,
        "served": sum(o["served"] for _, o in answers),
        "declined": sum(o["declined"] for _, o in answers),
    }


def verify(url: str, pools: list[str]) -> tuple[int, int, int]:
    with raw_connection(url) as conn:
        allocated = conn.execute(
            "SELECT count(*) FROM logical_block WHERE space_id = ANY(%s) AND state = 'allocated'", (pools,)
        ).fetchone()[0]
        dup = conn.execute(
            "SELECT count(*) - count(DISTINCT (space_id, lo)) FROM logical_block WHERE space_id = ANY(%s)",
            (pools,),
        ).fetchone()[0]
        overlaps = conn.execute(
            "SELECT count(*) FROM (SELECT hi, lead(lo) OVER (PARTITION BY space_id ORDER BY lo) AS nxt "
            "FROM logical_block WHERE space_id = ANY(%s)) c WHERE hi IS NOT NULL AND hi <> nxt",
            (pools,),
        ).fetchone()[0]
    return int(allocated), int(dup), int(overlaps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--general-path", action="store_true", help="switch the PostgreSQL fast path off")
    args = parser.parse_args()
    seconds = 3.0 if args.smoke else args.seconds
    scenarios = [
        ("1 client, 1 pool", 1, 1, 1),
        ("32 clients, 1 pool", 32, 4, 1),
        ("32 clients, 8 pools", 32, 4, 8),
        ("32 clients, 32 pools", 32, 4, 32),
    ]
    with bench_database() as (url, engine):
        base = baseline_ms(engine)
        print(f"baseline SELECT 1 round trip p50 = {base:.3f} ms")
        factory = make_sessionmaker(engine)
        for n, (label, clients, procs, npools) in enumerate(scenarios):
            with factory() as s:
                services.create_pool(
                    s, PoolCreate(poolType="ipAggregate", name=f"agg{n}", prefix=f"{20 + n}.0.0.0/8"), "b"
                )
                size = 8 + (npools - 1).bit_length()
                nets = [
                    ipaddress.IPv4Network((((20 + n) << 24) + i * (1 << (32 - size)), size))
                    for i in range(npools)
                ]
                pools = [
                    services.create_pool(
                        s, PoolCreate(poolType="ipPool", name=f"s{n}p{i}", prefix=str(net)), "b"
                    ).id
                    for i, net in enumerate(nets)
                ]
            r = run(url, pools, clients, procs, seconds, args.general_path)
            allocated, dup, overlaps = verify(url, pools)
            print(
                f"{label:<22} {r['rate']:8.0f} alloc/s  p50={r['p50']:6.2f} ms p99={r['p99']:7.2f} ms  "
                f"successes={r['ok']} allocated rows={allocated} duplicates={dup} overlaps={overlaps} "
                f"refused={r['refused']}  p50/baseline={r['p50'] / base:5.1f}x  "
                f"fast path served/declined={r['served']}/{r['declined']}"
            )
            assert allocated == r["ok"] and dup == 0 and overlaps == 0


if __name__ == "__main__":
    main()
