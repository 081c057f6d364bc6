"""Durable in-process event consumers: exactly once per (event, consumer), in order per resource, retried,
parked visibly, retried or skipped by an operator — single process on both databases, and two killed
and restarted worker processes on PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support import consumer_rig as rig
from turnup.kernel import clock, consumers
from turnup.kernel.audit import AuditEntry
from turnup.kernel.consumers import ConsumerInbox, ConsumerWorker
from turnup.kernel.db import is_sqlite
from turnup.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rigged(engine: Engine) -> Iterator[None]:
    rig.create_tables(engine)
    rig.register()
    try:
        yield
    finally:
        rig.unregister()


def _settings(url: str) -> Settings:
    return Settings(database_url=url, consumer_backoff_base_seconds=1.0, consumer_backoff_cap_seconds=8.0)


def _statuses(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(ConsumerInbox.consumer, ConsumerInbox.status, func.count()).group_by(
            ConsumerInbox.consumer, ConsumerInbox.status
        )
    ).all()
    return {(c, s): n for c, s, n in rows}


def _assert_ledger_exact(session: Session, published: dict[str, int], names: tuple[str, ...]) -> None:
    """Each consumer saw every event once, and each resource's events in the order they were published."""
    rows = [row for row in rig.ledger_rows(session) if row.consumer in names]
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows:
        seen[(row.consumer, row.resource_id)].append(row.n)
    for name in names:
        for resource_id, count in published.items():
            assert seen[(name, resource_id)] == list(range(1, count + 1)), (name, resource_id)
    assert len(rows) == len(names) * sum(published.values())
    assert len({(r.consumer, r.event_id) for r in rows}) == len(rows)


def test_each_event_reaches_each_consumer_once_in_order_and_a_parked_one_blocks_only_its_resource(
    rigged: None, session_factory: sessionmaker[Session], db_url: str
) -> None:
    # given 20 resources and 300 events published in 15 transactions
    counters: dict[str, int] = {}
    resources = [f"res-{i}" for i in range(20)]
    for _ in range(15):
        rig.publish_batch(session_factory, counters, resources)
    worker = ConsumerWorker(session_factory, _settings(db_url), names=rig.CONSUMERS, batch_size=40)

    # when the worker drains, time moving on so that backed-off retries fall due
    for _ in range(12):
        worker.drain()
        clock.advance(timedelta(seconds=10))

    with session_factory() as s:
        statuses = _statuses(s)
        # then the ledger and flaky consumers applied all 300 events exactly once, in order per resource
        assert statuses[("rig.ledger", "done")] == 300
        assert statuses[("rig.flaky", "done")] == 300
        # the flaky consumer's failing events each took exactly three attempts
        flaky = s.execute(
            select(ConsumerInbox.total_attempts, func.count())
            .where(ConsumerInbox.consumer == "rig.flaky")
            .group_by(ConsumerInbox.total_attempts)
        ).all()
        assert dict(flaky) == {1: 300 - 20 * 2, 3: 20 * 2}  # n = 7 and 14 on each of 20 resources
        # and the fragile consumer parked res-13's first event after 2 attempts; its 14 later events wait
        parked = s.scalars(select(ConsumerInbox).where(ConsumerInbox.status == consumers.PARKED)).all()
        assert [(p.consumer, p.resource_key, p.attempts) for p in parked] == [
            ("rig.fragile", "thing/res-13", 2)
        ]
        assert "fragile: res-13 cannot be handled" in (parked[0].last_error or "")
        assert statuses[("rig.fragile", "done")] == 285
        assert statuses[("rig.fragile", "pending")] == 14
        lag = {entry.name: entry for entry in consumers.lag(s)}
        assert (lag["rig.fragile"].parked, lag["rig.fragile"].pending) == (1, 14)
        assert (lag["rig.ledger"].parked, lag["rig.ledger"].pending) == (0, 0)
        fragile_ledger = [r for r in rig.ledger_rows(s) if r.consumer == "rig.fragile"]
        assert {r.resource_id for r in fragile_ledger} == set(resources) - {rig.FRAGILE_RESOURCE}
        _assert_ledger_exact(
            s, {r: c for r, c in counters.items() if r != rig.FRAGILE_RESOURCE}, ("rig.fragile",)
        )
        _assert_ledger_exact(s, counters, ("rig.ledger", "rig.flaky"))
        parked_seq = parked[0].seq

    # when an operator retries without fixing anything, it parks again (after a fresh budget of 2)
    with session_factory() as s:
        consumers.retry(s, parked_seq, actor="user:ops", reason="try again")
    for _ in range(3):
        worker.drain()
        clock.advance(timedelta(seconds=10))
    with session_factory() as s:
        entry = s.get(ConsumerInbox, parked_seq)
        assert entry is not None
        assert (entry.status, entry.attempts, entry.total_attempts) == ("parked", 2, 4)

    # when the cause is fixed and the operator retries, res-13 flows again, in order
    with session_factory() as s, s.begin():
        s.execute(insert(rig.flag).values(id=1))
    with session_factory() as s:
        consumers.retry(s, parked_seq, actor="user:ops", reason="flag set")
    worker.drain()
    with session_factory() as s:
        assert _statuses(s)[("rig.fragile", "done")] == 300
        assert ("rig.fragile", "pending") not in _statuses(s)
        _assert_ledger_exact(s, counters, rig.CONSUMERS)
        audits = s.scalars(
            select(AuditEntry.action).where(AuditEntry.resource_id == str(parked_seq)).order_by(AuditEntry.at)
        ).all()
        assert audits == ["consumerEvent.retry", "consumerEvent.retry"]
        # and a second drain finds nothing left to do
    assert worker.drain() == 0


