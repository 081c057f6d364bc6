"""End-to-end order throughput: accept -> active, simulator with zero latency, no field work or shipping.

For each database (PostgreSQL, SQLite) and worker count (1, 2): start worker processes
(``turnup orchestrator run``), accept N one-item orders as fast as one client can (service layer, one
transaction each, workflow enqueued in it), and wait until all are completed. Reports orders/s
(N / (last completion - first acceptance)), p50/p99 completion latency (completionDate - orderDate), and
where the time goes, from DBOS's own step records (queue wait, each step, checkpoint overhead).

In the same run, on the same database, with the same number of worker processes and queue concurrency, a
**bare three-step DBOS workflow** (steps that do nothing) is enqueued N times first: orders/s is printed as
a ratio of bare workflows/s (an order does real work, but most of its cost should be the checkpoints it
needs). After the orders complete, the **lag of the durable event consumers** the workers ran alongside
(``turnup.kernel.consumers``; product inventory follows services) is reported: done_at - created_at of
every inbox row the run produced, p50/p99/max.

    nice -n 10 .venv/bin/python bench/orders_e2e.py --orders 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from turnup import ordering
from turnup.kernel.consumers import ConsumerInbox
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


BARE_WORKFLOW = "bench.bare3"


def bare_worker(url: str, executor_id: str, concurrency: int) -> None:
    """A worker process that knows only the bare three-step workflow (no Turnup feature is imported)."""
    import threading

    from dbos import DBOS

    @DBOS.step(name="bare.one")
    def one(i: int) -> int:
        return i

    @DBOS.step(name="bare.two")
    def two(i: int) -> int:
        return i + 1

    @DBOS.step(name="bare.three")
    def three(i: int) -> int:
        return i + 2

    @DBOS.workflow(name=BARE_WORKFLOW)
    def bare(i: int) -> int:
        return one(i) + two(i) + three(i)

    runtime.launch(url, executor_id=executor_id, worker_concurrency=concurrency)
    print("running", flush=True)
    threading.Event().wait()


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU seconds of a process (and its children still running, unless told) (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")

    def own(p: int) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    total = own(pid)
    if not children:
        return total
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += cpu_seconds(int(stat.parent.name))
    return total


def run_bare(url: str, workers: int, n: int, concurrency: int, submitters: int = 4) -> tuple[float, float]:
    """Bare three-step workflows/s on this database with this many worker processes."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--bare-worker", url, f"bare-w{i}", str(concurrency)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == b"running"
        client = runtime.client_for(url)

        def enqueue(i: int) -> None:
            client.enqueue(
                {
                    "workflow_name": BARE_WORKFLOW,
                    "queue_name": runtime.ORDER_QUEUE,
                    "workflow_id": f"bare-{i}",
                    "app_version": runtime.APP_VERSION,
                },
                i,
            )

        with ThreadPoolExecutor(submitters) as pool:
            list(pool.map(enqueue, range(n)))
        schema = runtime.dbos_schema(url)
        prefix = f'"{schema}".' if schema else ""
        engine = make_engine(url)
        count = text(
            f"SELECT count(*) FROM {prefix}workflow_status "
            f"WHERE workflow_uuid LIKE 'bare-%' AND status = 'SUCCESS'"
        )

        def done() -> bool:
            with engine.connect() as conn:
                return conn.execute(count).scalar() == n

        wait_until(done, 600, 0.1, "all bare workflows completed")
        worker_cpu = sum(cpu_seconds(p.pid) for p in procs)
        with engine.connect() as conn:
            first, last = conn.execute(
                text(
                    f"SELECT min(created_at), max(updated_at) FROM {prefix}workflow_status "
                    f"WHERE workflow_uuid LIKE 'bare-%'"
                )
            ).one()
        engine.dispose()
        return n / ((last - first) / 1000), worker_cpu
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def consumer_lag(
    factory: sessionmaker[Session], deadline_s: float = 60, consumer: str | None = None
) -> dict[str, float]:
    """Wait until the consumers owe nothing, then the lag of every inbox row (seconds): of every consumer,
    or of ``consumer`` only."""
    pending = select(ConsumerInbox.seq).where(ConsumerInbox.status == "pending").limit(1)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with factory() as s:
            if s.scalar(pending) is None:
                break
        time.sleep(0.1)
    with factory() as s:
        stmt = select(ConsumerInbox.created_at, ConsumerInbox.done_at)
        if consumer is not None:
            stmt = stmt.where(ConsumerInbox.consumer == consumer)
        rows = s.execute(stmt).all()
    lags = [(d - c).total_seconds() for c, d in rows if d is not None]
    return {
        "rows": float(len(rows)),
        "done": float(len(lags)),
        "p50_s": pct(lags, 0.5) if lags else 0.0,
        "p99_s": pct(lags, 0.99) if lags else 0.0,
        "max_s": max(lags, default=0.0),
    }


