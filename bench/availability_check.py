"""Benchmark: availability check for a 10-line quote across 1M serialised units (target p99 <= 20 ms).

Loads N serialised units (default 1,000,000) spread over 1,000 SKUs × 20 locations with set-based SQL
(``generate_series`` on PostgreSQL, a recursive CTE on SQLite), stock levels derived from the units, and
5,000 holds of which half have expired but were not swept. Then times ``check_availability`` for random
10-line requests (4 lines at a location, 3 "any location in region", 3 naming specific serials: 2 serials
each), one fresh session per check as an API request would use, and prints p50/p95/p99 against a baseline
measured in the same process: a ``SELECT 1`` round trip and a 1-line check.

Each run creates and drops its own database. Quick smoke run::

    nice -n 10 .venv/bin/python bench/availability_check.py --units 20000 --checks 50

Full run::

    nice -n 10 .venv/bin/python bench/availability_check.py \\
        --db postgresql sqlite --units 1000000 --checks 300
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stock_reservations import PG, pg_url

from turnup.wiring import wire

wire()  # every consumer registered: publish refuses to run in an unwired process

SKUS, LOCATIONS, REGIONS = 1000, 20, 4


def load(url: str, units: int) -> float:
    import turnup.models
    from turnup.kernel.db import make_engine

    engine = make_engine(url)
    turnup.models.metadata.create_all(engine)
    pg = engine.dialect.name == "postgresql"
    t0 = time.perf_counter()
    with engine.begin() as conn:
        now = "now()" if pg else "'2026-01-01 00:00:00.000000'"
        conn.execute(
            text(
                "INSERT INTO stock_sku (id, code, name, serialised, unit, created_at, updated_at) "
                + (
                    "SELECT 'sku' || lpad(g::text, 6, '0'), 'SKU-' || lpad(g::text, 5, '0'), 'SKU ' || g, "
                    f"true, 'each', {now}, {now} FROM generate_series(0, {SKUS - 1}) g"
                    if pg
                    else "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < :last) "
                    "SELECT printf('sku%06d', n), printf('SKU-%05d', n), 'SKU ' || n, 1, 'each', "
                    f"{now}, {now} FROM g"
                )
            ),
            {"last": SKUS - 1},
        )
        conn.execute(
            text(
                "INSERT INTO stock_location (id, code, name, location_type, region, power_reserved_watts, "
                "created_at, updated_at) "
                + (
                    "SELECT 'loc' || lpad(g::text, 3, '0'), 'LOC-' || lpad(g::text, 3, '0'), "
                    f"'Warehouse ' || g, 'warehouse', 'R' || (g % {REGIONS}), 0, {now}, {now} "
                    f"FROM generate_series(0, {LOCATIONS - 1}) g"
                    if pg
                    else "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < :last) "
                    "SELECT printf('loc%03d', n), printf('LOC-%03d', n), 'Warehouse ' || n, 'warehouse', "
                    f"'R' || (n % {REGIONS}), 0, {now}, {now} FROM g"
                )
            ),
            {"last": LOCATIONS - 1},
        )
        conn.execute(
            text(
                "INSERT INTO stock_unit (id, sku_id, serial, location_id, state, created_at, updated_at) "
                + (
                    f"SELECT md5(g::text), 'sku' || lpad((g % {SKUS})::text, 6, '0'), "
                    "'SN' || lpad(g::text, 8, '0'), "
                    f"'loc' || lpad(((g / {SKUS}) % {LOCATIONS})::text, 3, '0'), 'in_stock', {now}, {now} "
                    f"FROM generate_series(0, {units - 1}) g"
                    if pg
                    else "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < :last) "
                    f"SELECT printf('u%031d', n), printf('sku%06d', n % {SKUS}), printf('SN%08d', n), "
                    f"printf('loc%03d', (n / {SKUS}) % {LOCATIONS}), 'in_stock', {now}, {now} FROM g"
                )
            ),
            {"last": units - 1},
        )
        conn.execute(
            text(
                "INSERT INTO stock_level "
                "(id, sku_id, location_id, on_hand, reserved, allocated, quarantined, "
                "created_at, updated_at) "
                f"SELECT {'md5(sku_id || location_id)' if pg else 'sku_id || location_id'}, "
                f"sku_id, location_id, count(*), 0, 0, 0, {now}, {now} "
                "FROM stock_unit GROUP BY sku_id, location_id"
            )
        )
        # 5,000 holds of 3 units on random levels; half expired an hour ago and not yet swept
        conn.execute(
            text(
                "INSERT INTO stock_reservation (id, status, expires_at, created_at, updated_at) "
                f"SELECT 'r' || substr(id, 2), 'held', {now}, {now}, {now} "
                "FROM stock_level WHERE on_hand >= 3 ORDER BY id LIMIT 5000"
            )
        )
        conn.execute(
            text(
                "INSERT INTO stock_reservation_line "
                "(id, reservation_id, line_no, level_id, sku_id, location_id, quantity, status, expires_at) "
                "SELECT 'l' || substr(id, 2), 'r' || substr(id, 2), 0, id, sku_id, location_id, 3, 'held', "
                + (
                    "CASE WHEN random() < 0.5 THEN now() - interval '1 hour' "
                    "ELSE now() + interval '1 day' END "
                    if pg
                    else "CASE WHEN random() % 2 = 0 THEN '2000-01-01 00:00:00.000000' "
                    "ELSE '2999-01-01 00:00:00.000000' END "
                )
                + "FROM stock_level WHERE on_hand >= 3 ORDER BY id LIMIT 5000"
            )
        )
        conn.execute(
            text(
                "UPDATE stock_level SET reserved = 3 WHERE id IN "
                "(SELECT level_id FROM stock_reservation_line)"
            )
        )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return time.perf_counter() - t0


def quantiles(samples: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples) * 1000, q[94] * 1000, q[98] * 1000


def measure(url: str, units: int, checks: int) -> None:
    from turnup.inventory.physical.reservations import check_availability
    from turnup.inventory.physical.schemas import LineRequest
    from turnup.kernel.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    rng = random.Random(7)

    def serial_pair() -> list[str]:
        return [f"SN{rng.randrange(units):08d}" for _ in range(2)]

    def request() -> list[LineRequest]:
        lines = [
            LineRequest(
                sku=f"SKU-{rng.randrange(SKUS):05d}",
                quantity=rng.randint(1, 5),
                location=f"LOC-{rng.randrange(LOCATIONS):03d}",
            )
            for _ in range(4)
        ]
        lines += [
            LineRequest(
                sku=f"SKU-{rng.randrange(SKUS):05d}",
                quantity=rng.randint(1, 20),
                region=f"R{rng.randrange(REGIONS)}",
            )
            for _ in range(3)
        ]
        for _ in range(3):
            serials = serial_pair()
            n = int(serials[0][2:])
            serials[1] = f"SN{(n + SKUS * LOCATIONS * rng.randint(1, 3)) % units:08d}"  # same SKU
            lines.append(LineRequest(sku=f"SKU-{n % SKUS:05d}", serials=sorted(set(serials))))
        return lines

    def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        return samples

    def select_one() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    def check(lines: list[LineRequest]) -> None:
        with factory() as session:
            result = check_availability(session, lines)
            assert len(result) == len(lines)

    requests = [request() for _ in range(checks)]
    singles = [[r[0]] for r in requests]
    for r in requests[:20]:  # warm-up: connections, statement caches, buffer cache
        check(r)
    base = timed(select_one, max(checks, 200))
    one = iter(singles)
    single = timed(lambda: check(next(one)), checks)
    ten = iter(requests)
    full = timed(lambda: check(next(ten)), checks)
    b50, _, b99 = quantiles(base)
    s50, _, s99 = quantiles(single)
    f50, f95, f99 = quantiles(full)
    print(f"  baseline SELECT 1 round trip:  p50={b50:.2f}ms p99={b99:.2f}ms", flush=True)
    print(f"  1-line check:                  p50={s50:.2f}ms p99={s99:.2f}ms", flush=True)
    print(
        f"  10-line check ({checks} checks):   p50={f50:.2f}ms p95={f95:.2f}ms p99={f99:.2f}ms "
        f"max={max(full) * 1000:.1f}ms; p99 = {f99 / b99:.1f}x SELECT 1, {f99 / s99:.1f}x 1-line check; "
        f"target p99 <= 20 ms: {'met' if f99 <= 20 else 'MISSED'}",
        flush=True,
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", nargs="+", default=["postgresql"], choices=["postgresql", "sqlite"])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=300)
    ns = parser.parse_args()
    for db in ns.db:
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
            seconds = load(url, ns.units)
            print(
                f"{db}: {ns.units:,} serialised units, {SKUS} SKUs x {LOCATIONS} locations, "
                f"5,000 holds (half expired, unswept); loaded in {seconds:.1f}s",
                flush=True,
            )
            measure(url, ns.units, ns.checks)
        finally:
            if db == "postgresql":
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.close()
            if tmp is not None:
                tmp.cleanup()


if __name__ == "__main__":
    main()
