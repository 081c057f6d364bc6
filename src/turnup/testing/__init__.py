"""Helpers for tests and benchmarks that touch features: catalog offerings, customers, order bodies,
orders carrying reservations, scratch databases, and checks of what orders left behind.

An adapter-layer package (like ``turnup.api``): it may use any feature's internals. The feature-free
helpers (``in_process``, ``WorkerProcess``, ``wait_until``) live in ``turnup.orchestration.testing`` and
are re-exported here for convenience.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.kernel import clock
from turnup.kernel.db import make_engine
from turnup.kernel.ids import new_id
from turnup.orchestration import runtime
from turnup.orchestration.testing import WorkerProcess, in_process, wait_until

__all__ = [
    "WorkerProcess",
    "create_order_with_vlan",
    "in_process",
    "make_customer",
    "make_offering",
    "make_vlan_pool",
    "order_body",
    "reservation_leaks",
    "scratch_database",
    "wait_until",
]


def make_offering(
    session: Session,
    name: str,
    provisioning: list[dict[str, Any]],
    *,
    lifecycle_status: str = "active",
    delivery: dict[str, Any] | None = None,
) -> str:
    """A sellable offering with one specification whose delivery requirements list ``provisioning`` (and
    the other delivery requirements in ``delivery``: ``physical``, ``fieldVisit``…)."""
    from turnup.catalog.orm import OfferingSpecification, ProductOffering, ProductSpecification

    now = clock.now()
    spec = ProductSpecification(
        id=new_id(),
        name=f"{name} service",
        version="1.0",
        lifecycle_status="active",
        delivery_requirements=(delivery or {}) | {"provisioning": provisioning},
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


@contextmanager
def scratch_database(
    kind: str, tmp_dir: str, pg: str = "postgresql+psycopg://postgres@127.0.0.1:5432"
) -> Iterator[str]:
    """A fresh database with Turnup's tables and DBOS's system tables (benchmarks); dropped afterwards."""
    import psycopg

    import turnup.models

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
    from turnup.inventory.logical import reservations as logical
    from turnup.ordering import ProductOrderCreate, create_order

    held = logical.reserve(
        session, [{"resourceType": "vlan", "poolId": vlan_pool}], clock.now() + timedelta(hours=1), actor
    )  # the quote's hold, made earlier
    body = body | {"reservation": [{"id": held.id, "@referredType": "ResourceReservation"}]}
    order = create_order(session, ProductOrderCreate.model_validate(body), actor, commit=False)
    logical.commit(session, held.id, actor, service_id=f"order:{order.id}", commit_now=False)
    session.commit()
    return order.id


def reservation_leaks(session: Session, expected: int) -> list[str]:
    """What is wrong with the VLANs orders carried, after they all completed: each must be allocated to a
    service (not to an order, not held, not lost) that lists it, its reservation committed to that service."""
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
