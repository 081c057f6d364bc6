"""Benchmark: concurrent quote-time reservations (issue: physical inventory).

N client processes (default 16 and 32) each reserve 1-5 random lines (SKU × location, quantity 1-3) from
1,000 SKUs × 20 locations through ``turnup.inventory.physical.reservations.create_reservation`` — the full
use case: lock levels in primary-key order, lazy release of expired holds, reservation + lines, ledger rows,
audit entry and outbox event, one commit. Prints reservations/s, p50/p99 latency, refusals, errors and the
oversell count computed from the ledger afterwards.

Each run creates and drops its own database (PostgreSQL ``turnup_bench_<random>`` / a temporary SQLite
file). Quick smoke run::

    nice -n 10 .venv/bin/python bench/stock_reservations.py --clients 4 --seconds 3 --skus 50 --locations 4

Full run (figures in docs/benchmarks-physical.md)::

    nice -n 10 .venv/bin/python bench/stock_reservations.py \\
        --db postgresql sqlite --clients 16 32 --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from turnup.wiring import wire

wire()  # every consumer registered: publish refuses to run in an unwired process

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

PG = os.environ.get("TURNUP_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres")


def pg_url(name: str) -> str:
    parts = dict(p.split("=", 1) for p in PG.split())
    return (
        f"postgresql+psycopg://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}:"
        f"{parts.get('port', '5432')}/{name}"
    )


def setup(url: str, skus: int, locations: int, stock: int, history: int = 0) -> None:
    """Schema and data with bulk inserts: SKUs, locations, levels and one receipt ledger row per level, then
    ``history`` past reservations (1-5 lines each, since released: lines, reserve + release ledger rows, an
    audit entry and an outbox event each), then ANALYZE — the state of a database that has been in use, not a
    freshly created one (see ``docs/benchmarks-physical.md``: on empty tables PostgreSQL plans foreign-key
    checks as sequential scans and keeps those plans while the tables grow)."""
    import turnup.models
    from turnup.inventory.physical.orm import (
        Location,
        Reservation,
        ReservationLine,
        Sku,
        StockLevel,
        StockMovement,
    )
    from turnup.kernel.audit import AuditEntry
    from turnup.kernel.db import make_engine
    from turnup.kernel.ids import new_id
    from turnup.kernel.outbox import OutboxEvent

    engine = make_engine(url)
    turnup.models.metadata.create_all(engine)
    with engine.begin() as conn:  # for the baseline transactions (not part of Turnup's schema)
        conn.exec_driver_sql(
            "CREATE TABLE bench_baseline (id INTEGER PRIMARY KEY "
            + ("GENERATED ALWAYS AS IDENTITY" if engine.dialect.name == "postgresql" else "")
            + ", client INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL)"
        )
    now = datetime.now(UTC)
    sku_rows = [
        {
            "id": new_id(),
            "code": f"SKU-{i:05d}",
            "name": f"SKU {i}",
            "serialised": False,
            "unit": "each",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(skus)
    ]
    loc_rows = [
        {
            "id": new_id(),
            "code": f"LOC-{j:03d}",
            "name": f"Warehouse {j}",
            "location_type": "warehouse",
            "region": f"R{j % 4}",
            "power_reserved_watts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for j in range(locations)
    ]
    levels, moves = [], []
    for s in sku_rows:
        for loc in loc_rows:
            levels.append(
                {
                    "id": new_id(),
                    "sku_id": s["id"],
                    "location_id": loc["id"],
                    "on_hand": stock,
                    "reserved": 0,
                    "allocated": 0,
                    "quarantined": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            moves.append(
                {
                    "at": now,
                    "kind": "receipt",
                    "sku_id": s["id"],
                    "location_id": loc["id"],
                    "on_hand_delta": stock,
                    "reserved_delta": 0,
                    "allocated_delta": 0,
                    "quarantined_delta": 0,
                    "actor": "bench",
                }
            )
    with engine.begin() as conn:
        conn.execute(Sku.__table__.insert(), sku_rows)
        conn.execute(Location.__table__.insert(), loc_rows)
        for i in range(0, len(levels), 5000):
            conn.execute(StockLevel.__table__.insert(), levels[i : i + 5000])
            conn.execute(StockMovement.__table__.insert(), moves[i : i + 5000])
    rng = random.Random(7)
    past = now - timedelta(days=30)
    for start in range(0, history, 2000):
        reservations, lines, moves, audits, events = [], [], [], [], []
        for _ in range(min(2000, history - start)):
            rid = new_id()
            reservations.append(
                {
                    "id": rid,
                    "status": "released",
                    "expires_at": past,
                    "customer_id": None,
                    "quote_id": f"Q-past-{start}",
                    "order_id": None,
                    "created_at": past,
                    "updated_at": past,
                }
            )
            for line_no, level in enumerate(rng.sample(levels, rng.randint(1, 5))):
                qty = rng.randint(1, 3)
                lines.append(
                    {
                        "id": new_id(),
                        "reservation_id": rid,
                        "line_no": line_no,
                        "level_id": level["id"],
                        "sku_id": level["sku_id"],
                        "location_id": level["location_id"],
                        "quantity": qty,
                        "serial_numbers": None,
                        "status": "released",
                        "expires_at": past,
                    }
                )
                for kind, delta in (("reserve", qty), ("release", -qty)):
                    moves.append(
                        {
                            "at": past,
                            "kind": kind,
                            "sku_id": level["sku_id"],
                            "location_id": level["location_id"],
                            "on_hand_delta": 0,
                            "reserved_delta": delta,
                            "allocated_delta": 0,
                            "quarantined_delta": 0,
                            "reservation_id": rid,
                            "actor": "bench-history",
                        }
                    )
            audits.append(
                {
                    "id": new_id(),
                    "at": past,
                    "actor": "bench-history",
                    "action": "stock.reserve",
                    "resource_type": "reserveProductStock",
                    "resource_id": rid,
                    "details": {"lines": 1},
                }
            )
            events.append(
                {
                    "id": new_id(),
                    "api": "stock",
                    "event_type": "ReserveProductStockCreateEvent",
                    "event_time": past,
                    "resource_type": "reserveProductStock",
                    "resource_id": rid,
                    "payload": {"eventId": "past"},
                }
            )
        with engine.begin() as conn:
            conn.execute(Reservation.__table__.insert(), reservations)
            conn.execute(ReservationLine.__table__.insert(), lines)
            conn.execute(StockMovement.__table__.insert(), moves)
            conn.execute(AuditEntry.__table__.insert(), audits)
            conn.execute(OutboxEvent.__table__.insert(), events)
    if engine.dialect.name == "postgresql":  # vacuumed, analysed and checkpointed, as a database in use
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
            conn.exec_driver_sql("CHECKPOINT")
    engine.dispose()


def baseline_client(args: tuple[str, int, int, float, float]) -> int:
    """The baseline: the smallest durable write transaction through the same stack (engine, pooled session,
    one INSERT, COMMIT), as fast as it goes, with the same processes and threads as the measured run. Its rate
    on the same machine right before the measured run turns reservations/s into a ratio that machine noise
    mostly cancels out of."""
    url, first, threads, start_at, seconds = args
    from sqlalchemy import text

    from turnup.kernel.db import make_engine, make_sessionmaker

    engine = (
        make_engine(url, pool_size=threads, max_overflow=0)
        if url.startswith("postgresql")
        else make_engine(url)
    )
    factory = make_sessionmaker(engine)
    insert = text("INSERT INTO bench_baseline (client, at) VALUES (:client, :at)")
    done = [0] * threads

    def one_client(i: int) -> None:
        for _ in range(3):
            with factory() as session:
                session.execute(insert, {"client": first + i, "at": time.time()})
                session.commit()
        while time.time() < start_at:
            time.sleep(0.005)
        deadline = start_at + seconds
        while time.time() < deadline:
            with factory() as session:
                session.execute(insert, {"client": first + i, "at": time.time()})
                session.commit()
            done[i] += 1

    workers = [threading.Thread(target=one_client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    engine.dispose()
    return sum(done)


def client(
    args: tuple[str, int, int, int, int, float, float],
) -> tuple[list[float], int, int, list[str], tuple[float, float], float]:
    """One client process running ``threads`` clients (threads), each with its own pooled connection and a new
    session per reservation. Returns latencies, refusals, busy retries, errors, the slowest reservation and
    the process's CPU seconds over the timed part."""
    url, first, threads, skus, locations, start_at, seconds = args
    from sqlalchemy.exc import DBAPIError

    from turnup.inventory.physical.reservations import create_reservation
    from turnup.inventory.physical.schemas import ReservationCreate
    from turnup.kernel.db import make_engine, make_sessionmaker
    from turnup.kernel.errors import Conflict

    engine = (
        make_engine(url, pool_size=threads, max_overflow=0)
        if url.startswith("postgresql")
        else make_engine(url)
    )
    factory = make_sessionmaker(engine)
    latencies: list[float] = []
    slowest = [(0.0, 0.0)]  # (latency, seconds into the run when it started)
    counts = {"refused": 0, "retries": 0}
    errors: list[str] = []
    expires = datetime.now(UTC) + timedelta(hours=2)
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def one_client(n: int) -> None:
        rng = random.Random(n)
        mine: list[float] = []
        worst = (0.0, 0.0)
        refused = retries = 0
        for _ in range(3):  # warm-up (connection, statement caches); counted in the ledger check, not timed
            with factory() as session, contextlib.suppress(Conflict):
                create_reservation(
                    session,
                    ReservationCreate(
                        lines=[
                            {
                                "sku": f"SKU-{rng.randrange(skus):05d}",
                                "quantity": 1,
                                "location": f"LOC-{rng.randrange(locations):03d}",
                            }
                        ],
                        expiresAt=expires,
                    ),
                    "warm-up",
                )
        barrier.wait()
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while time.time() < deadline:
            picks = rng.sample(range(skus), rng.randint(1, 5))
            lines = [
                {
                    "sku": f"SKU-{k:05d}",
                    "quantity": rng.randint(1, 3),
                    "location": f"LOC-{rng.randrange(locations):03d}",
                }
                for k in picks
            ]
            data = ReservationCreate(lines=lines, expiresAt=expires, quoteId=f"Q-{n}")
            for attempt in range(4):
                t0 = time.perf_counter()
                with factory() as session:
                    try:
                        create_reservation(session, data, f"bench-{n}")
                        mine.append(time.perf_counter() - t0)
                        if mine[-1] > worst[0]:
                            worst = (mine[-1], time.time() - start_at)
                    except Conflict:
                        refused += 1
                        mine.append(time.perf_counter() - t0)
                    except DBAPIError as exc:
                        if "database is locked" in str(exc) and attempt < 3:
                            retries += 1
                            continue
                        with lock:
                            errors.append(str(exc.orig)[:200])
                break
        with lock:
            latencies.extend(mine)
            counts["refused"] += refused
            counts["retries"] += retries
            slowest[0] = max(slowest[0], worst)

    workers = [threading.Thread(target=one_client, args=(first + i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()  # every client warmed up
    while time.time() < start_at:
        time.sleep(0.005)
    cpu0 = time.process_time()
    for w in workers:
        w.join()
    cpu = time.process_time() - cpu0
    engine.dispose()
    return latencies, counts["refused"], counts["retries"], errors, slowest[0], cpu


def cpu_cost(url: str, ns: argparse.Namespace) -> None:
    """One client, ``--cpu-reservations`` sequential reservations: Python CPU (``time.process_time``) and wall
    time per reservation, measured in this process. Noise-resistant: other load on the machine stretches wall
    time but hardly the CPU time this process consumes."""
    from turnup.inventory.physical.reservations import create_reservation
    from turnup.inventory.physical.schemas import ReservationCreate
    from turnup.kernel.db import make_engine, make_sessionmaker
    from turnup.kernel.errors import Conflict

    engine = (
        make_engine(url, pool_size=1, max_overflow=0) if url.startswith("postgresql") else make_engine(url)
    )
    factory = make_sessionmaker(engine)
    rng = random.Random(12345)
    expires = datetime.now(UTC) + timedelta(hours=2)

    def one() -> bool:
        picks = rng.sample(range(ns.skus), rng.randint(1, 5))
        lines = [
            {
                "sku": f"SKU-{k:05d}",
                "quantity": rng.randint(1, 3),
                "location": f"LOC-{rng.randrange(ns.locations):03d}",
            }
            for k in picks
        ]
        data = ReservationCreate(lines=lines, expiresAt=expires, quoteId="Q-cpu")  # as the API validates
        with factory() as session:
            try:
                create_reservation(session, data, "bench-cpu")
                return True
            except Conflict:
                return False

    for _ in range(50):  # warm-up: connection, statement caches, prepared statements
        one()
    backend = None  # the PostgreSQL server process serving this client (same machine): its CPU too
    if url.startswith("postgresql"):
        with engine.connect() as conn:
            backend = Path(f"/proc/{conn.exec_driver_sql('SELECT pg_backend_pid()').scalar()}/stat")

    def backend_cpu() -> float:
        if backend is None or not backend.exists():
            return float("nan")
        fields = backend.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    n = ns.cpu_reservations
    b0, c0, w0 = backend_cpu(), time.process_time(), time.perf_counter()
    ok = sum(one() for _ in range(n))
    cpu, wall, server = time.process_time() - c0, time.perf_counter() - w0, backend_cpu() - b0
    engine.dispose()
    db = "postgresql" if url.startswith("postgresql") else "sqlite"
    print(
        f"{db:10s} single client, {n} sequential reservations ({ok} "
        f"reserved){' GENERAL PATH' * ns.general_path}: "
        f"client CPU {cpu / n * 1000:.2f} ms/reservation, server backend CPU {server / n * 1000:.2f} ms, "
        f"wall {wall / n * 1000:.2f} ms",
        flush=True,
    )


def oversold(url: str) -> tuple[int, int]:
    """(units oversold per the ledger, levels whose totals differ from the ledger)."""
    from sqlalchemy import func, select

    from turnup.inventory.physical.orm import StockLevel, StockMovement
    from turnup.kernel.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        ledger = conn.execute(
            select(
                StockMovement.sku_id,
                StockMovement.location_id,
                func.sum(StockMovement.on_hand_delta),
                func.sum(StockMovement.reserved_delta),
                func.sum(StockMovement.allocated_delta),
            ).group_by(StockMovement.sku_id, StockMovement.location_id)
        ).all()
        levels = {
            (r.sku_id, r.location_id): (r.on_hand, r.reserved, r.allocated)
            for r in conn.execute(
                select(
                    StockLevel.sku_id,
                    StockLevel.location_id,
                    StockLevel.on_hand,
                    StockLevel.reserved,
                    StockLevel.allocated,
                )
            )
        }
    engine.dispose()
    over = sum(max(0, r + a - o) for _, _, o, r, a in ledger)
    mismatched = sum(1 for s, loc, o, r, a in ledger if levels.get((s, loc)) != (o, r, a))
    return over, mismatched


def run(db: str, clients: int, ns: argparse.Namespace) -> None:
    """One benchmark run on a fresh database; ``clients == 0`` means the single-client CPU measurement."""
    name = f"turnup_bench_{uuid.uuid4().hex[:10]}"
    tmp = None
    if db == "postgresql":
        admin = psycopg.connect(PG + " dbname=postgres", autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        url = pg_url(name)
    else:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{tmp.name}/bench.db"
    try:
        t0 = time.perf_counter()
        setup(url, ns.skus, ns.locations, ns.stock, ns.history)
        if ns.after_setup_sql:  # experiments: e.g. drop an index or a constraint on this throwaway database
            import sqlalchemy

            engine = sqlalchemy.create_engine(url)
            with engine.begin() as conn:
                for statement in ns.after_setup_sql:
                    conn.exec_driver_sql(statement)
            engine.dispose()
        load = time.perf_counter() - t0
        if clients == 0:
            cpu_cost(url, ns)
            return
        ctx = mp.get_context("fork")
        processes = min(ns.processes or clients, clients)
        if clients % processes:
            raise SystemExit(f"--processes {processes} must divide the client count {clients}")
        per = clients // processes
        baseline = 0.0
        if ns.baseline_seconds > 0:
            start_at = time.time() + 2 + clients * 0.1
            with ctx.Pool(processes) as pool:
                baseline = sum(
                    pool.map(
                        baseline_client,
                        [(url, p * per, per, start_at, ns.baseline_seconds) for p in range(processes)],
                        chunksize=1,
                    )
                )
            baseline /= ns.baseline_seconds
        start_at = time.time() + 3 + clients * 0.15
        with ctx.Pool(processes) as pool:
            results = pool.map(
                client,
                [(url, p * per, per, ns.skus, ns.locations, start_at, ns.seconds) for p in range(processes)],
                chunksize=1,
            )
        latencies = sorted(x for r in results for x in r[0])
        refused = sum(r[1] for r in results)
        retries = sum(r[2] for r in results)
        errors = [e for r in results for e in r[3]]
        slowest = max(r[4] for r in results)
        client_cpu = sum(r[5] for r in results)
        ok = len(latencies) - refused
        over, mismatched = oversold(url)
        q = (
            statistics.quantiles(latencies, n=100, method="inclusive")
            if len(latencies) >= 100
            else [max(latencies or [0])] * 99
        )
        print(
            f"{db:10s} clients={clients:3d} ({processes} processes x {per} threads) lines=1-5 "
            f"skus={ns.skus} locations={ns.locations} "
            f"stock/level={ns.stock} seconds={ns.seconds}: reserved={ok} ({ok / ns.seconds:.0f}/s) "
            f"refused={refused} attempts/s={len(latencies) / ns.seconds:.0f} "
            f"p50={statistics.median(latencies) * 1000:.1f}ms p99={q[98] * 1000:.1f}ms "
            f"max={latencies[-1] * 1000:.0f}ms (at +{slowest[1]:.1f}s) errors={len(errors)} "
            f"busy_retries={retries} oversold={over} ledger_mismatches={mismatched} client CPU "
            f"{client_cpu / max(len(latencies), 1) * 1000:.2f} "
            f"ms/attempt (load {load:.1f}s)",
            flush=True,
        )
        if baseline:
            print(
                f"{'':10s} baseline (INSERT + COMMIT through the same stack, same clients, just before): "
                f"{baseline:.0f} transactions/s; reservations/s = {ok / ns.seconds / baseline:.2f} x "
                "baseline",
                flush=True,
            )
        for e in sorted(set(errors))[:5]:
            print("   error:", e)
    finally:
        if db == "postgresql":
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        if tmp is not None:
            tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"])
    parser.add_argument("--clients", nargs="*", type=int, default=[16, 32])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--locations", type=int, default=20)
    parser.add_argument("--stock", type=int, default=20, help="on hand per SKU × location")
    parser.add_argument(
        "--history",
        type=int,
        default=20000,
        help="past (released) reservations loaded before the run, as in a database in use",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="client processes sharing the clients as threads (default: one process per client)",
    )
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        default=5.0,
        help="length of the same-process baseline run before each measured run (0: none)",
    )
    parser.add_argument(
        "--general-path",
        action="store_true",
        help="disable the PostgreSQL one-statement fast path (for before/after comparisons)",
    )
    parser.add_argument(
        "--cpu-reservations",
        type=int,
        default=0,
        help="also measure single-client CPU per reservation over this many reservations",
    )
    parser.add_argument(
        "--after-setup-sql",
        nargs="*",
        default=[],
        help="statements run on the fresh database after loading (what-if experiments)",
    )
    ns = parser.parse_args()
    if ns.general_path:  # inherited by the forked client processes
        from turnup.inventory.physical import fastpath

        fastpath.eligible = lambda *_: False  # type: ignore[assignment]
    for db in ns.db:
        if ns.cpu_reservations:
            run(db, 0, ns)
        for clients in ns.clients:
            run(db, clients, ns)


if __name__ == "__main__":
    main()
