"""Durable in-process event consumers: how one feature reacts to another's events.

A feature declares a consumer of named events::

    @consumer("billing.charges", events=["ServiceStateChangeEvent"])
    def start_charge(session: Session, event: Event) -> None: ...

``turnup.kernel.outbox.publish`` (already inside the changing transaction) writes one ``consumer_inbox``
row for every registered consumer interested in the event type: what that consumer owes. A worker
(``ConsumerWorker``) then runs each handler inside a transaction that also marks its row ``done``, so an
(event, consumer) pair is applied exactly once whatever happens to the worker: a killed worker's
transaction rolls back and the row is still ``pending`` for the next one.

Handlers receive the worker's session: they read and write through it, may ``publish`` further events,
and never commit. They run in ``turnup serve`` and in every ``turnup orchestrator run`` worker; the
composition root (``turnup.wiring.wire``) imports every feature's consumers before any of that starts.

Order and failure. Rows carry a global ``seq`` (assigned at publish, so for one resource it follows the
order of the transactions that changed it: they hold the resource's row lock while publishing). A worker
only takes the *head* of each (consumer, resource): a row with no earlier ``pending`` or ``parked`` row of
the same consumer and resource. So events of one resource reach a consumer in publish order; a failing
handler is retried with backoff (``consumer_backoff_*`` settings) and after the consumer's
``max_attempts`` its row is ``parked``, which blocks that consumer for that resource only, never other
resources or other consumers. An operator sees lag and parked rows (API ``/tmf-api/turnupEvents/v1``,
CLI ``turnup events consumers|parked|retry|skip``) and retries or skips one with a reason (audited).

How a batch runs. ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers with
``BEGIN IMMEDIATE``) takes up to ``consumer_batch_size`` heads; each handler runs in a savepoint of that
one transaction, and the batch commits the handlers' writes together with the ``done`` marks (and the
failure records of the handlers that raised, whose writes were rolled back to their savepoint). Two
workers never take the same row (row locks), nor two rows of one resource and consumer (head rule). If
the commit itself fails, the worker retries those rows one per transaction, where a commit failure is
that handler's failure.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import structlog
from prometheus_client import Counter
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, sessionmaker

from turnup.kernel import audit, clock, housekeeping
from turnup.kernel.db import Base, UTCDateTime, table_of
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.settings import Settings, get_settings

log = structlog.get_logger(__name__)

HANDLED = Counter(
    "turnup_consumer_events", "Consumer event handling by consumer and outcome", ["consumer", "outcome"]
)

PENDING, DONE, PARKED, SKIPPED = "pending", "done", "parked", "skipped"
STATUSES = (PENDING, DONE, PARKED, SKIPPED)
MAX_ERROR = 2000


class ConsumerInbox(Base):
    """What one consumer owes for one event: written by ``publish``, marked done by the handler's txn."""

    __tablename__ = "consumer_inbox"
    __table_args__ = (
        UniqueConstraint("event_id", "consumer", name="uq_consumer_inbox_event_consumer"),
        Index("ix_consumer_inbox_status_seq", "status", "seq"),
        Index("ix_consumer_inbox_key", "consumer", "resource_key", "seq"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_event.id", ondelete="CASCADE"), index=True)
    consumer: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(200))
    resource_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # since the last manual retry
    total_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    handled_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)  # the operator's reason for a skip/retry


@dataclass(frozen=True)
class Event:
    """One published event as a consumer sees it."""

    id: str
    api: str
    event_type: str
    event_time: datetime
    resource_type: str
    resource_id: str
    payload: dict[str, Any]
    attempt: int = 1  # 1 on the first try; retries (after a failure or a manual retry) count up

    @property
    def resource(self) -> dict[str, Any]:
        """The resource as it was rendered when the event was published."""
        body = self.payload.get("event") or {}
        value = body.get(self.resource_type) if isinstance(body, dict) else None
        return value if isinstance(value, dict) else {}


Handler = Callable[[Session, Event], None]


@dataclass(frozen=True)
class Consumer:
    name: str
    events: frozenset[str]
    handler: Handler
    max_attempts: int = 5
    description: str = field(default="")


_REGISTRY: dict[str, Consumer] = {}
_BY_EVENT: dict[str, tuple[str, ...]] = {}


