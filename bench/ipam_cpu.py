"""Single-client cost of one allocation through ``services.allocate`` on PostgreSQL (noise-resistant).

``time.process_time()`` of this process around N sequential allocations of a /29 from one pool (after a
warm-up), plus the CPU time of the PostgreSQL backend serving the session (``/proc/<pid>/stat``, when the
server runs on this machine) and the wall time. ``--general-path`` switches the PostgreSQL fast path off
(``fastpath.ENABLED = False``) to measure the general path in the same conditions.

    nice -n 10 .venv/bin/python bench/ipam_cpu.py                  # fast path (default)
    nice -n 10 .venv/bin/python bench/ipam_cpu.py --general-path   # general path only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sqlalchemy import text

from turnup.inventory.logical import services
from turnup.inventory.logical.benchkit import bench_database
from turnup.inventory.logical.schemas import AllocationRequest, PoolCreate
from turnup.kernel.db import make_sessionmaker
from turnup.wiring import wire

wire()  # every consumer registered: publish refuses to run in an unwired process


def backend_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--general-path", action="store_true")
    args = parser.parse_args()
    if args.general_path:
        try:
            from turnup.inventory.logical import fastpath

            fastpath.ENABLED = False
        except ImportError:  # before the fast path existed
            pass
    with bench_database(pool_size=2, max_overflow=0) as (_url, engine):
        factory = make_sessionmaker(engine)
        with factory() as s:
            services.create_pool(s, PoolCreate(poolType="ipAggregate", name="agg", prefix="10.0.0.0/8"), "b")
            pool_id = services.create_pool(
                s, PoolCreate(poolType="ipPool", name="p", prefix="10.0.0.0/12"), "b"
            ).id
        req = AllocationRequest(prefixLength=29)
        with factory() as s:
            for _ in range(args.warmup):
                services.allocate(s, pool_id, req, "bench")
            pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
            s.commit()
            b0, c0, w0 = backend_cpu_s(pid), time.process_time(), time.perf_counter()
            for _ in range(args.n):
                services.allocate(s, pool_id, req, "bench")
            c1, w1, b1 = time.process_time(), time.perf_counter(), backend_cpu_s(pid)
            same = s.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
            s.commit()
        path = "general path" if args.general_path else "default (fast path where eligible)"
        backend = (
            f"{(b1 - b0) / args.n * 1000:.2f} ms" if b0 is not None and b1 is not None and same else "n/a"
        )
        print(
            f"{path}: n={args.n}  client CPU/allocation = {(c1 - c0) / args.n * 1000:.3f} ms  "
            f"backend CPU/allocation = {backend}  wall/allocation = {(w1 - w0) / args.n * 1000:.3f} ms"
        )


if __name__ == "__main__":
    main()
