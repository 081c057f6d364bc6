"""Outbox delivery: POST committed events to hub subscribers, at least once, with retries and a record.

How a worker goes about it (any number of workers, threads or processes, may share one database):

1. **Claim** a few due deliveries in a short transaction: ``SELECT … FOR UPDATE SKIP LOCKED`` on
   PostgreSQL (SQLite serialises writers with ``BEGIN IMMEDIATE`` instead), then stamp them with a lease
   (``locked_by``/``locked_until``) and commit. No database lock is held while talking to subscribers,
   and a crashed worker's lease simply runs out.
2. **POST** the event payload (``eventId``, ``eventTime``, ``eventType``, ``event``) to the callback.
3. **Finish** in a second short transaction, *only if the lease is still ours*: the update is guarded on
   ``locked_by``, ``status='pending'`` and the attempt count seen at claim time, so a delivery is never
   marked delivered twice and each attempt number is recorded exactly once (``delivery_attempt`` is also
   unique on ``(delivery_id, attempt_no)``). 2xx means delivered; anything else is a failed attempt that
   is retried after ``min(base * 2**(failures-1), cap)`` seconds until ``delivery_max_attempts`` failures,
   when the delivery becomes ``failed`` (a dead letter, visible and re-deliverable).

Callbacks to loopback, private and other non-public addresses are refused at connect time (unless allowed
by ``TURNUP_WEBHOOK_ALLOWED_NETWORKS``) and every POST is signed (``X-Turnup-Timestamp``,
``X-Turnup-Signature``): see ``turnup.kernel.webhooks``.

Subscribers may see an event more than once (a worker can die after the POST and before step 3); the
``eventId`` in the body and the ``X-Turnup-Event-Id`` header let them de-duplicate.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import structlog
from prometheus_client import Counter
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from turnup import __version__
from turnup.kernel import audit, clock, webhooks
from turnup.kernel.db import rowcount
from turnup.kernel.errors import Conflict, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import DeliveryAttempt, EventDelivery, HubSubscription, OutboxEvent
from turnup.kernel.settings import Settings

log = structlog.get_logger(__name__)

ATTEMPTS = Counter("turnup_event_delivery_attempts", "Outbox delivery attempts by outcome", ["outcome"])

EVENT_ID_HEADER = "X-Turnup-Event-Id"
ATTEMPT_HEADER = "X-Turnup-Delivery-Attempt"
DELIVERY_ID_HEADER = "X-Turnup-Delivery-Id"
EVENT_TYPE_HEADER = "X-Turnup-Event-Type"

MAX_ERROR_BODY = 300  # characters of a failing response body kept in the attempt's error
MAX_SEEN_PER_RUN = 5000  # run_once stops after this many deliveries; run_forever simply calls it again


@dataclass(frozen=True)
class Claim:
    """A delivery leased to this worker, with everything needed to POST it."""

    delivery_id: str
    subscription_id: str
    event_id: str
    event_type: str
    callback: str
    payload: dict[str, Any]
    prior_attempts: int
    requeued_after: int
    leased_until: datetime

    @property
    def attempt_no(self) -> int:
        return self.prior_attempts + 1


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


def backoff(settings: Settings, failures: int) -> timedelta:
    """Delay before the next attempt after ``failures`` consecutive failed attempts (>= 1)."""
    seconds = settings.delivery_backoff_base_seconds * 2 ** max(failures - 1, 0)
    return timedelta(seconds=min(seconds, settings.delivery_backoff_cap_seconds))


def _default_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid4().hex[:8]}"


class DeliveryWorker:
    """Delivers due ``EventDelivery`` rows. ``run_once`` for tests and tools, ``run_forever`` for daemons."""

    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        settings: Settings,
        *,
        http_client: httpx.Client | None = None,
        worker_id: str | None = None,
        batch_size: int = 5,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.worker_id = (worker_id or _default_worker_id())[:64]
        self.batch_size = max(batch_size, 1)
        self.allowed_networks = webhooks.parse_networks(settings.webhook_allowed_networks)
        self._signing_key = webhooks.signing_key(settings.webhook_signing_key)
        self._owns_client = http_client is None
        # The default client connects only to addresses it has checked (no SSRF, no DNS rebinding); an
        # injected client gets the same check before each POST (without the pinning).
        self._check_before_post = http_client is not None
        self._client = http_client or webhooks.guarded_client(
            self.allowed_networks,
            timeout=settings.delivery_timeout_seconds,
            headers={"User-Agent": f"turnup-outbox/{__version__}"},
        )
        self._stop: threading.Event | None = None

    # -- leases ---------------------------------------------------------------------------------------

    @property
    def per_item_lease(self) -> timedelta:
        """Time one POST may take, generously: connect and read timeouts plus slack."""
        return timedelta(seconds=2 * self.settings.delivery_timeout_seconds + 5)

    def claim(self, exclude: Iterable[str] = ()) -> list[Claim]:
        """Lease up to ``batch_size`` due deliveries to this worker (short transaction, then no locks)."""
        now = clock.now()
        excluded = list(exclude)
        with self.sessionmaker() as session, session.begin():
            stmt = (
                select(EventDelivery.id)
                .where(
                    EventDelivery.status == "pending",
                    EventDelivery.next_attempt_at <= now,
                    or_(EventDelivery.locked_until.is_(None), EventDelivery.locked_until <= now),
                )
                .order_by(EventDelivery.next_attempt_at, EventDelivery.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)  # rendered on PostgreSQL; SQLite holds BEGIN IMMEDIATE
            )
            if excluded:
                stmt = stmt.where(EventDelivery.id.not_in(excluded))
            ids = list(session.scalars(stmt))
            if not ids:
                return []
            until = now + self.per_item_lease * len(ids)
            session.execute(
                update(EventDelivery)
                .where(EventDelivery.id.in_(ids))
                .values(locked_by=self.worker_id, locked_until=until)
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(
                select(
                    EventDelivery.id,
                    EventDelivery.subscription_id,
                    EventDelivery.attempts,
                    EventDelivery.requeued_after,
                    OutboxEvent.id,
                    OutboxEvent.event_type,
                    OutboxEvent.payload,
                    HubSubscription.callback,
                )
                .join(OutboxEvent, OutboxEvent.id == EventDelivery.event_id)
                .join(HubSubscription, HubSubscription.id == EventDelivery.subscription_id)
                .where(EventDelivery.id.in_(ids))
            ).all()
        by_id = {
            r[0]: Claim(
                delivery_id=r[0],
                subscription_id=r[1],
                prior_attempts=r[2],
                requeued_after=r[3],
                event_id=r[4],
                event_type=r[5],
                payload=r[6],
                callback=r[7],
                leased_until=until,
            )
            for r in rows
        }
        return [by_id[i] for i in ids if i in by_id]

    def release(self, claims: Sequence[Claim]) -> None:
        """Give back leases this worker will not use (on stop)."""
        if not claims:
            return
        with self.sessionmaker() as session, session.begin():
            session.execute(
                update(EventDelivery)
                .where(
                    EventDelivery.id.in_([c.delivery_id for c in claims]),
                    EventDelivery.locked_by == self.worker_id,
                )
                .values(locked_by=None, locked_until=None)
                .execution_options(synchronize_session=False)
            )

    # -- the POST -------------------------------------------------------------------------------------

    def post(self, claim: Claim) -> Outcome:
        """POST the event to the subscriber; never raises."""
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: claim.event_id,
            EVENT_TYPE_HEADER: claim.event_type,
            DELIVERY_ID_HEADER: claim.delivery_id,
            ATTEMPT_HEADER: str(claim.attempt_no),
        }
        body = json.dumps(claim.payload, separators=(",", ":")).encode()
        timestamp = int(clock.now().timestamp())
        secret = webhooks.subscription_secret(self._signing_key, claim.subscription_id)
        headers[webhooks.TIMESTAMP_HEADER] = str(timestamp)
        headers[webhooks.SIGNATURE_HEADER] = webhooks.signature(secret, timestamp, body)
        timeout = self.settings.delivery_timeout_seconds
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            if self._check_before_post:
                webhooks.check_callback(claim.callback, self.allowed_networks, unresolved_ok=True)
            with self._client.stream(
                "POST", claim.callback, content=body, headers=headers, timeout=timeout
            ) as response:
                status = response.status_code
                if not 200 <= status < 300:
                    snippet = _read_some(response)
                    error = f"HTTP {status}" + (f": {snippet}" if snippet else "")
        except httpx.TimeoutException as exc:
            error = f"timeout after {timeout:g}s ({type(exc).__name__})"
        except httpx.ConnectError as exc:
            error = f"connection failed: {exc}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except webhooks.CallbackRefused as exc:
            error = f"connection failed: {exc}"
        except Exception as exc:  # a bad callback must not kill the worker
            error = f"{type(exc).__name__}: {exc}"
        duration_ms = int((time.monotonic() - started) * 1000)
        return Outcome(ok=error is None, status_code=status, error=error, duration_ms=duration_ms)

    # -- recording the outcome ------------------------------------------------------------------------

    def finish(self, claim: Claim, outcome: Outcome) -> bool:
        """Record the attempt and move the delivery on, if this worker still holds the lease."""
        now = clock.now()
        attempts = claim.attempt_no
        failures = attempts - claim.requeued_after
        values: dict[str, Any] = {"attempts": attempts, "locked_by": None, "locked_until": None}
        if outcome.ok:
            values.update(status="delivered", delivered_at=now, last_error=None)
            result = "delivered"
        elif failures >= self.settings.delivery_max_attempts:
            values.update(status="failed", last_error=outcome.error)
            result = "failed"
        else:
            values.update(next_attempt_at=now + backoff(self.settings, failures), last_error=outcome.error)
            result = "retry"
        with self.sessionmaker() as session, session.begin():
            changed = rowcount(
                session.execute(
                    update(EventDelivery)
                    .where(
                        EventDelivery.id == claim.delivery_id,
                        EventDelivery.locked_by == self.worker_id,
                        EventDelivery.status == "pending",
                        EventDelivery.attempts == claim.prior_attempts,
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
            )
            if changed != 1:
                # Lease lost (expired and re-claimed) or the subscription was deleted meanwhile.
                log.warning(
                    "delivery_outcome_discarded",
                    delivery_id=claim.delivery_id,
                    event_id=claim.event_id,
                    worker=self.worker_id,
                    ok=outcome.ok,
                )
                return False
            session.add(
                DeliveryAttempt(
                    id=new_id(),
                    delivery_id=claim.delivery_id,
                    attempt_no=attempts,
                    at=now,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                    worker=self.worker_id,
                )
            )
        ATTEMPTS.labels(outcome=result).inc()
        log.info(
            "delivery_attempt",
            delivery_id=claim.delivery_id,
            event_id=claim.event_id,
            event_type=claim.event_type,
            attempt=attempts,
            outcome=result,
            status_code=outcome.status_code,
            error=outcome.error,
        )
        return True

    # -- loops ----------------------------------------------------------------------------------------

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def run_once(self) -> int:
        """Attempt every delivery due now, each at most once; return the number of attempts recorded."""
        made = 0
        seen: set[str] = set()
        while not self._stopping() and len(seen) < MAX_SEEN_PER_RUN:
            claims = self.claim(exclude=seen)
            if not claims:
                break
            for index, claim in enumerate(claims):
                # Earlier POSTs of this batch may have been slow: never start one the lease cannot cover.
                if self._stopping() or (index and clock.now() + self.per_item_lease > claim.leased_until):
                    self.release(claims[index:])
                    return made
                seen.add(claim.delivery_id)
                if self.finish(claim, self.post(claim)):
                    made += 1
        return made

    def run_forever(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set, sleeping ``worker_poll_seconds`` whenever nothing was due."""
        self._stop = stop
        log.info("delivery_worker_started", worker=self.worker_id)
        try:
            while not stop.is_set():
                try:
                    made = self.run_once()
                except Exception:  # database down or busy: keep the worker alive and retry later
                    log.exception("delivery_worker_error", worker=self.worker_id)
                    made = 0
                if made == 0:
                    stop.wait(self.settings.worker_poll_seconds)
        finally:
            self.close()
            log.info("delivery_worker_stopped", worker=self.worker_id)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