def consumer(name: str, *, events: Iterable[str], max_attempts: int = 5) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the consumer ``name`` of ``events`` (event type names, e.g.
    ``ServiceStateChangeEvent``). ``max_attempts`` failures park an event (it then blocks only this
    consumer for that resource until an operator retries or skips it)."""

    def add(handler: Handler) -> Handler:
        register(
            Consumer(
                name=name,
                events=frozenset(events),
                handler=handler,
                max_attempts=max_attempts,
                description=(handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else "",
            )
        )
        return handler

    return add


def register(spec: Consumer) -> None:
    """Add (or replace, for the same handler re-imported) a consumer."""
    if not spec.name or len(spec.name) > 100:
        raise ValueError("a consumer needs a name of 1-100 characters")
    if not spec.events:
        raise ValueError(f"consumer {spec.name!r} consumes no events")
    _REGISTRY[spec.name] = spec
    _rebuild()


def unregister(name: str) -> None:
    """Remove a consumer (tests and benchmarks register temporary ones)."""
    _REGISTRY.pop(name, None)
    _rebuild()


def _rebuild() -> None:
    by_event: dict[str, list[str]] = {}
    for spec in sorted(_REGISTRY.values(), key=lambda c: c.name):
        for event_type in spec.events:
            by_event.setdefault(event_type, []).append(spec.name)
    _BY_EVENT.clear()
    _BY_EVENT.update({k: tuple(v) for k, v in by_event.items()})


def interested(event_type: str) -> tuple[str, ...]:
    """Names of the registered consumers of ``event_type``."""
    return _BY_EVENT.get(event_type, ())


def registered() -> dict[str, Consumer]:
    return dict(_REGISTRY)


def get(name: str) -> Consumer | None:
    return _REGISTRY.get(name)


_wired: list[bool] = [False]


def mark_wired() -> None:
    """Called by the composition root once every feature's consumers are registered."""
    _wired[0] = True


def is_wired() -> bool:
    return _wired[0]


# --- publishing side -----------------------------------------------------------------------------------


def resource_key(resource_type: str, resource_id: str) -> str:
    return f"{resource_type}/{resource_id}"[:200]


def record_owed(
    session: Session, *, event_id: str, event_type: str, resource_type: str, resource_id: str, at: datetime
) -> int:
    """Add one inbox row per interested consumer to the caller's transaction (called by ``publish``)."""
    names = interested(event_type)
    if not names:
        if not is_wired():
            raise RuntimeError(
                "event consumers are not wired in this process: call turnup.wiring.wire() at start-up"
            )
        return 0
    key = resource_key(resource_type, resource_id)
    session.execute(  # a Core INSERT, run at once: the event row it refers to was written just before
        insert(table_of(ConsumerInbox)),
        [
            {
                "event_id": event_id,
                "consumer": name,
                "event_type": event_type,
                "resource_key": key,
                "status": PENDING,
                "attempts": 0,
                "total_attempts": 0,
                "created_at": at,
                "next_attempt_at": at,
            }
            for name in names
        ],
    )
    return len(names)


# --- the worker ----------------------------------------------------------------------------------------


def backoff(settings: Settings, failures: int) -> timedelta:
    """Delay before the next attempt after ``failures`` consecutive failures (>= 1)."""
    seconds = settings.consumer_backoff_base_seconds * 2 ** max(failures - 1, 0)
    return timedelta(seconds=min(seconds, settings.consumer_backoff_cap_seconds))


def _default_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid4().hex[:8]}"


@dataclass(frozen=True)
class _Claimed:
    seq: int
    consumer: str
    attempts: int
    event: Event


@dataclass
class BatchResult:
    done: int = 0
    failed: int = 0
    parked: int = 0

    @property
    def handled(self) -> int:
        return self.done + self.failed


