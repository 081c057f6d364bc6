"""Durable consumer throughput and lag, with a same-run baseline.

Three phases per database (PostgreSQL, SQLite), each on a fresh database:

1. **Baseline** (a plain implementation): the same backlog of inbox rows drained by the same number of
   worker processes with the simplest queue that is still safe — ``SELECT … FOR UPDATE SKIP LOCKED LIMIT
   batch`` then one ``UPDATE … SET status='done'`` per batch: no handler call, no savepoints, no
   per-resource head rule.
2. **Throughput**: ``--events`` events published through ``publish`` (one trivial consumer, ``--resources``
   resources) as a backlog; ``--workers`` worker processes (``ConsumerWorker``) drain it. Events/s =
   events / (last done - first start), and the ratio to the baseline.
3. **Lag under a steady stream**: a publisher emits ``--rate`` events/s for ``--seconds`` s in small
   transactions while the workers run; lag = done_at - created_at of every event; p50/p99/max.

    nice -n 10 .venv/bin/python bench/consumers_throughput.py --db postgresql --events 20000
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel import consumers
from turnup.kernel.consumers import ConsumerInbox, Event
from turnup.kernel.db import is_sqlite, make_engine, make_sessionmaker
from turnup.kernel.outbox import publish
from turnup.kernel.settings import Settings
from turnup.testing import scratch_database

EVENT = "BenchThingChangeEvent"
NAME = "bench.noop"
ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _noop(session: Session, event: Event) -> None:
    """A trivial handler: reads the event, writes nothing."""
    assert event.resource_id


def register() -> None:
    consumers.register(consumers.Consumer(NAME, frozenset({EVENT}), _noop))


def publish_backlog(factory: sessionmaker[Session], events: int, resources: int, per_txn: int = 200) -> None:
    made = 0
    while made < events:
        with factory() as s, s.begin():
            for _ in range(min(per_txn, events - made)):
                publish(
                    s,
                    api="bench",
                    event_type=EVENT,
                    resource_type="thing",
                    resource={"id": f"r{made % resources}", "n": made},
                )
                made += 1


def pending(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return (
            s.scalar(select(func.count()).select_from(ConsumerInbox).where(ConsumerInbox.status == "pending"))
            or 0
        )


# --- worker processes --------------------------------------------------------------------------------


def worker_main(url: str, worker_id: str, mode: str, batch: int) -> None:
    from turnup.wiring import wire

    wire()
    register()
    factory = make_sessionmaker(make_engine(url))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    if mode == "consumer":
        settings = Settings(database_url=url, consumer_poll_seconds=0.02, consumer_batch_size=batch)
        consumers.ConsumerWorker(factory, settings, worker_id=worker_id, names=(NAME,)).run_forever(stop)
        return
    # baseline: claim a batch with SKIP LOCKED and mark it done in one UPDATE; nothing else
    while not stop.is_set():
        with factory() as s, s.begin():
            seqs = list(
                s.scalars(
                    select(ConsumerInbox.seq)
                    .where(ConsumerInbox.status == "pending")
                    .order_by(ConsumerInbox.seq)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            if seqs:
                s.execute(
                    update(ConsumerInbox)
                    .where(ConsumerInbox.seq.in_(seqs))
                    .values(status="done", done_at=func.now(), handled_by=worker_id)
                    .execution_options(synchronize_session=False)
                )
        if not seqs:
            stop.wait(0.02)


def start_workers(url: str, n: int, mode: str, batch: int, log: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        out = open(log, "ab")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", url, f"{mode}-{i}", mode, str(batch)],
                stdout=subprocess.PIPE,
                stderr=out,
                cwd=ROOT,
            )
        )
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == b"ready"
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


def drain_time(
    factory: sessionmaker[Session], url: str, workers: int, mode: str, batch: int, log: Path
) -> float:
    procs = start_workers(url, workers, mode, batch, log)
    try:
        t0 = time.perf_counter()
        while pending(factory):
            time.sleep(0.02)
        return time.perf_counter() - t0
    finally:
        stop_workers(procs)


def reset_inbox(factory: sessionmaker[Session]) -> None:
    with factory() as s, s.begin():
        s.execute(
            update(ConsumerInbox).values(
                status="pending", done_at=None, handled_by=None, attempts=0, total_attempts=0
            )
        )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def run(kind: str, args: argparse.Namespace, tmp: str) -> None:
    log = Path(tmp) / f"{kind}-workers.log"
    with scratch_database(kind, tmp) as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        t0 = time.perf_counter()
        publish_backlog(factory, args.events, args.resources)
        publish_s = time.perf_counter() - t0
        if not is_sqlite(url):
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        base_s = drain_time(factory, url, args.workers, "baseline", args.batch, log)
        reset_inbox(factory)
        cons_s = drain_time(factory, url, args.workers, "consumer", args.batch, log)
        with factory() as s:
            done = s.scalar(
                select(func.count()).select_from(ConsumerInbox).where(ConsumerInbox.status == "done")
            )
        assert done == args.events, (done, args.events)
        base_rate, rate = args.events / base_s, args.events / cons_s
        print(
            f"[{kind}] {args.events} events, {args.resources} resources, {args.workers} worker processes, "
            f"batch {args.batch}"
        )
        print(f"[{kind}]   publish (backlog, 200/txn): {args.events / publish_s:,.0f} events/s")
        print(
            f"[{kind}]   baseline (SKIP LOCKED + one UPDATE per batch, no handler): {base_rate:,.0f} events/s"
        )
        print(
            f"[{kind}]   consumers (head rule, savepoint + handler per event): {rate:,.0f} events/s "
            f"= {rate / base_rate:.2f}x baseline"
        )

        # lag under a steady stream
        procs = start_workers(url, args.workers, "consumer", args.batch, log)
        try:
            started = time.perf_counter()
            sent = 0
            mark = ConsumerInbox.seq
            with factory() as s:
                first_seq = (s.scalar(select(func.max(mark))) or 0) + 1
            while (elapsed := time.perf_counter() - started) < args.seconds:
                due = int(elapsed * args.rate)
                if due > sent:
                    with factory() as s, s.begin():
                        for _ in range(due - sent):
                            publish(
                                s,
                                api="bench",
                                event_type=EVENT,
                                resource_type="thing",
                                resource={"id": f"r{sent % args.resources}", "n": sent},
                            )
                            sent += 1
                time.sleep(0.005)
            deadline = time.perf_counter() + 30
            while pending(factory) and time.perf_counter() < deadline:
                time.sleep(0.05)
        finally:
            stop_workers(procs)
        with factory() as s:
            rows = s.execute(
                select(ConsumerInbox.created_at, ConsumerInbox.done_at).where(ConsumerInbox.seq >= first_seq)
            ).all()
        lags = [(d - c).total_seconds() for c, d in rows if d is not None]
        print(
            f"[{kind}]   steady stream {args.rate}/s for {args.seconds}s ({sent} events, {len(lags)} done): "
            f"lag p50 {pct(lags, 0.5) * 1000:.0f} ms, p99 {pct(lags, 0.99) * 1000:.0f} ms, "
            f"max {max(lags, default=0) * 1000:.0f} ms"
        )
        engine.dispose()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rate", type=int, default=300, help="events/s in the steady-stream phase")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (checks the script runs)")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.resources, args.rate, args.seconds = 300, 30, 50, 1.0
    from turnup.wiring import wire

    wire()
    register()
    os.environ.setdefault("TURNUP_LOG_LEVEL", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ["postgresql", "sqlite"] if args.db == "both" else [args.db]:
            run(kind, args, tmp)


if __name__ == "__main__":
    main()
