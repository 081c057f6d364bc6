"""Handled consumer-inbox rows are pruned after the retention period; what consumers still owe never is."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel import clock, housekeeping
from turnup.kernel.consumers import DONE, PARKED, PENDING, SKIPPED, ConsumerInbox, prune_handled
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import OutboxEvent
from turnup.kernel.settings import Settings


def _row(session: Session, status: str, handled_days_ago: float | None, consumer: str) -> int:
    now = clock.now()
    event_id = new_id()
    session.add(
        OutboxEvent(
            id=event_id,
            api="test",
            event_type="ThingChangeEvent",
            event_time=now,
            resource_type="thing",
            resource_id="t1",
            payload={},
        )
    )
    session.flush()
    row = ConsumerInbox(
        event_id=event_id,
        consumer=consumer,
        event_type="ThingChangeEvent",
        resource_key="thing/t1",
        status=status,
        attempts=0,
        total_attempts=0,
        created_at=now - timedelta(days=30),
        next_attempt_at=now,
        done_at=None if handled_days_ago is None else now - timedelta(days=handled_days_ago),
    )
    session.add(row)
    session.flush()
    return row.seq


def test_old_handled_rows_go_and_owed_or_recent_rows_stay(session_factory: sessionmaker[Session]) -> None:
    # Given inbox rows handled long ago, handled recently, skipped long ago, parked and pending
    with session_factory() as s:
        old_done = [_row(s, DONE, 10, f"c{i}") for i in range(3)]
        recent_done = _row(s, DONE, 1, "c-recent")
        old_skipped = _row(s, SKIPPED, 8, "c-skipped")
        parked = _row(s, PARKED, None, "c-parked")
        pending = _row(s, PENDING, None, "c-pending")
        s.commit()
    # When the sweep runs with a 7-day retention, in batches of two
    import turnup.kernel.consumers as consumers

    saved, consumers.PRUNE_BATCH = consumers.PRUNE_BATCH, 2
    try:
        with session_factory() as s:
            result = prune_handled(s, Settings(consumer_retention_days=7))
    finally:
        consumers.PRUNE_BATCH = saved
    # Then exactly the rows handled or skipped more than 7 days ago are gone
    assert result == {"pruned": 4}
    with session_factory() as s:
        left = set(s.scalars(select(ConsumerInbox.seq)))
    assert left == {recent_done, parked, pending}
    assert not left & {*old_done, old_skipped}


def test_zero_retention_keeps_everything_and_the_sweep_is_registered(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as s:
        seq = _row(s, DONE, 400, "c-old")
        s.commit()
    with session_factory() as s:
        assert prune_handled(s, Settings(consumer_retention_days=0)) == {"pruned": 0}
    with session_factory() as s:
        assert s.scalar(select(ConsumerInbox.seq).where(ConsumerInbox.seq == seq)) == seq
    assert housekeeping.SWEEPS["consumer_inbox.prune"] is prune_handled