def test_skipping_a_parked_event_needs_a_reason_is_audited_and_lets_later_events_through(
    rigged: None, session_factory: sessionmaker[Session], db_url: str
) -> None:
    # given res-13's first event parked in the fragile consumer, with two more events behind it
    counters: dict[str, int] = {}
    for _ in range(3):
        rig.publish_batch(session_factory, counters, ["res-13", "res-1"])
    worker = ConsumerWorker(session_factory, _settings(db_url), names=("rig.fragile",))
    for _ in range(3):
        worker.drain()
        clock.advance(timedelta(seconds=10))
    with session_factory() as s:
        parked = s.scalars(select(ConsumerInbox).where(ConsumerInbox.status == "parked")).one()
    # when the operator skips it without a reason, that is refused and nothing changes
    with session_factory() as s, pytest.raises(Exception, match="reason"):
        consumers.skip(s, parked.seq, actor="user:ops", reason="  ")
    with session_factory() as s:
        assert s.get(ConsumerInbox, parked.seq).status == "parked"  # type: ignore[union-attr]
    # when the operator skips it with a reason
    with session_factory() as s:
        consumers.skip(s, parked.seq, actor="user:ops", reason="customer record fixed by hand")
    with session_factory() as s, s.begin():
        s.execute(insert(rig.flag).values(id=1))
    worker.drain()
    # then the two later events of res-13 are handled, the skipped one never is, and the skip is audited
    with session_factory() as s:
        rows = [(r.resource_id, r.n) for r in rig.ledger_rows(s)]
        assert sorted(rows) == [("res-1", 1), ("res-1", 2), ("res-1", 3), ("res-13", 2), ("res-13", 3)]
        entry = s.get(ConsumerInbox, parked.seq)
        assert entry is not None and (entry.status, entry.note) == (
            "skipped",
            "customer record fixed by hand",
        )
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "consumerEvent.skip")).one()
        assert (audit.actor, audit.comment) == ("user:ops", "customer record fixed by hand")
    # and a done event can be neither skipped nor retried
    with session_factory() as s:
        done_seq = s.scalars(select(ConsumerInbox.seq).where(ConsumerInbox.status == "done")).first()
        assert done_seq is not None
        with pytest.raises(Exception, match="only a parked"):
            consumers.retry(s, done_seq, actor="user:ops")