def _read_some(response: httpx.Response) -> str:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass
    return b"".join(chunks)[:MAX_ERROR_BODY].decode("utf-8", "replace").strip()


def redeliver(
    session: Session, delivery_id: str, actor: str, *, subscription_id: str | None = None
) -> EventDelivery:
    """Requeue a ``failed`` delivery with a fresh retry budget (audited); commits."""
    delivery = session.scalars(
        select(EventDelivery)
        .where(EventDelivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if delivery is None or (subscription_id is not None and delivery.subscription_id != subscription_id):
        raise NotFound(f"delivery {delivery_id!r} not found")
    if delivery.status != "failed":
        raise Conflict(
            f"status: only failed deliveries can be redelivered; this one is {delivery.status}",
            reason="Illegal state transition",
        )
    delivery.status = "pending"
    delivery.next_attempt_at = clock.now()
    delivery.requeued_after = delivery.attempts
    delivery.locked_by = None
    delivery.locked_until = None
    audit.record(
        session,
        actor=actor,
        action="hub.redeliver",
        resource_type="eventDelivery",
        resource_id=delivery.id,
        details={
            "eventId": delivery.event_id,
            "subscriptionId": delivery.subscription_id,
            "attempts": delivery.attempts,
        },
    )
    session.commit()
    return delivery
