"""TMF hub: ``POST /tmf-api/<api>/<version>/hub {callback, query}`` registers a listener; ``DELETE`` ends it.

Events are POSTed to the callback by ``turnup.kernel.delivery``. What happened to each of them is visible
at ``GET …/hub/{id}/delivery`` (with every attempt), and a dead-lettered (``failed``) delivery is requeued
with ``POST …/hub/{id}/delivery/{deliveryId}/redeliver``.

Callbacks to non-public addresses are refused (400) unless allowed by ``TURNUP_WEBHOOK_ALLOWED_NETWORKS``;
the answer to the subscription carries, once, the ``secret`` deliveries are signed with (see
``turnup.kernel.webhooks``). A failed attempt's error keeps at most the first 300 characters of the
subscriber's response body, and only holders of ``security:admin`` see it: others see the status alone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlparse

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ConfigDict, Field, field_validator
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from turnup.api.deps import get_session, requires
from turnup.api.tmf import list_resources, render_one
from turnup.kernel import audit, clock, webhooks
from turnup.kernel.delivery import redeliver
from turnup.kernel.errors import InvalidInput, NotFound
from turnup.kernel.hrefs import href, iso, tmf_path
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import DeliveryAttempt, EventDelivery, HubSubscription, OutboxEvent
from turnup.kernel.text import InputModel
from turnup.security import Principal, has_permission

# Who may read what a subscriber answered (response bodies can hold anything an internal service said).
SEE_RESPONSE_BODIES = "security:admin"


class HubCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    callback: str = Field(min_length=1, max_length=2000)
    query: str | None = Field(default=None, max_length=2000)

    @field_validator("callback")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("callback must be an absolute http(s) URL")
        return value

    @field_validator("query")
    @classmethod
    def _hub_query(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            terms = parse_qsl(value, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise ValueError("query must look like 'eventType=A,B&field=value'") from None
        for key, _ in terms:
            if not key.strip():
                raise ValueError("query has a term without an attribute name")
        return value


def render_subscription(sub: HubSubscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "href": href(sub.api, "hub", sub.id),
        "@type": "EventSubscription",
        "callback": sub.callback,
        "query": sub.query,
        "createdAt": iso(sub.created_at),
    }


def error_summary(error: str | None) -> str | None:
    """An attempt's error without what the subscriber said: ``HTTP 503``, ``connection failed``, …"""
    if error is None:
        return None
    return error.split(":", 1)[0]


def render_attempt(attempt: DeliveryAttempt, full: bool = True) -> dict[str, Any]:
    return {
        "attemptNo": attempt.attempt_no,
        "at": iso(attempt.at),
        "statusCode": attempt.status_code,
        "error": attempt.error if full else error_summary(attempt.error),
        "durationMs": attempt.duration_ms,
    }


def render_delivery(delivery: EventDelivery, full: bool = True) -> dict[str, Any]:
    sub_id = delivery.subscription_id
    api = delivery.event.api
    return {
        "id": delivery.id,
        "href": f"{href(api, 'hub', sub_id)}/delivery/{delivery.id}",
        "@type": "EventDelivery",
        "subscriptionId": sub_id,
        "eventId": delivery.event_id,
        "eventType": delivery.event.event_type,
        "eventTime": iso(delivery.event.event_time),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "nextAttemptAt": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "deliveredAt": iso(delivery.delivered_at),
        "lastError": delivery.last_error if full else error_summary(delivery.last_error),
        "attempt": [render_attempt(a, full) for a in delivery.attempt_log],
    }


def _delivery_select() -> Select[EventDelivery]:
    return (
        select(EventDelivery)
        .join(OutboxEvent, OutboxEvent.id == EventDelivery.event_id)
        .options(selectinload(EventDelivery.event), selectinload(EventDelivery.attempt_log))
    )


