"""End-to-end order throughput: accept -> active, simulator with zero latency, no field work or shipping.

For each database (PostgreSQL, SQLite) and worker count (1, 2): start worker processes
(``turnup orchestrator run``), accept N one-item orders as fast as one client can (service layer, one
transaction each, workflow enqueued in it), and wait until all are completed. Reports orders/s
(N / (last completion - first acceptance)), p50/p99 completion latency (completionDate - orderDate), and
where the time goes, from DBOS's own step records (queue wait, each step, checkpoint overhead).

    nice -n 10 .venv/bin/python bench/orders_e2e.py --orders 200
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select, text

from turnup import ordering
from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.orchestration import runtime
from turnup.ordering import ProductOrderCreate
from turnup.ordering.orm import ProductOrder
from turnup.testing import (
    WorkerProcess,
    make_customer,
    make_offering,
    order_body,
    scratch_database,
    wait_until,
)
from turnup.wiring import wire


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(
    kind: str, workers: int, n: int, concurrency: int, tmp: str, submitters: int = 4
) -> dict[str, object]:
    with scratch_database(kind, tmp) as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with factory() as s:
            offering = make_offering(
                s,
                "Bench Fibre",
                [{"adapter": "network-simulator", "action": "activate-access", "parameters": {}}],
            )
            customer = make_customer(s)
        body = ProductOrderCreate.model_validate(order_body(customer, offering))
        logs = [Path(tmp) / f"{kind}-{workers}-w{i}.log" for i in range(workers)]
        procs = [
            WorkerProcess(url, f"bench-w{i}", concurrency=concurrency, log_path=str(log))
            for i, log in enumerate(logs)
        ]
        try:
            for p, log in zip(procs, logs, strict=True):
                p.start()
                wait_until(lambda log=log: log.exists() and "running" in log.read_text(), 60)

            def accept(_: int) -> None:
                with factory() as s:
                    ordering.create_order(s, body, "bench")

            t0 = time.perf_counter()
            with ThreadPoolExecutor(submitters) as pool:  # several API clients accepting orders at once
                list(pool.map(accept, range(n)))
            accept_s = time.perf_counter() - t0

            def done() -> bool:
                with factory() as s:
                    return s.scalar(text("SELECT count(*) FROM product_order WHERE state = 'completed'")) == n

            wait_until(done, 600, 0.1, "all orders completed")
        finally:
            for p in procs:
                p.stop()
        with factory() as s:
            rows = s.execute(select(ProductOrder.order_date, ProductOrder.completion_date)).all()
        first = min(r[0] for r in rows)
        last = max(r[1] for r in rows)
        latencies = [(c - o).total_seconds() * 1000 for o, c in rows]
        profile = where_time_goes(engine, url)
        engine.dispose()
    return {
        "db": kind,
        "workers": workers,
        "orders": n,
        "accept_per_s": n / accept_s,
        "orders_per_s": n / (last - first).total_seconds(),
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "profile": profile,
    }


def where_time_goes(engine: object, url: str) -> dict[str, float]:
    schema = runtime.dbos_schema(url)
    prefix = f'"{schema}".' if schema else ""
    with engine.connect() as conn:  # type: ignore[attr-defined]
        wfs = conn.execute(
            text(
                f"SELECT workflow_uuid, created_at, started_at_epoch_ms, updated_at "
                f"FROM {prefix}workflow_status WHERE workflow_uuid LIKE 'order-%'"
            )
        ).all()
        steps = conn.execute(
            text(
                f"SELECT workflow_uuid, function_name, started_at_epoch_ms, "
                f"completed_at_epoch_ms FROM {prefix}operation_outputs"
            )
        ).all()
    per_step: dict[str, list[float]] = defaultdict(list)
    busy: dict[str, float] = defaultdict(float)
    for wf, name, start, end in steps:
        if start and end:
            per_step[name].append(end - start)
            busy[wf] += end - start
    queue_wait = [s - c for _, c, s, _ in wfs if s]
    run_time = [u - s for w, _, s, u in wfs if s]
    overhead = [(u - s) - busy[w] for w, _, s, u in wfs if s]
    out = {
        "queue_wait_ms_mean": statistics.mean(queue_wait),
        "workflow_run_ms_mean": statistics.mean(run_time),
        "checkpoint_and_dbos_overhead_ms_mean": statistics.mean(overhead),
    }
    for name, values in sorted(per_step.items()):
        out[f"step {name} ms_mean"] = statistics.mean(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--db", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for workers in (int(w) for w in args.workers.split(",")):
                r = run(kind, workers, args.orders, args.concurrency, tmp)
                print(
                    f"{r['db']:<10} workers={r['workers']} orders={r['orders']}  "
                    f"accepted {r['accept_per_s']:.0f}/s  completed {r['orders_per_s']:.1f} orders/s  "
                    f"p50 {r['p50_ms']:.0f} ms  p99 {r['p99_ms']:.0f} ms",
                    flush=True,
                )
                for k, v in r["profile"].items():  # type: ignore[union-attr]
                    print(f"    {k:<45} {v:8.1f}")


if __name__ == "__main__":
    wire()  # the composition root: workflows, consumers and sweeps registered before any order
    main()