def test_a_failed_handler_leaves_none_of_its_writes_and_a_rolled_back_publish_owes_nothing(
    rigged: None, session_factory: sessionmaker[Session], db_url: str
) -> None:
    # given an event published in a transaction that rolls back
    with session_factory() as s:
        from turnup.kernel.outbox import publish

        publish(
            s, api="rigTest", event_type=rig.EVENT_TYPE, resource_type="thing", resource={"id": "x", "n": 7}
        )
        s.rollback()
    with session_factory() as s:
        # then no consumer owes anything
        assert s.scalar(select(func.count()).select_from(ConsumerInbox)) == 0
    # given a committed event the flaky consumer fails on (n=7) twice
    rig.publish_batch(session_factory, {"x": 6}, ["x"])
    worker = ConsumerWorker(session_factory, _settings(db_url), names=("rig.flaky",))
    worker.drain()
    with session_factory() as s:
        # then the failed attempt wrote nothing and the row waits for its backoff
        assert rig.ledger_rows(s) == []
        entry = s.scalars(select(ConsumerInbox).where(ConsumerInbox.consumer == "rig.flaky")).one()
        assert (entry.status, entry.attempts) == ("pending", 1)
        assert entry.next_attempt_at > clock.now()
    # when nothing is due, nothing runs
    assert worker.drain() == 0


# --- two worker processes, kill -9, PostgreSQL -----------------------------------------------------------


def _start_worker(url: str, worker_id: str, log: Any) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.consumer_rig", url, worker_id],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_two_workers_and_five_kill_9s_while_2000_events_flow_apply_each_exactly_once(
    rigged: None, session_factory: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    """PostgreSQL: two worker processes, five SIGKILLs mid-flow; the single-process version runs on
    SQLite (the first test, on both databases)."""
    if is_sqlite(db_url):
        pytest.skip("two worker processes with SKIP LOCKED: PostgreSQL (SQLite runs the single-process test)")
    log = open(tmp_path / "workers.log", "ab")  # noqa: SIM115
    workers = {name: _start_worker(db_url, name, log) for name in ("w1", "w2")}
    counters: dict[str, int] = {}
    resources = [f"res-{i}" for i in range(40)]
    rng = random.Random(10)
    kills = 0
    try:
        # when 2,000 events are published in 100 transactions while workers run and are killed 5 times
        for batch in range(100):
            rig.publish_batch(session_factory, counters, rng.sample(resources, 20))
            if batch % 20 == 10:
                victim = "w1" if kills % 2 == 0 else "w2"
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait(10)
                kills += 1
                workers[victim] = _start_worker(db_url, victim, log)
            time.sleep(0.02)
        assert kills == 5
        # the fragile consumer's res-13 parks; set the flag and retry it so everything can finish
        deadline = time.monotonic() + 120
        retried = False
        while time.monotonic() < deadline:
            with session_factory() as s:
                statuses = _statuses(s)
                parked = s.scalars(select(ConsumerInbox.seq).where(ConsumerInbox.status == "parked")).all()
            if parked and not retried:
                assert len(parked) == 1  # only the head of res-13, for the fragile consumer
                with session_factory() as s, s.begin():
                    s.execute(insert(rig.flag).values(id=1))
                with session_factory() as s:
                    consumers.retry(s, parked[0], actor="user:ops", reason="flag set")
                retried = True
            if statuses.get(("rig.fragile", "done"), 0) == 2000 and all(
                statuses.get((n, "done"), 0) == 2000 for n in rig.CONSUMERS
            ):
                break
            time.sleep(0.2)
    finally:
        for proc in workers.values():
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        log.close()
    # then every (event, consumer) pair was applied exactly once, in publish order per resource
    with session_factory() as s:
        assert retried
        assert {k: v for k, v in _statuses(s).items()} == {(n, "done"): 2000 for n in rig.CONSUMERS}
        _assert_ledger_exact(s, counters, rig.CONSUMERS)
        handlers = set(s.scalars(select(ConsumerInbox.handled_by).distinct()))
        assert {"w1", "w2"} <= handlers