class ConsumerWorker:
    """Runs due consumer handlers. ``run_once``/``drain`` for tests and tools, ``run_forever`` for daemons."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings | None = None,
        *,
        worker_id: str | None = None,
        batch_size: int | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings or get_settings()
        self.worker_id = (worker_id or _default_worker_id())[:64]
        self.batch_size = max(batch_size or self.settings.consumer_batch_size, 1)
        self._names = tuple(names) if names is not None else None
        self._solo = 0  # rounds left in one-row-per-transaction mode after a failed batch commit
        self._last_claimed: list[_Claimed] = []  # what the latest batch claimed (to charge a failed commit)

    def names(self) -> tuple[str, ...]:
        """The consumers this worker runs: those given, else every consumer registered in this process."""
        return self._names if self._names is not None else tuple(sorted(_REGISTRY))

    def _claim(self, session: Session, limit: int) -> list[_Claimed]:
        # the outbox table by name: turnup.kernel.outbox imports this module (publish records what is owed)
        events = Base.metadata.tables["outbox_event"].c
        names = [n for n in self.names() if n in _REGISTRY]
        if not names:
            return []
        now = clock.now()
        earlier = aliased(ConsumerInbox)
        blocked = exists().where(
            earlier.consumer == ConsumerInbox.consumer,
            earlier.resource_key == ConsumerInbox.resource_key,
            earlier.seq < ConsumerInbox.seq,
            earlier.status.in_((PENDING, PARKED)),
        )
        stmt = (
            select(
                ConsumerInbox.seq,
                ConsumerInbox.consumer,
                ConsumerInbox.attempts,
                events.id,
                events.api,
                events.event_type,
                events.event_time,
                events.resource_type,
                events.resource_id,
                events.payload,
            )
            .join_from(
                ConsumerInbox, Base.metadata.tables["outbox_event"], events.id == ConsumerInbox.event_id
            )
            .where(
                ConsumerInbox.status == PENDING,
                ConsumerInbox.next_attempt_at <= now,
                ConsumerInbox.consumer.in_(names),
                ~blocked,
            )
            .order_by(ConsumerInbox.seq)
            .limit(limit)
            .with_for_update(of=ConsumerInbox, skip_locked=True)
        )
        return [
            _Claimed(
                seq=r[0],
                consumer=r[1],
                attempts=r[2],
                event=Event(
                    id=r[3],
                    api=r[4],
                    event_type=r[5],
                    event_time=r[6],
                    resource_type=r[7],
                    resource_id=r[8],
                    payload=r[9],
                    attempt=r[2] + 1,
                ),
            )
            for r in session.execute(stmt)
        ]

    def _failure_values(self, row: _Claimed, error: str, now: datetime) -> dict[str, Any]:
        spec = _REGISTRY.get(row.consumer)
        attempts = row.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "total_attempts": ConsumerInbox.total_attempts + 1,
            "last_error": error[:MAX_ERROR],
            "handled_by": self.worker_id,
        }
        if attempts >= (spec.max_attempts if spec else 1):
            values["status"] = PARKED
        else:
            values["next_attempt_at"] = now + backoff(self.settings, attempts)
        return values

    def _record_failure(self, session: Session, row: _Claimed, error: str, now: datetime) -> bool:
        """Charge a failed attempt to the row (backoff, or parked at the budget); True when parked."""
        values = self._failure_values(row, error, now)
        session.execute(
            update(ConsumerInbox)
            .where(ConsumerInbox.seq == row.seq)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        parked = values.get("status") == PARKED
        (log.warning if parked else log.info)(
            "consumer_event_parked" if parked else "consumer_event_failed",
            consumer=row.consumer,
            seq=row.seq,
            event_id=row.event.id,
            error=error,
        )
        return parked

    def _run_batch(self, limit: int) -> BatchResult:
        result = BatchResult()
        with self.factory() as session, session.begin():
            claimed = self._claim(session, limit)
            self._last_claimed = claimed
            if not claimed:
                return result
            done: list[int] = []
            failures: list[tuple[_Claimed, str]] = []
            processed: list[_Claimed] = []
            started = time.monotonic()
            for row in claimed:
                # a batch commits within its time budget, so that its first events do not wait for its last
                if processed and time.monotonic() - started > self.settings.consumer_batch_seconds:
                    break  # the rows not reached stay pending; the commit releases their locks
                processed.append(row)
                spec = _REGISTRY[row.consumer]
                savepoint = session.begin_nested()
                try:
                    spec.handler(session, row.event)
                    savepoint.commit()
                    done.append(row.seq)
                except Exception as exc:
                    savepoint.rollback()
                    failures.append((row, f"{type(exc).__name__}: {exc}"))
            now = clock.now()
            if done:
                session.execute(
                    update(ConsumerInbox)
                    .where(ConsumerInbox.seq.in_(done))
                    .values(
                        status=DONE,
                        done_at=now,
                        handled_by=self.worker_id,
                        last_error=None,
                        attempts=ConsumerInbox.attempts + 1,
                        total_attempts=ConsumerInbox.total_attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
            for row, error in failures:
                result.parked += self._record_failure(session, row, error, now)
            result.done, result.failed = len(done), len(failures)
        by_consumer: dict[tuple[str, str], int] = {}
        done_seqs = set(done)
        for row in processed:
            outcome = "done" if row.seq in done_seqs else "failed"
            by_consumer[(row.consumer, outcome)] = by_consumer.get((row.consumer, outcome), 0) + 1
        for (name, outcome), count in by_consumer.items():
            HANDLED.labels(consumer=name, outcome=outcome).inc(count)
        return result

    def _run_solo(self) -> BatchResult:
        """One row in one transaction; a failure of the commit itself is charged to that row's handler."""
        self._last_claimed = []
        try:
            return self._run_batch(1)
        except Exception as exc:
            if not self._last_claimed:
                raise
            failed = self._last_claimed[0]
            with self.factory() as session, session.begin():
                attempts = session.scalar(  # the same row, unless another worker has it or it moved on
                    select(ConsumerInbox.attempts)
                    .where(ConsumerInbox.seq == failed.seq, ConsumerInbox.status == PENDING)
                    .with_for_update(skip_locked=True)
                )
                if attempts is None:
                    return BatchResult()
                row = replace(failed, attempts=attempts)
                parked = self._record_failure(session, row, f"{type(exc).__name__}: {exc}", clock.now())
            return BatchResult(failed=1, parked=int(parked))

    def run_once(self) -> BatchResult:
        """Handle one batch of due heads (or one row after a failed batch commit)."""
        if self._solo > 0:
            self._solo -= 1
            return self._run_solo()
        try:
            return self._run_batch(self.batch_size)
        except Exception:
            log.exception("consumer_batch_failed", worker=self.worker_id)
            self._solo = self.batch_size
            return BatchResult()

    def drain(self, max_batches: int = 10_000) -> int:
        """Run batches until nothing is due; return how many handler runs were made (done + failed)."""
        total = 0
        for _ in range(max_batches):
            result = self.run_once()
            if result.handled == 0 and self._solo == 0:
                break
            total += result.handled
        return total

    def run_forever(self, stop: threading.Event) -> None:
        """Handle events until ``stop`` is set, sleeping ``consumer_poll_seconds`` when nothing was due."""
        log.info("consumer_worker_started", worker=self.worker_id, consumers=list(self.names()))
        while not stop.is_set():
            try:
                handled = self.run_once().handled
            except Exception:  # database down or busy: keep the worker alive and retry later
                log.exception("consumer_worker_error", worker=self.worker_id)
                handled = 0
            if handled == 0 and self._solo == 0:
                stop.wait(self.settings.consumer_poll_seconds)
        log.info("consumer_worker_stopped", worker=self.worker_id)


