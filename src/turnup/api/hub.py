"""TMF hub: ``POST /tmf-api/<api>/v4/hub {callback, query}`` registers a listener, ``DELETE`` removes it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.deps import get_session, requires
from turnup.api.tmf import list_resources, render_one
from turnup.kernel import audit, clock
from turnup.kernel.errors import NotFound
from turnup.kernel.hrefs import href, iso
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import HubSubscription
from turnup.security import Principal


class HubCreate(BaseModel):
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


def render_subscription(sub: HubSubscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "href": href(sub.api, "hub", sub.id),
        "@type": "EventSubscription",
        "callback": sub.callback,
        "query": sub.query,
        "createdAt": iso(sub.created_at),
    }


def hub_router(api: str, area: str) -> APIRouter:
    """Hub endpoints for one TMF API; ``area`` is the permission area (e.g. ``catalog``)."""
    router = APIRouter(prefix=f"/tmf-api/{api}/v4/hub", tags=[f"{api} hub"])

    @router.post("", status_code=201)
    def register_listener(
        body: HubCreate, session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> dict[str, Any]:
        sub = HubSubscription(id=new_id(), api=api, callback=body.callback, query=body.query,
                              created_at=clock.now())
        session.add(sub)
        audit.record(session, actor=principal.actor, action="hub.subscribe", resource_type="hub",
                     resource_id=sub.id, details={"api": api, "callback": body.callback})
        session.commit()
        return render_subscription(sub)

    @router.get("")
    def list_listeners(
        request: Request, response: Response, session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> list[dict[str, Any]]:
        stmt = select(HubSubscription).where(HubSubscription.api == api)
        filterable = {"callback": HubSubscription.callback, "id": HubSubscription.id}
        return list_resources(request, response, session, stmt, filterable, render_subscription,
                              (HubSubscription.created_at, HubSubscription.id))

    @router.get("/{sub_id}")
    def get_listener(
        sub_id: str, request: Request, session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> dict[str, Any]:
        sub = _own(session, api, sub_id)
        return render_one(request, render_subscription(sub))

    @router.delete("/{sub_id}", status_code=204)
    def unregister_listener(
        sub_id: str, session: Session = Depends(get_session),
        principal: Principal = requires(f"{area}:subscribe"),
    ) -> Response:
        sub = _own(session, api, sub_id)
        session.delete(sub)
        audit.record(session, actor=principal.actor, action="hub.unsubscribe", resource_type="hub",
                     resource_id=sub_id, details={"api": api})
        session.commit()
        return Response(status_code=204)

    return router


def _own(session: Session, api: str, sub_id: str) -> HubSubscription:
    sub = session.get(HubSubscription, sub_id)
    if sub is None or sub.api != api:
        raise NotFound(f"hub subscription {sub_id!r} not found")
    return sub