def add_monthly_price(session: Session, offering_id: str, amount: str) -> None:
    """Give the bench offering a monthly recurring price, so that billing and revenue have work to do."""
    from decimal import Decimal

    from turnup.catalog.orm import OfferingPrice, ProductOfferingPrice
    from turnup.kernel import clock
    from turnup.kernel.ids import new_id

    now = clock.now()
    price = ProductOfferingPrice(
        id=new_id(),
        name="Bench Fibre monthly",
        version="1.0",
        lifecycle_status="active",
        price_type="recurring",
        recurring_period_type="month",
        recurring_period_length=1,
        currency="GBP",
        amount=Decimal(amount),
        created_at=now,
        updated_at=now,
    )
    session.add(price)
    session.flush()
    session.add(OfferingPrice(offering_id=offering_id, price_id=price.id, position=0))
    session.commit()


def run(
    kind: str, workers: int, n: int, concurrency: int, tmp: str, submitters: int = 4, price: str = "0"
) -> dict[str, object]:
    with scratch_database(kind, tmp) as url:
        bare_per_s, bare_cpu = run_bare(url, workers, n, concurrency)
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with factory() as s:
            offering = make_offering(
                s,
                "Bench Fibre",
                [{"adapter": "network-simulator", "action": "activate-access", "parameters": {}}],
            )
            if price != "0":
                add_monthly_price(s, offering, price)
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
            client_cpu0 = time.process_time()
            with ThreadPoolExecutor(submitters) as pool:  # several API clients accepting orders at once
                list(pool.map(accept, range(n)))
            accept_s = time.perf_counter() - t0

            def done() -> bool:
                with factory() as s:
                    return s.scalar(text("SELECT count(*) FROM product_order WHERE state = 'completed'")) == n

            wait_until(done, 600, 0.1, "all orders completed")
            client_cpu = time.process_time() - client_cpu0
            lag = consumer_lag(factory)
            charge_lag = consumer_lag(factory, consumer="billing.triggers")
            worker_cpu = sum(cpu_seconds(p.proc.pid) for p in procs if p.proc is not None)
            worker_own_cpu = sum(cpu_seconds(p.proc.pid, False) for p in procs if p.proc is not None)
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
        "bare_per_s": bare_per_s,
        "cpu_ms_per_order": {
            "worker processes (DBOS and the order steps)": worker_own_cpu * 1000 / n,
            "their consumer child processes": (worker_cpu - worker_own_cpu) * 1000 / n,
            "client (accepting orders, polling)": client_cpu * 1000 / n,
            "bare workers per bare workflow": bare_cpu * 1000 / n,
        },
        "consumer_lag": lag,
        "charge_lag": charge_lag,
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
    parser.add_argument(
        "--price", default="30.00", help="monthly price of the bench offering (0: unpriced, no charges)"
    )
    args = parser.parse_args()
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for workers in (int(w) for w in args.workers.split(",")):
                r = run(kind, workers, args.orders, args.concurrency, tmp, price=args.price)
                print(
                    f"{r['db']:<10} workers={r['workers']} orders={r['orders']}  "
                    f"accepted {r['accept_per_s']:.0f}/s  completed {r['orders_per_s']:.1f} orders/s  "
                    f"p50 {r['p50_ms']:.0f} ms  p99 {r['p99_ms']:.0f} ms",
                    flush=True,
                )
                bare = float(r["bare_per_s"])
                print(
                    f"    bare three-step DBOS workflow, same workers: {bare:.1f}/s  "
                    f"-> orders/s = {float(r['orders_per_s']) / bare:.2f}x bare"
                )
                lag = r["consumer_lag"]
                print(
                    f"    consumer lag over {lag['done']:.0f}/{lag['rows']:.0f} inbox rows: "
                    f"p50 {lag['p50_s'] * 1000:.0f} ms  p99 {lag['p99_s'] * 1000:.0f} ms  "
                    f"max {lag['max_s'] * 1000:.0f} ms"
                )
                charge = r["charge_lag"]
                print(
                    f"    activation -> charge (billing.triggers lag) over {charge['done']:.0f} events: "
                    f"p50 {charge['p50_s'] * 1000:.0f} ms  p99 {charge['p99_s'] * 1000:.0f} ms  "
                    f"max {charge['max_s'] * 1000:.0f} ms"
                )
                for k, v in r["cpu_ms_per_order"].items():  # type: ignore[union-attr]
                    print(f"    CPU ms per order, {k:<50} {v:6.1f}")
                for k, v in r["profile"].items():  # type: ignore[union-attr]
                    print(f"    {k:<45} {v:8.1f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-worker":
        bare_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        sys.exit(0)
    wire()  # the composition root: workflows, consumers and sweeps registered before any order
    main()
