"""Durable event consumers over HTTP: lag per consumer, the inbox rows, and an operator's retry or skip."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.deps import get_session, requires
from turnup.api.tmf import list_resources, render_one
from turnup.kernel import clock, consumers
from turnup.kernel.consumers import ConsumerInbox
from turnup.kernel.errors import NotFound
from turnup.kernel.hrefs import api_base, href, iso
from turnup.kernel.text import InputModel
from turnup.security import Principal

API = "turnupEvents"
PATH = api_base(API)

router = APIRouter(tags=["event consumers"])


class OperatorDecision(InputModel):
    """Why an operator retries (optional) or skips (required) a consumer event."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)


def render_entry(entry: ConsumerInbox) -> dict[str, Any]:
    return {
        "id": str(entry.seq),
        "href": href(API, "consumerEvent", str(entry.seq)),
        "@type": "ConsumerEvent",
        "consumer": entry.consumer,
        "eventId": entry.event_id,
        "eventType": entry.event_type,
        "resourceKey": entry.resource_key,
        "status": entry.status,
        "attempts": entry.attempts,
        "totalAttempts": entry.total_attempts,
        "createdAt": iso(entry.created_at),
        "nextAttemptAt": iso(entry.next_attempt_at) if entry.status == consumers.PENDING else None,
        "doneAt": iso(entry.done_at),
        "lastError": entry.last_error,
        "handledBy": entry.handled_by,
        "note": entry.note,
    }


def _render_lag(lag: consumers.ConsumerLag, now: datetime) -> dict[str, Any]:
    return {
        "id": lag.name,
        "href": href(API, "consumer", lag.name),
        "@type": "EventConsumer",
        "name": lag.name,
        "events": list(lag.events),
        "maxAttempts": lag.max_attempts,
        "pending": lag.pending,
        "retrying": lag.retrying,
        "parked": lag.parked,
        "oldestPendingAt": iso(lag.oldest_pending_at),
        "lagSeconds": round(lag.lag_seconds(now), 3),
    }


@router.get(f"{PATH}/consumer")
def list_consumers(
    session: Session = Depends(get_session), _: Principal = requires("events:read")
) -> list[dict[str, Any]]:
    """Every consumer with what it still owes: pending (of which retrying), parked, and its lag."""
    now = clock.now()
    return [_render_lag(lag, now) for lag in consumers.lag(session)]


@router.get(f"{PATH}/consumer/{{name}}")
def get_consumer(
    name: str, session: Session = Depends(get_session), _: Principal = requires("events:read")
) -> dict[str, Any]:
    for lag in consumers.lag(session):
        if lag.name == name:
            return _render_lag(lag, clock.now())
    raise NotFound(f"consumer {name!r} not found")


@router.get(f"{PATH}/consumerEvent")
def list_consumer_events(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    _: Principal = requires("events:read"),
) -> list[dict[str, Any]]:
    """Inbox rows, newest first; filter with ``consumer=``, ``status=parked``, ``resourceKey=``…"""
    return list_resources(
        request,
        response,
        session,
        select(ConsumerInbox),
        {
            "consumer": ConsumerInbox.consumer,
            "status": ConsumerInbox.status,
            "eventId": ConsumerInbox.event_id,
            "eventType": ConsumerInbox.event_type,
            "resourceKey": ConsumerInbox.resource_key,
            "createdAt": ConsumerInbox.created_at,
        },
        render_entry,
        default_order=(ConsumerInbox.seq.desc(),),
    )


@router.get(f"{PATH}/consumerEvent/{{seq}}")
def get_consumer_event(
    seq: int,
    request: Request,
    session: Session = Depends(get_session),
    _: Principal = requires("events:read"),
) -> dict[str, Any]:
    return render_one(request, render_entry(consumers.get_entry(session, seq)))


@router.post(f"{PATH}/consumerEvent/{{seq}}/retry")
def retry_consumer_event(
    seq: int,
    body: OperatorDecision = Body(default_factory=OperatorDecision),
    session: Session = Depends(get_session),
    principal: Principal = requires("events:write"),
) -> dict[str, Any]:
    """Give a parked event a fresh retry budget (audited)."""
    return render_entry(consumers.retry(session, seq, actor=principal.actor, reason=body.reason))


@router.post(f"{PATH}/consumerEvent/{{seq}}/skip")
def skip_consumer_event(
    seq: int,
    body: OperatorDecision = Body(default_factory=OperatorDecision),
    session: Session = Depends(get_session),
    principal: Principal = requires("events:write"),
) -> dict[str, Any]:
    """Give up on a parked or pending event so later events of its resource flow (reason needed; audited)."""
    return render_entry(consumers.skip(session, seq, actor=principal.actor, reason=body.reason or ""))