def start_worker_thread(
    factory: sessionmaker[Session], settings: Settings | None = None, *, worker_id: str | None = None
) -> Callable[[], None]:
    """Run a ``ConsumerWorker`` in a daemon thread; returns a function that stops it (and waits)."""
    stop = threading.Event()
    worker = ConsumerWorker(factory, settings, worker_id=worker_id)
    thread = threading.Thread(target=worker.run_forever, args=(stop,), name="turnup-consumers", daemon=True)
    thread.start()

    def halt(timeout: float = 10.0) -> None:
        stop.set()
        thread.join(timeout)

    return halt


# --- pruning ----------------------------------------------------------------------------------------------

PRUNE_BATCH = 5000


@housekeeping.register("consumer_inbox.prune")
def prune_handled(session: Session, settings: Settings | None = None) -> dict[str, int]:
    """Delete inbox rows handled (``done``) or skipped more than ``consumer_retention_days`` ago, in batches
    of ``PRUNE_BATCH`` rows, each batch committed. Pending and parked rows are never pruned: they are what
    consumers still owe. A sweep (``turnup housekeeping run``); retention 0 keeps everything."""
    settings = settings or get_settings()
    if settings.consumer_retention_days <= 0:
        return {"pruned": 0}
    before = clock.now() - timedelta(days=settings.consumer_retention_days)
    pruned = 0
    while True:
        seqs = session.scalars(
            select(ConsumerInbox.seq)
            .where(ConsumerInbox.status.in_((DONE, SKIPPED)), ConsumerInbox.done_at < before)
            .order_by(ConsumerInbox.seq)
            .limit(PRUNE_BATCH)
        ).all()
        if not seqs:
            break
        session.execute(delete(ConsumerInbox).where(ConsumerInbox.seq.in_(seqs)))
        session.commit()
        pruned += len(seqs)
        if len(seqs) < PRUNE_BATCH:
            break
    return {"pruned": pruned}


