"""Helpers for the logical-inventory benchmarks (bench/ipam_*.py, bench/asn_next.py, bench/number_search.py).

Each bench creates its own PostgreSQL database ``turnup_bench_<random>`` and drops it afterwards, and reports
latencies next to a baseline measured in the same process (a ``SELECT 1`` round trip).
"""

from __future__ import annotations

import io
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Engine, text

from turnup.inventory.logical import orm as logical_orm
from turnup.kernel import audit, consumers, mail, outbox
from turnup.kernel.db import Base, make_engine

# The tables a logical-inventory bench touches: its own and the kernel's (audit, outbox, hub, mail). The
# feature never imports ``turnup.models`` (that would be an upward import into the composition root).
_TABLE_MODULES = (logical_orm, audit, consumers, mail, outbox)

PG = os.environ.get("TURNUP_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres")


@contextmanager
def bench_database(**engine_kwargs: object) -> Iterator[tuple[str, Engine]]:
    name = f"turnup_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG} dbname=postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = dict(p.split("=", 1) for p in PG.split())
    url = (
        f"postgresql+psycopg://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}:"
        f"{parts.get('port', '5432')}/{name}"
    )
    engine = make_engine(url, **engine_kwargs)
    try:
        Base.metadata.create_all(engine)
        yield url, engine
    finally:
        engine.dispose()
        with psycopg.connect(f"{PG} dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def raw_connection(url: str) -> psycopg.Connection:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))


def copy_blocks(url: str, space_id: str, rows: io.StringIO) -> int:
    """Replace a space's ``logical_block`` chain with ``rows`` (COPY text format: id, space_id, lo, hi, k,
    state) in bulk, without per-row foreign-key checks, then ANALYZE. Returns the number of rows loaded."""
    count = rows.getvalue().count("\n")
    rows.seek(0)
    with raw_connection(url) as conn:
        conn.execute("SET session_replication_role = replica")  # bulk load: skip the per-row FK checks
        conn.execute("DELETE FROM logical_block WHERE space_id = %s", (space_id,))
        with conn.cursor().copy("COPY logical_block (id, space_id, lo, hi, k, state) FROM STDIN") as copy:
            while chunk := rows.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        conn.execute("ANALYZE logical_block")
        conn.commit()
    return count


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def baseline_ms(engine: Engine, repeat: int = 200) -> float:
    with engine.connect() as conn:
        samples = timed(lambda: conn.execute(text("SELECT 1")).scalar(), repeat)
    return statistics.median(samples)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def report(label: str, samples: list[float], base: float) -> str:
    p50, p99 = pct(samples, 50), pct(samples, 99)
    return (
        f"{label:<44} n={len(samples):>5}  p50={p50:7.2f} ms  p99={p99:7.2f} ms  "
        f"max={max(samples):7.2f} ms  p50/baseline={p50 / base:6.1f}x"
    )
