"""Reliability on PostgreSQL with real worker processes: kill -9 mid-flight, and two workers sharing work.

Exactly-once is shown by the simulator's ledger (one row per idempotency key, ``calls`` counting every
request): after random kills every planned effect is applied once, and the only repeated calls are those
of steps that were in flight when a worker died (at most kills x concurrency).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel.outbox import OutboxEvent
from turnup.orchestration import runtime
from turnup.ordering import services as ordering
from turnup.ordering.orm import PlanItem, ProductOrder
from turnup.ordering.schemas import ProductOrderCreate
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
    wait_until,
)

CONCURRENCY = 4


def _submit(
    factory: sessionmaker[Session], n: int, offering: str, customer: str, vlan_pool: str | None = None
) -> list[str]:
    """``n`` orders; with ``vlan_pool`` each carries a VLAN its "quote" committed to it."""
    ids = []
    for _ in range(n):
        with factory() as s:
            if vlan_pool:
                ids.append(create_order_with_vlan(s, order_body(customer, offering), vlan_pool))
            else:
                ids.append(
                    ordering.create_order(
                        s, ProductOrderCreate.model_validate(order_body(customer, offering)), "test"
                    ).id
                )
    return ids


def _states(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return dict(s.execute(select(ProductOrder.state, func.count()).group_by(ProductOrder.state)).all())


def _wait_ready(log: Path, timeout: float = 60) -> None:
    wait_until(
        lambda: log.exists() and "running" in log.read_text(errors="replace"),
        timeout,
        message=f"worker log {log}",
    )


@pytest.fixture
def pg_only(db_url: str, engine: object, dbos_schema_cleanup: None) -> str:
    if db_url.startswith("sqlite"):
        pytest.skip("worker-process reliability runs on PostgreSQL")
    runtime.ensure_system_tables(db_url)
    return db_url


def test_kill_9_at_random_moments_every_order_completes_with_each_effect_once(
    pg_only: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # Given 40 orders of two activation steps each, each carrying a VLAN its quote committed (so a resource
    # assignment step too), and a simulator taking 20 ms per call
    with session_factory() as s:
        offering = make_offering(
            s,
            "Colocation",
            [
                {"adapter": "network-simulator", "action": "cross-connect", "parameters": {}},
                {"adapter": "network-simulator", "action": "power-on", "parameters": {}},
            ],
        )
        customer = make_customer(s)
        pool = make_vlan_pool(s)
    order_ids = _submit(session_factory, 40, offering, customer, vlan_pool=pool)
    env = {"TURNUP_SIMULATOR_LATENCY_MS": "20", "TURNUP_STEP_BACKOFF_SECONDS": "0.05"}
    worker = WorkerProcess(
        pg_only, "kill-test-w1", concurrency=CONCURRENCY, env=env, log_path=str(tmp_path / "worker.log")
    )
    rng = random.Random(6)
    kills = 0
    try:
        # When the worker is killed with SIGKILL at random moments, three times, and restarted each time
        for _ in range(3):
            worker.start()
            _wait_ready(tmp_path / "worker.log")
            time.sleep(rng.uniform(0.2, 1.2))
            worker.kill()
            kills += 1
            (tmp_path / "worker.log").write_text("")
        in_flight = _states(session_factory)
        worker.start()
        wait_until(lambda: _states(session_factory).get("completed") == 40, 180, 0.2, "40 completed orders")
    finally:
        worker.stop()
    # Then the kills did land mid-flight: not all orders were done before the last restart
    assert in_flight.get("completed", 0) < 40
    with session_factory() as s:
        ledger = s.scalars(select(SimulatorLedgerEntry)).all()
        plan_keys = {
            f"{p.id}:activate"
            for p in s.scalars(
                select(PlanItem).where(PlanItem.order_id.in_(order_ids), PlanItem.kind == "serviceActivation")
            )
        }
        # every planned effect applied exactly once, nothing else applied
        assert len(plan_keys) == 80
        assert {r.idempotency_key for r in ledger} == plan_keys
        assert {r.status for r in ledger} == {"applied"}
        # finished steps were not run again: only steps in flight at a kill were repeated
        repeated = sum(r.calls - 1 for r in ledger)
        assert repeated <= kills * CONCURRENCY
        # every service active once, every order completed with one completion event
        assert set(s.scalars(select(Service.state))) == {"active"}
        changes = s.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.event_type == "ProductOrderStateChangeEvent")
        ).all()
        completed = sorted(
            p["event"]["productOrder"]["id"]
            for p in changes
            if p["event"]["productOrder"]["state"] == "completed"
        )
        assert completed == sorted(order_ids)
    # and no reservation leaked: each order's VLAN is assigned to one of its services
    with session_factory() as s:
        assert reservation_leaks(s, len(order_ids)) == []


def test_two_workers_share_the_orders_without_running_any_step_twice(
    pg_only: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_factory() as s:
        offering = make_offering(
            s, "Fibre", [{"adapter": "network-simulator", "action": "activate-access", "parameters": {}}]
        )
        customer = make_customer(s)
    env = {"TURNUP_SIMULATOR_LATENCY_MS": "10"}
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [
        WorkerProcess(pg_only, f"share-w{n + 1}", concurrency=CONCURRENCY, env=env, log_path=str(logs[n]))
        for n in range(2)
    ]
    try:
        for w, log in zip(workers, logs, strict=True):
            w.start()
            _wait_ready(log)
        # When 60 orders arrive while both workers listen
        order_ids = _submit(session_factory, 60, offering, customer)
        wait_until(lambda: _states(session_factory).get("completed") == 60, 120, 0.2, "60 completed orders")
    finally:
        for w in workers:
            w.stop()
    schema = runtime.dbos_schema(pg_only)
    with session_factory() as s:
        by_executor = dict(
            s.execute(
                text(
                    f'SELECT executor_id, count(*) FROM "{schema}".workflow_status '
                    "WHERE workflow_uuid LIKE 'order-%' GROUP BY executor_id"
                )
            ).all()
        )
        ledger = s.scalars(select(SimulatorLedgerEntry)).all()
    # Then both workers ran orders, and every activation was requested exactly once
    assert set(by_executor) == {"share-w1", "share-w2"}, by_executor
    assert sum(by_executor.values()) == len(order_ids) == 60
    assert len(ledger) == 60
    assert {(r.status, r.calls) for r in ledger} == {("applied", 1)}
