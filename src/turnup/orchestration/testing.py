"""Helpers for tests and benchmarks: catalog fixtures, an in-process orchestrator, worker subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from turnup.kernel import clock
from turnup.kernel.ids import new_id


def make_offering(
    session: Session, name: str, provisioning: list[dict[str, Any]], *, lifecycle_status: str = "active"
) -> str:
    """A sellable offering with one specification whose delivery requirements list ``provisioning``."""
    from turnup.catalog.orm import OfferingSpecification, ProductOffering, ProductSpecification

    now = clock.now()
    spec = ProductSpecification(
        id=new_id(),
        name=f"{name} service",
        version="1.0",
        lifecycle_status="active",
        delivery_requirements={"provisioning": provisioning},
        reporting_attributes={},
        channels=[],
        created_at=now,
        updated_at=now,
    )
    offering = ProductOffering(
        id=new_id(),
        name=name,
        version="1.0",
        lifecycle_status=lifecycle_status,
        is_bundle=False,
        is_sellable=True,
        channels=[],
        reporting_attributes={},
        discount_rules=[],
        created_at=now,
        updated_at=now,
    )
    session.add_all([spec, offering])
    session.flush()
    session.add(OfferingSpecification(offering_id=offering.id, specification_id=spec.id, position=0))
    session.commit()
    return offering.id


def make_customer(session: Session, name: str = "Acme Ltd") -> str:
    from turnup.accounts.orm import Customer

    now = clock.now()
    customer = Customer(
        id=new_id(), name=name, customer_type="organization", status="active", created_at=now, updated_at=now
    )
    session.add(customer)
    session.commit()
    return customer.id


def order_body(customer_id: str, *offerings: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "relatedParty": [{"id": customer_id, "role": "customer"}],
        "productOrderItem": [
            {"id": str(n + 1), "action": "add", "quantity": quantity, "productOffering": {"id": o}}
            for n, o in enumerate(offerings)
        ],
    }


def wait_until(
    predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05, message: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@contextmanager
def in_process(url: str, executor_id: str = "test-inproc", **env: str) -> Iterator[None]:
    """DBOS launched in this process on ``url`` for the block (workflows run in background threads)."""
    from turnup.orchestration import runtime

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    runtime.launch(url, executor_id=executor_id)
    try:
        yield
    finally:
        runtime.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class WorkerProcess:
    """``turnup orchestrator run`` in a subprocess (killable with SIGKILL, restartable with the same id)."""

    def __init__(
        self,
        url: str,
        executor_id: str,
        *,
        concurrency: int = 8,
        env: dict[str, str] | None = None,
        log_path: str | None = None,
        nice: int = 0,
    ) -> None:
        self.url, self.executor_id, self.concurrency = url, executor_id, concurrency
        self.env = env or {}
        self.log_path = log_path
        self.nice = nice
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = dict(os.environ, TURNUP_DATABASE_URL=self.url, **self.env)
        cmd = [
            sys.executable,
            "-m",
            "turnup.cli.main",
            "orchestrator",
            "run",
            "--executor-id",
            self.executor_id,
            "--concurrency",
            str(self.concurrency),
        ]
        if self.nice:
            cmd = ["nice", "-n", str(self.nice), *cmd]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no cleanup of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def scratch_database(
    kind: str, tmp_dir: str, pg: str = "postgresql+psycopg://postgres@127.0.0.1:5432"
) -> Iterator[str]:
    """A fresh database with Turnup's tables and DBOS's system tables (benchmarks); dropped afterwards."""
    import psycopg

    import turnup.models
    from turnup.kernel.db import make_engine
    from turnup.orchestration import runtime

    if kind == "sqlite":
        url = f"sqlite:///{tmp_dir}/bench-{new_id()[:8]}.db"
        name = None
    else:
        name = f"turnup_bench_{new_id()[:10]}"
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{pg}/{name}"
    engine = make_engine(url)
    turnup.models.metadata.create_all(engine)
    engine.dispose()
    runtime.ensure_system_tables(url)
    try:
        yield url
    finally:
        if name:
            with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_vlan_pool(session: Session, start: int = 100, end: int = 999) -> str:
    """A VLAN pool (no quarantine) for orders that carry reservations."""
    from turnup.inventory.logical import services as pools
    from turnup.inventory.logical.schemas import PoolCreate

    return pools.create_pool(
        session, PoolCreate(poolType="vlanPool", name=f"access-{new_id()[:6]}", start=start, end=end), "test"
    ).id


def create_order_with_vlan(
    session: Session, body: dict[str, Any], vlan_pool: str, actor: str = "test"
) -> str:
    """Accept an order carrying a VLAN its "quote" committed to it, as quote acceptance does
    (``quoting.holds.commit``: the hold is committed to ``order:<id>`` in the order's transaction)."""
    from datetime import timedelta

    from turnup.inventory.logical import reservations as logical
    from turnup.ordering import services as ordering
    from turnup.ordering.schemas import ProductOrderCreate

    held = logical.reserve(
        session, [{"resourceType": "vlan", "poolId": vlan_pool}], clock.now() + timedelta(hours=1), actor
    )  # the quote's hold, made earlier
    body = body | {"reservation": [{"id": held.id, "@referredType": "ResourceReservation"}]}
    order = ordering.create_order(session, ProductOrderCreate.model_validate(body), actor, commit=False)
    logical.commit(session, held.id, actor, service_id=f"order:{order.id}", commit_now=False)
    session.commit()
    return order.id


def reservation_leaks(session: Session, expected: int) -> list[str]:
    """What is wrong with the VLANs orders carried, after they all completed: each must be allocated to a
    service (not to an order, not held, not lost) that lists it, its reservation committed to that service."""
    from sqlalchemy import select

    from turnup.inventory.logical.orm import LogicalBlock, ResourceReservation
    from turnup.service_inventory.orm import Service

    problems: list[str] = []
    blocks = session.scalars(
        select(LogicalBlock).where(LogicalBlock.state.in_(("reserved", "allocated")))
    ).all()
    if len(blocks) != expected:
        problems.append(f"{len(blocks)} VLANs held or allocated, {expected} expected")
    services = {sv.id: sv for sv in session.scalars(select(Service))}
    for block in blocks:
        if block.state != "allocated" or block.service_id not in services:
            problems.append(f"VLAN block {block.id} is {block.state} for {block.service_id}")
        elif [r.get("id") for r in services[block.service_id].resources] != [block.id]:
            problems.append(f"service {block.service_id} does not list VLAN block {block.id}")
    for r in session.scalars(select(ResourceReservation)):
        if r.state != "committed" or r.service_id not in services:
            problems.append(f"reservation {r.id} is {r.state} for {r.service_id}")
    return problems
