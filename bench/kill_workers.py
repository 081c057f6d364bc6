"""Kill -9 a worker at random moments while 200 orders run (PostgreSQL); then check every order completed,
every planned effect is in the simulator ledger exactly once, no designed service was left behind, and no
reservation leaked (each order carries a VLAN its "quote" committed; it must end assigned to the service).

    nice -n 10 .venv/bin/python bench/kill_workers.py --orders 200 --kills 5 --seed 6

With ``--workers 2`` two workers run (each killed in turn) to show they share the work without a step
running twice (every ledger row then has calls == 1 unless its step was in flight at a kill).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select, text

from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.orchestration import runtime
from turnup.ordering.orm import PlanItem, ProductOrder
from turnup.provisioning.orm import SimulatorLedgerEntry
from turnup.service_inventory.orm import Service
from turnup.testing import (
    WorkerProcess,
    create_order_with_vlan,
    make_customer,
    make_offering,
    make_vlan_pool,
    order_body,
    reservation_leaks,
    scratch_database,
    wait_until,
)
from turnup.wiring import wire


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--latency-ms", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp, scratch_database("postgresql", tmp) as url:
        factory = make_sessionmaker(make_engine(url))
        with factory() as s:
            offering = make_offering(
                s,
                "Colocation",
                [
                    {"adapter": "network-simulator", "action": "cross-connect", "parameters": {}},
                    {"adapter": "network-simulator", "action": "power-on", "parameters": {}},
                ],
            )
            customer = make_customer(s)
            vlans = make_vlan_pool(s, 100, 100 + args.orders + 10)
        body = order_body(customer, offering)

        def accept(_: int) -> str:
            with factory() as s:
                return create_order_with_vlan(s, body, vlans, "bench")

        with ThreadPoolExecutor(4) as pool:
            order_ids = list(pool.map(accept, range(args.orders)))
        env = {"TURNUP_SIMULATOR_LATENCY_MS": str(args.latency_ms)}
        logs = [Path(tmp) / f"w{i}.log" for i in range(args.workers)]
        workers = [
            WorkerProcess(url, f"kill-w{i}", concurrency=args.concurrency, env=env, log_path=str(log))
            for i, log in enumerate(logs)
        ]

        def completed() -> int:
            with factory() as s:
                return s.scalar(select(func.count()).where(ProductOrder.state == "completed")) or 0

        t0 = time.perf_counter()
        try:
            for w in workers:
                w.start()
            kills = 0
            for k in range(args.kills):
                victim = workers[k % len(workers)]
                log = Path(victim.log_path or "")
                wait_until(lambda log=log: "running" in log.read_text(errors="replace"), 60)
                time.sleep(rng.uniform(0.3, 2.0))
                before = completed()
                victim.kill()
                kills += 1
                print(
                    f"kill -9 #{kills} of {victim.executor_id} with {before}/{args.orders} orders completed",
                    flush=True,
                )
                Path(victim.log_path or "").write_text("")
                victim.start()
            wait_until(lambda: completed() == args.orders, 600, 0.2, "all orders completed")
            elapsed = time.perf_counter() - t0
        finally:
            for w in workers:
                w.stop()
        with factory() as s:
            ledger = s.scalars(select(SimulatorLedgerEntry)).all()
            keys = {
                f"{p.id}:activate"
                for p in s.scalars(
                    select(PlanItem).where(
                        PlanItem.order_id.in_(order_ids), PlanItem.kind == "serviceActivation"
                    )
                )
            }
            leaks = reservation_leaks(s, len(order_ids))
            service_states = dict(
                s.execute(select(Service.state, func.count()).group_by(Service.state)).all()
            )
            schema = runtime.dbos_schema(url)
            by_executor = dict(
                s.execute(
                    text(
                        f'SELECT executor_id, count(*) FROM "{schema}".workflow_status '
                        "WHERE workflow_uuid LIKE 'order-%' GROUP BY executor_id"
                    )
                ).all()
            )
        repeated = sum(r.calls - 1 for r in ledger)
        ok = (
            {r.idempotency_key for r in ledger} == keys
            and len(ledger) == len(keys)
            and {r.status for r in ledger} == {"applied"}
            and service_states == {"active": len(keys)}
            and not leaks
        )
        print(
            f"{args.orders} orders completed in {elapsed:.1f}s after {kills} kills; "
            f"ledger: {len(ledger)} effects for {len(keys)} planned, all applied once: {ok}; "
            f"repeated calls (steps in flight at a kill, answered from the ledger): {repeated}; "
            f"services: {service_states}; workflows by final executor: {by_executor}; "
            f"reservation leaks: {leaks[:5] or 'none'}"
        )
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    wire()  # the composition root: workflows, consumers and sweeps registered before any order
    main()
