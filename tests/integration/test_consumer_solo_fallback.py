"""When a batch's commit fails, the worker falls back to one row per transaction and charges the failure to
the row whose commit fails, and only to it.

A handler's effect that fails only at commit (a deferred unique constraint on PostgreSQL) passes every
savepoint, so the whole batch's commit fails: nothing of the batch is kept. The worker then runs the rows
one per transaction: the rows whose commit succeeds are done exactly once, the row whose commit fails is
retried and finally parked, and its error names the constraint.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel import clock, consumers
from turnup.kernel.consumers import DONE, PARKED, ConsumerInbox, ConsumerWorker, Event
from turnup.kernel.outbox import publish
from turnup.kernel.settings import Settings

NAME = "test.deferred_ledger"
EVENT = "SoloThingChangeEvent"

meta = MetaData()
ledger = Table(
    "solo_ledger",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("k", Integer, nullable=False),
    Column("event_id", String(32), nullable=False),
)


def _handler(session: Session, event: Event) -> None:
    session.execute(insert(ledger).values(k=int(event.resource["k"]), event_id=event.id))


@pytest.fixture
def deferred_consumer(engine: Engine, db_url: str) -> Iterator[None]:
    if not db_url.startswith("postgresql"):
        pytest.skip("a constraint checked only at commit: PostgreSQL's DEFERRABLE INITIALLY DEFERRED")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "ALTER TABLE solo_ledger ADD CONSTRAINT solo_ledger_k UNIQUE (k) "
                "DEFERRABLE INITIALLY DEFERRED"
            )
        )
    consumers.register(
        consumers.Consumer(
            name=NAME, events=frozenset({EVENT}), handler=_handler, max_attempts=2, description="test"
        )
    )
    try:
        yield
    finally:
        consumers.unregister(NAME)


def test_a_failed_batch_commit_is_charged_to_the_row_that_cannot_commit(
    deferred_consumer: None, session_factory: sessionmaker[Session], db_url: str
) -> None:
    # Given three events for three resources; the first two would write the same key
    with session_factory() as s:
        ids = [
            publish(s, api="test", event_type=EVENT, resource_type="thing", resource={"id": rid, "k": k}).id
            for rid, k in (("a", 1), ("b", 1), ("c", 2))
        ]
        s.commit()
    worker = ConsumerWorker(
        session_factory, Settings(database_url=db_url, consumer_backoff_base_seconds=1.0), names=[NAME]
    )
    # When the worker drains: the batch's commit fails, then the rows run one per transaction
    worker.drain()
    # Then the first and the third are done once; the second failed its commit once and waits to retry
    with session_factory() as s:
        rows = {r.event_id: r for r in s.scalars(select(ConsumerInbox).where(ConsumerInbox.consumer == NAME))}
        assert [(rows[i].status, rows[i].attempts) for i in ids] == [(DONE, 1), ("pending", 1), (DONE, 1)]
        assert "solo_ledger_k" in (rows[ids[1]].last_error or "")
        assert sorted(s.execute(select(ledger.c.k, ledger.c.event_id)).all()) == [(1, ids[0]), (2, ids[2])]
    # When its retry is due and fails at commit again
    clock.advance(timedelta(seconds=5))
    worker.drain()
    # Then it is parked after its two attempts, and nothing was written twice
    with session_factory() as s:
        second = s.scalar(select(ConsumerInbox).where(ConsumerInbox.event_id == ids[1]))
        assert second is not None and (second.status, second.attempts) == (PARKED, 2)
        assert s.scalar(select(ledger.c.id).where(ledger.c.event_id == ids[1])) is None
        assert len(s.execute(select(ledger.c.id)).all()) == 2
