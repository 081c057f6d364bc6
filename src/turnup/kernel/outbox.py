"""Transactional outbox: events are rows written in the same transaction as the change they describe.

``publish`` stores the event and, in that same transaction, one ``EventDelivery`` per hub subscription
whose query matches and one ``ConsumerInbox`` row per internal consumer of the event type
(``turnup.kernel.consumers``). A delivery worker (``turnup.kernel.delivery``) POSTs them after commit, so a
rolled back change never notifies anybody and a committed one always does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, insert, select
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column, relationship

from turnup.kernel import clock, consumers
from turnup.kernel.db import Base, JSONDoc, UTCDateTime, table_of
from turnup.kernel.ids import new_id


class HubSubscription(Base):
    """A listener registered through ``POST /tmf-api/<api>/v4/hub``."""

    __tablename__ = "hub_subscription"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    api: Mapped[str] = mapped_column(String(100), index=True)
    callback: Mapped[str] = mapped_column(String(2000))
    query: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxEvent(Base):
    __tablename__ = "outbox_event"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)  # the TMF eventId
    api: Mapped[str] = mapped_column(String(100), index=True)
    event_type: Mapped[str] = mapped_column(String(200), index=True)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    resource_type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc)


class EventDelivery(Base):
    """One event owed to one subscriber; retried with backoff until delivered or given up.

    A worker claims a due delivery by setting ``locked_by``/``locked_until`` (a lease) in a short
    transaction, POSTs without holding any database lock, then records the outcome only if it still holds
    the lease. A crashed worker's lease simply expires. ``requeued_after`` is the number of attempts made
    before the last manual redeliver: the retry budget and backoff count only the attempts since then.
    """

    __tablename__ = "event_delivery"
    __table_args__ = (Index("ix_event_delivery_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_event.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("hub_subscription.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    requeued_after: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    event: Mapped[OutboxEvent] = relationship(viewonly=True, lazy="select")
    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(
        viewonly=True, lazy="select", order_by="DeliveryAttempt.attempt_no"
    )


class DeliveryAttempt(Base):
    """The record of each POST made for a delivery, successful or not (one row per attempt number)."""

    __tablename__ = "delivery_attempt"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt_no"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("event_delivery.id", ondelete="CASCADE"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)  # which worker made it


def subscription_matches(
    query: str | None, event_type: str, resource: dict[str, Any], resource_type: str | None = None
) -> bool:
    """TMF hub query: ``eventType=A,B&field=value``; each term must match, commas mean OR.

    A field may be written as in the event body (``event.customer.status``) or relative to the resource
    (``event.status`` or ``status``).
    """
    if not query:
        return True
    for key, value in parse_qsl(query, keep_blank_values=True):
        wanted = {v.strip() for v in value.split(",")}
        if key == "eventType":
            actual: Any = event_type
        else:
            parts = key.removeprefix("event.").split(".")
            if resource_type and len(parts) > 1 and parts[0] == resource_type:
                parts = parts[1:]
            actual = resource
            for part in parts:
                actual = actual.get(part) if isinstance(actual, dict) else None
        if str(actual) not in wanted:
            return False
    return True


def publish(
    session: Session,
    *,
    api: str,
    event_type: str,
    resource_type: str,
    resource: dict[str, Any],
) -> OutboxEvent:
    """Write an event (and its deliveries) into the caller's transaction.

    ``resource_type`` is the TMF name used as the key inside ``event`` (e.g. ``productOffering``).
    """
    at = clock.now()
    event_id = new_id()
    payload = {
        "eventId": event_id,
        "eventTime": at.isoformat().replace("+00:00", "Z"),
        "eventType": event_type,
        "event": {resource_type: resource},
    }
    values: dict[str, Any] = {
        "id": event_id,
        "api": api,
        "event_type": event_type,
        "event_time": at,
        "resource_type": resource_type,
        "resource_id": str(resource.get("id", "")),
        "payload": payload,
    }
    # Core INSERTs, run at once in the caller's transaction, in foreign-key order (event, then what refers
    # to it): no unit-of-work flush per event, and nothing else of the caller's is flushed early.
    session.execute(insert(table_of(OutboxEvent)), values)
    consumers.record_owed(
        session,
        event_id=event_id,
        event_type=event_type,
        resource_type=resource_type,
        resource_id=values["resource_id"],
        at=at,
    )
    deliveries = [
        {
            "id": new_id(),
            "event_id": event_id,
            "subscription_id": sub_id,
            "status": "pending",
            "attempts": 0,
            "requeued_after": 0,
            "next_attempt_at": at,
        }
        for sub_id, query in _subscriptions(session, api)
        if subscription_matches(query, event_type, resource, resource_type)
    ]
    if deliveries:
        session.execute(insert(table_of(EventDelivery)), deliveries)
    return OutboxEvent(**values)  # a detached copy of the row written, for the caller's information


_HUB_CACHE = "turnup.hub_subscriptions"


_Subscriptions = list[tuple[str, str | None]]


def _subscriptions(session: Session, api: str) -> _Subscriptions:
    """The API's hub subscriptions. All APIs' subscriptions are read once per transaction, in one query: a
    use case often publishes several events, on several APIs (an order step: productOrder, serviceOrder,
    service and the internal delivery API)."""
    transaction = session.get_transaction()
    cached: tuple[SessionTransaction | None, dict[str, _Subscriptions]] | None = session.info.get(_HUB_CACHE)
    if cached is None or cached[0] is not transaction:
        by_api: dict[str, _Subscriptions] = {}
        rows = session.execute(
            select(HubSubscription.api, HubSubscription.id, HubSubscription.query).order_by(
                HubSubscription.created_at, HubSubscription.id
            )
        )
        for sub_api, sub_id, query in rows:
            by_api.setdefault(sub_api, []).append((sub_id, query))
        cached = (transaction, by_api)
        session.info[_HUB_CACHE] = cached
    return cached[1].get(api, [])
