"""Fallout queue over HTTP: list, get, and the three staff decisions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.deps import get_session, requires
from turnup.kernel.hrefs import tmf_path
from turnup.ordering import fallout as services
from turnup.ordering.fallout import API
from turnup.ordering.orm import FalloutEntry
from turnup.ordering.schemas import FalloutDecision
from turnup.security import Principal

PATH = tmf_path(API, "fallout")

router = APIRouter(tags=["fallout"])

add_crud_routes(
    router,
    CrudSpec(
        path=PATH,
        label="falloutEntry",
        area="fallout",
        model=FalloutEntry,
        select=lambda: select(FalloutEntry),
        filterable={
            "id": FalloutEntry.id,
            "state": FalloutEntry.state,
            "step": FalloutEntry.step,
            "productOrder.id": FalloutEntry.order_id,
            "openedAt": FalloutEntry.opened_at,
        },
        render=services.render_fallout,
        default_order=(FalloutEntry.opened_at, FalloutEntry.id),
    ),
)


def _decide(action: str) -> Any:
    def decide(
        fallout_id: str,
        body: FalloutDecision = Body(default_factory=FalloutDecision),
        session: Session = Depends(get_session),
        principal: Principal = requires("fallout:write"),
    ) -> dict[str, Any]:
        return services.render_fallout(
            services.resolve(session, fallout_id, action, body.reason, principal.actor)
        )

    return decide


for _action in services.ACTIONS:
    router.add_api_route(
        f"{PATH}/{{fallout_id}}/{_action}", _decide(_action), methods=["POST"], name=f"{_action} fallout"
    )
