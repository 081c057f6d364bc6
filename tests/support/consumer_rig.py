"""A rig for proving the durable consumers: three test consumers writing to a unique-keyed ledger.

- ``rig.ledger``: appends (consumer, event id, resource, n); unique on (consumer, event id), so a second
  application of one event to one consumer cannot commit (it would fail, be retried and end up parked).
- ``rig.flaky``: the same, but fails its first two attempts (after writing) on every event whose ``n`` is a
  multiple of 7.
- ``rig.fragile``: the same, but fails on resource ``res-13`` until a row exists in ``rig_flag``
  (``max_attempts=2``: it parks, and blocks only that resource until an operator retries).

``python -m tests.support.consumer_rig URL WORKER_ID`` runs a worker process over these consumers.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel import consumers
from turnup.kernel.consumers import Event
from turnup.kernel.outbox import publish

EVENT_TYPE = "RigThingChangeEvent"
CONSUMERS = ("rig.ledger", "rig.flaky", "rig.fragile")
FRAGILE_RESOURCE = "res-13"

rig_metadata = MetaData()
ledger = Table(
    "rig_ledger",
    rig_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False),
    Column("event_id", String(32), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("n", Integer, nullable=False),
    UniqueConstraint("consumer", "event_id"),
)
flag = Table("rig_flag", rig_metadata, Column("id", Integer, primary_key=True))


def _append(session: Session, name: str, event: Event) -> None:
    session.execute(
        insert(ledger).values(
            consumer=name, event_id=event.id, resource_id=event.resource_id, n=int(event.resource["n"])
        )
    )


def _ledger(session: Session, event: Event) -> None:
    _append(session, "rig.ledger", event)


def _flaky(session: Session, event: Event) -> None:
    """Writes its ledger row first, then fails: the failed attempt's write must not survive."""
    _append(session, "rig.flaky", event)
    session.flush()
    if int(event.resource["n"]) % 7 == 0 and event.attempt <= 2:
        raise RuntimeError(f"flaky: attempt {event.attempt} of event n={event.resource['n']} fails")


def _fragile(session: Session, event: Event) -> None:
    if event.resource_id == FRAGILE_RESOURCE and session.scalar(select(func.count()).select_from(flag)) == 0:
        raise RuntimeError("fragile: res-13 cannot be handled until the flag is set")
    _append(session, "rig.fragile", event)


def register() -> None:
    consumers.register(consumers.Consumer("rig.ledger", frozenset({EVENT_TYPE}), _ledger, max_attempts=5))
    consumers.register(consumers.Consumer("rig.flaky", frozenset({EVENT_TYPE}), _flaky, max_attempts=5))
    consumers.register(consumers.Consumer("rig.fragile", frozenset({EVENT_TYPE}), _fragile, max_attempts=2))


def unregister() -> None:
    for name in CONSUMERS:
        consumers.unregister(name)


def create_tables(engine: Engine) -> None:
    rig_metadata.create_all(engine)


def publish_batch(factory: sessionmaker[Session], counters: dict[str, int], resources: list[str]) -> None:
    """One transaction publishing one event for each resource given (``n`` counts up per resource)."""
    with factory() as session, session.begin():
        for resource_id in resources:
            counters[resource_id] = counters.get(resource_id, 0) + 1
            publish(
                session,
                api="rigTest",
                event_type=EVENT_TYPE,
                resource_type="thing",
                resource={"id": resource_id, "n": counters[resource_id]},
            )


def ledger_rows(session: Session) -> list[Any]:
    return list(session.execute(select(ledger).order_by(ledger.c.id)).all())


def main(url: str, worker_id: str) -> None:
    """A worker process: registers the rig consumers and handles events until killed."""
    from turnup.kernel.db import make_engine, make_sessionmaker
    from turnup.kernel.settings import Settings
    from turnup.wiring import wire

    wire()
    register()
    settings = Settings(
        database_url=url,
        consumer_backoff_base_seconds=0.05,
        consumer_backoff_cap_seconds=0.2,
        consumer_poll_seconds=0.02,
        consumer_batch_size=50,
    )
    worker = consumers.ConsumerWorker(
        make_sessionmaker(make_engine(url)), settings, worker_id=worker_id, names=CONSUMERS
    )
    print("ready", flush=True)
    worker.run_forever(threading.Event())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