def hub_router(api: str, area: str) -> APIRouter:
    """Hub endpoints for one TMF API; ``area`` is the permission area (e.g. ``catalog``)."""
    router = APIRouter(prefix=tmf_path(api, "hub"), tags=[f"{api} hub"])

    @router.post("", status_code=201)
    def register_listener(
        body: HubCreate,
        request: Request,
        session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> dict[str, Any]:
        settings = request.app.state.settings
        try:
            webhooks.check_callback(
                body.callback, webhooks.parse_networks(settings.webhook_allowed_networks), unresolved_ok=True
            )
        except webhooks.CallbackRefused as exc:
            raise InvalidInput(f"callback: {exc}") from None
        sub = HubSubscription(
            id=new_id(), api=api, callback=body.callback, query=body.query, created_at=clock.now()
        )
        session.add(sub)
        audit.record(
            session,
            actor=principal.actor,
            action="hub.subscribe",
            resource_type="hub",
            resource_id=sub.id,
            details={"api": api, "callback": body.callback},
        )
        session.commit()
        request.state.idempotency_redact = ("secret",)  # an Idempotency-Key replay must not store it
        secret = webhooks.subscription_secret(webhooks.signing_key(settings.webhook_signing_key), sub.id)
        return render_subscription(sub) | {"secret": secret}  # shown once: it is never stored

    @router.get("")
    def list_listeners(
        request: Request,
        response: Response,
        session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> list[dict[str, Any]]:
        stmt = select(HubSubscription).where(HubSubscription.api == api)
        filterable = {"callback": HubSubscription.callback, "id": HubSubscription.id}
        return list_resources(
            request,
            response,
            session,
            stmt,
            filterable,
            render_subscription,
            (HubSubscription.created_at, HubSubscription.id),
        )

    @router.get("/{sub_id}")
    def get_listener(
        sub_id: str,
        request: Request,
        session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> dict[str, Any]:
        sub = _own(session, api, sub_id)
        return render_one(request, render_subscription(sub))

    @router.delete("/{sub_id}", status_code=204)
    def unregister_listener(
        sub_id: str,
        session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> Response:
        sub = _own(session, api, sub_id)
        session.delete(sub)
        audit.record(
            session,
            actor=principal.actor,
            action="hub.unsubscribe",
            resource_type="hub",
            resource_id=sub_id,
            details={"api": api},
        )
        session.commit()
        return Response(status_code=204)

    @router.get("/{sub_id}/delivery")
    def list_deliveries(
        sub_id: str,
        request: Request,
        response: Response,
        session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> list[dict[str, Any]]:
        sub = _own(session, api, sub_id)
        stmt = _delivery_select().where(EventDelivery.subscription_id == sub.id)
        filterable = {
            "id": EventDelivery.id,
            "eventId": EventDelivery.event_id,
            "eventType": OutboxEvent.event_type,
            "eventTime": OutboxEvent.event_time,
            "status": EventDelivery.status,
            "attempts": EventDelivery.attempts,
            "nextAttemptAt": EventDelivery.next_attempt_at,
            "deliveredAt": EventDelivery.delivered_at,
        }
        return list_resources(
            request,
            response,
            session,
            stmt,
            filterable,
            lambda delivery: render_delivery(delivery, has_permission(principal, SEE_RESPONSE_BODIES)),
            (OutboxEvent.event_time, EventDelivery.id),
        )

    @router.get("/{sub_id}/delivery/{delivery_id}")
    def get_delivery(
        sub_id: str,
        delivery_id: str,
        request: Request,
        session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> dict[str, Any]:
        full = has_permission(principal, SEE_RESPONSE_BODIES)
        return render_one(request, render_delivery(_own_delivery(session, api, sub_id, delivery_id), full))

    @router.post("/{sub_id}/delivery/{delivery_id}/redeliver")
    def redeliver_delivery(
        sub_id: str,
        delivery_id: str,
        session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> dict[str, Any]:
        _own(session, api, sub_id)
        redeliver(session, delivery_id, principal.actor, subscription_id=sub_id)
        full = has_permission(principal, SEE_RESPONSE_BODIES)
        return render_delivery(_own_delivery(session, api, sub_id, delivery_id), full)

    return router


def _own_delivery(session: Session, api: str, sub_id: str, delivery_id: str) -> EventDelivery:
    _own(session, api, sub_id)
    delivery = session.scalars(
        _delivery_select().where(EventDelivery.id == delivery_id, EventDelivery.subscription_id == sub_id)
    ).one_or_none()
    if delivery is None:
        raise NotFound(f"delivery {delivery_id!r} not found for hub subscription {sub_id!r}")
    return delivery


def _own(session: Session, api: str, sub_id: str) -> HubSubscription:
    sub = session.get(HubSubscription, sub_id)
    if sub is None or sub.api != api:
        raise NotFound(f"hub subscription {sub_id!r} not found")
    return sub