# --- operators' view -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsumerLag:
    name: str
    events: tuple[str, ...]
    max_attempts: int
    pending: int
    retrying: int  # pending rows that failed at least once
    parked: int
    oldest_pending_at: datetime | None

    def lag_seconds(self, now: datetime) -> float:
        return (now - self.oldest_pending_at).total_seconds() if self.oldest_pending_at else 0.0


def lag(session: Session) -> list[ConsumerLag]:
    """Per consumer (registered here, or with rows left in the inbox): what it still owes."""
    rows = session.execute(
        select(
            ConsumerInbox.consumer,
            ConsumerInbox.status,
            func.count(),
            func.min(ConsumerInbox.created_at),
            func.sum((ConsumerInbox.attempts > 0).cast(Integer)),
        )
        .where(ConsumerInbox.status.in_((PENDING, PARKED)))
        .group_by(ConsumerInbox.consumer, ConsumerInbox.status)
    ).all()
    stats: dict[str, dict[str, Any]] = {
        name: {"pending": 0, "parked": 0, "retrying": 0, "oldest": None} for name in _REGISTRY
    }
    for name, status, count, oldest, retrying in rows:
        entry = stats.setdefault(name, {"pending": 0, "parked": 0, "retrying": 0, "oldest": None})
        entry[status] = int(count)
        if status == PENDING:
            entry["oldest"] = oldest
            entry["retrying"] = int(retrying or 0)
    out = []
    for name in sorted(stats):
        spec = _REGISTRY.get(name)
        entry = stats[name]
        out.append(
            ConsumerLag(
                name=name,
                events=tuple(sorted(spec.events)) if spec else (),
                max_attempts=spec.max_attempts if spec else 0,
                pending=entry["pending"],
                retrying=entry["retrying"],
                parked=entry["parked"],
                oldest_pending_at=entry["oldest"],
            )
        )
    return out


def entries_select(
    *, consumer: str | None = None, status: str | None = None, resource: str | None = None
) -> Any:
    """The inbox rows to list, newest first (``status`` one of pending|done|parked|skipped)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    stmt = select(ConsumerInbox).order_by(ConsumerInbox.seq.desc())
    conditions = []
    if consumer:
        conditions.append(ConsumerInbox.consumer == consumer)
    if status:
        conditions.append(ConsumerInbox.status == status)
    if resource:
        conditions.append(ConsumerInbox.resource_key == resource)
    return stmt.where(and_(*conditions)) if conditions else stmt


def get_entry(session: Session, seq: int) -> ConsumerInbox:
    entry = session.get(ConsumerInbox, seq)
    if entry is None:
        raise NotFound(f"consumer event {seq} not found")
    return entry


def retry(session: Session, seq: int, *, actor: str, reason: str | None = None) -> ConsumerInbox:
    """Put a parked row back in the queue with a fresh retry budget (audited); commits."""
    entry = _lock_entry(session, seq)
    if entry.status != PARKED:
        raise Conflict(f"consumer event {seq} is {entry.status}; only a parked event can be retried")
    previous = entry.attempts
    entry.status, entry.attempts, entry.next_attempt_at = PENDING, 0, clock.now()
    entry.note = reason
    audit.record(
        session,
        actor=actor,
        action="consumerEvent.retry",
        resource_type="consumerEvent",
        resource_id=str(seq),
        details={
            "consumer": entry.consumer,
            "eventId": entry.event_id,
            "attemptsBefore": previous,
            "lastError": entry.last_error,
        },
        comment=reason,
    )
    session.commit()
    return entry


def skip(session: Session, seq: int, *, actor: str, reason: str) -> ConsumerInbox:
    """Give up on a parked (or pending) row so later events of its resource flow again (audited); commits."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: a reason is required to skip an event")
    entry = _lock_entry(session, seq)
    if entry.status not in (PARKED, PENDING):
        raise Conflict(
            f"consumer event {seq} is {entry.status}; only a parked or pending event can be skipped"
        )
    entry.status, entry.done_at, entry.note = SKIPPED, clock.now(), reason.strip()
    audit.record(
        session,
        actor=actor,
        action="consumerEvent.skip",
        resource_type="consumerEvent",
        resource_id=str(seq),
        details={"consumer": entry.consumer, "eventId": entry.event_id, "lastError": entry.last_error},
        comment=reason.strip(),
    )
    session.commit()
    return entry


def _lock_entry(session: Session, seq: int) -> ConsumerInbox:
    entry = session.scalars(
        select(ConsumerInbox).where(ConsumerInbox.seq == seq).with_for_update()
    ).one_or_none()
    if entry is None:
        raise NotFound(f"consumer event {seq} not found")
    return entry
