"""The outbox delivery worker against a real database and a real local HTTP subscriber.

Concurrency (several workers on one database), leases that outlive a crashed worker, stale results that
must not be recorded, timeouts and the run_forever loop. Time moves with ``clock.advance``; no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.fakes.subscriber import FakeSubscriber
from turnup.kernel import clock
from turnup.kernel.delivery import DeliveryWorker, Outcome, backoff
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import DeliveryAttempt, EventDelivery, HubSubscription, OutboxEvent, publish
from turnup.kernel.settings import Settings

API = "customerManagement"


@pytest.fixture
def subscriber() -> Iterator[FakeSubscriber]:
    with FakeSubscriber() as sub:
        yield sub


def _settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "run_worker": False,
        "delivery_backoff_base_seconds": 2.0,
        "delivery_backoff_cap_seconds": 600.0,
        "delivery_max_attempts": 30,
        "delivery_timeout_seconds": 5.0,
        "worker_poll_seconds": 0.05,
        "webhook_allowed_networks": "127.0.0.1/32",  # the fake subscriber's address
    }
    values.update(overrides)
    return Settings(**values)


def _subscribe(factory: sessionmaker[Session], callback: str, query: str | None = None) -> str:
    with factory() as s:
        sub = HubSubscription(id=new_id(), api=API, callback=callback, query=query, created_at=clock.now())
        s.add(sub)
        s.commit()
        return sub.id


def _publish(factory: sessionmaker[Session], count: int) -> list[str]:
    ids = []
    with factory() as s:
        for i in range(count):
            event = publish(
                s,
                api=API,
                event_type="CustomerCreateEvent",
                resource_type="customer",
                resource={"id": new_id(), "name": f"Customer {i}"},
            )
            ids.append(event.id)
        s.commit()
    return sorted(ids)


def _count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    settings = Settings(delivery_backoff_base_seconds=2, delivery_backoff_cap_seconds=60)
    assert [backoff(settings, n).total_seconds() for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize("workers", [2])
def test_concurrent_workers_deliver_each_event_exactly_once(
    workers: int, db_url: str, session_factory: sessionmaker[Session], subscriber: FakeSubscriber
) -> None:
    # Given 200 pending deliveries, each failing once at the subscriber before it is accepted
    clock.freeze(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
    subscriber.fail_first_per_event = 1
    _subscribe(session_factory, subscriber.url)
    published = _publish(session_factory, 200)
    settings = _settings(db_url)
    pool = [DeliveryWorker(session_factory, settings, worker_id=f"worker-{n}") for n in range(workers)]

    def run_all() -> list[int]:
        barrier = threading.Barrier(len(pool))
        results: list[int] = [0] * len(pool)
        errors: list[BaseException] = []

        def run(index: int) -> None:
            try:
                barrier.wait()
                results[index] = pool[index].run_once()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(pool))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        return results

    # When the workers run concurrently, then again after the backoff
    first = run_all()
    clock.advance(timedelta(seconds=2))
    second = run_all()
    third = run_all()

    # Then every delivery was attempted exactly twice in all, and each eventId accepted exactly once
    assert (sum(first), sum(second), sum(third)) == (200, 200, 0)
    assert sorted(subscriber.accepted) == published
    assert len(subscriber.accepted) == 200
    assert len(subscriber.received) == 400
    with session_factory() as s:
        pairs = s.execute(select(DeliveryAttempt.delivery_id, DeliveryAttempt.attempt_no)).all()
        statuses = s.execute(
            select(EventDelivery.status, EventDelivery.attempts, func.count()).group_by(
                EventDelivery.status, EventDelivery.attempts
            )
        ).all()
        leftover_leases = s.scalar(
            select(func.count()).select_from(EventDelivery).where(EventDelivery.locked_by.is_not(None))
        )
    assert len(pairs) == 400 and len(set(pairs)) == 400
    assert sorted(n for _, n in pairs) == [1] * 200 + [2] * 200
    assert [tuple(r) for r in statuses] == [("delivered", 2, 200)]
    assert leftover_leases == 0
    # each subscriber-side request carried the attempt number the database recorded for it
    assert sorted(r.attempt for r in subscriber.received) == [1] * 200 + [2] * 200


def test_crashed_workers_lease_expires_and_its_late_result_is_not_recorded(
    db_url: str, session_factory: sessionmaker[Session], subscriber: FakeSubscriber
) -> None:
    clock.freeze(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
    _subscribe(session_factory, subscriber.url)
    (event_id,) = _publish(session_factory, 1)
    settings = _settings(db_url)
    crashed = DeliveryWorker(session_factory, settings, worker_id="crashed")
    survivor = DeliveryWorker(session_factory, settings, worker_id="survivor")

    # Given a worker that claimed the delivery and then died before posting it
    (claim,) = crashed.claim()
    assert claim.event_id == event_id and claim.attempt_no == 1

    # Then another worker leaves it alone while the lease runs
    assert survivor.run_once() == 0
    clock.advance(crashed.per_item_lease - timedelta(seconds=1))
    assert survivor.run_once() == 0
    assert subscriber.received == []

    # When the lease has expired, the other worker delivers it
    clock.advance(timedelta(seconds=1))
    assert survivor.run_once() == 1
    assert subscriber.accepted == [event_id]

    # And if the "crashed" worker wakes up and reports an outcome, it is discarded
    assert crashed.finish(claim, Outcome(ok=True, status_code=200, error=None, duration_ms=1)) is False
    assert crashed.finish(claim, Outcome(ok=False, status_code=503, error="HTTP 503", duration_ms=1)) is False
    with session_factory() as s:
        delivery = s.scalars(select(EventDelivery)).one()
        attempts = s.execute(select(DeliveryAttempt.attempt_no, DeliveryAttempt.worker)).all()
    assert (delivery.status, delivery.attempts, delivery.locked_by) == ("delivered", 1, None)
    assert [tuple(a) for a in attempts] == [(1, "survivor")]


def test_delivered_is_never_recorded_twice_even_if_finish_is_repeated(
    db_url: str, session_factory: sessionmaker[Session], subscriber: FakeSubscriber
) -> None:
    _subscribe(session_factory, subscriber.url)
    _publish(session_factory, 1)
    worker = DeliveryWorker(session_factory, _settings(db_url), worker_id="w")
    (claim,) = worker.claim()
    outcome = worker.post(claim)
    assert outcome.ok and outcome.status_code == 200
    assert worker.finish(claim, outcome) is True
    assert worker.finish(claim, outcome) is False
    assert _count(session_factory, DeliveryAttempt) == 1
    with session_factory() as s:
        delivered = s.scalars(select(EventDelivery)).one()
    assert (delivered.status, delivered.attempts) == ("delivered", 1)


def test_timeout_is_a_failed_attempt_with_its_error(
    db_url: str, session_factory: sessionmaker[Session]
) -> None:
    with FakeSubscriber(delay_seconds=1.0) as slow:
        _subscribe(session_factory, slow.url)
        _publish(session_factory, 1)
        worker = DeliveryWorker(session_factory, _settings(db_url, delivery_timeout_seconds=0.1))
        assert worker.run_once() == 1
    with session_factory() as s:
        delivery = s.scalars(select(EventDelivery)).one()
        attempt = s.scalars(select(DeliveryAttempt)).one()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert attempt.status_code is None
    assert attempt.error is not None and attempt.error.startswith("timeout after 0.1s")
    assert delivery.last_error == attempt.error


def test_unreachable_and_non_2xx_callbacks_are_failed_attempts(
    db_url: str, session_factory: sessionmaker[Session], subscriber: FakeSubscriber
) -> None:
    clock.freeze(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
    subscriber.fail_always = True
    subscriber.fail_status = 302  # a redirect is not a delivery
    _subscribe(session_factory, subscriber.url)
    down = FakeSubscriber()  # never started: connection refused
    _subscribe(session_factory, down.url)
    _publish(session_factory, 1)
    worker = DeliveryWorker(session_factory, _settings(db_url))
    assert worker.run_once() == 2
    with session_factory() as s:
        errors = sorted(s.scalars(select(DeliveryAttempt.error)))
        next_at = set(s.scalars(select(EventDelivery.next_attempt_at)))
    assert errors[0].startswith("HTTP 302")
    assert errors[1].startswith("connection failed")
    assert next_at == {clock.now() + timedelta(seconds=2)}


def test_events_without_matching_subscriptions_owe_nothing(
    db_url: str, session_factory: sessionmaker[Session], subscriber: FakeSubscriber
) -> None:
    _subscribe(session_factory, subscriber.url, query="eventType=CustomerDeleteEvent")
    _publish(session_factory, 3)
    assert _count(session_factory, OutboxEvent) == 3
    assert _count(session_factory, EventDelivery) == 0
    assert DeliveryWorker(session_factory, _settings(db_url)).run_once() == 0
    assert subscriber.received == []


def test_run_forever_delivers_and_stops_when_asked(
    db_url: str, session_factory: sessionmaker[Session], subscriber: FakeSubscriber
) -> None:
    _subscribe(session_factory, subscriber.url)
    published = _publish(session_factory, 3)
    worker = DeliveryWorker(session_factory, _settings(db_url), worker_id="daemon")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    try:
        for _ in range(600):  # wait for the work to be done, not for a duration
            if len(subscriber.accepted) == 3:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert sorted(subscriber.accepted) == published
    with session_factory() as s:
        assert set(s.scalars(select(EventDelivery.status))) == {"delivered"}
