"""TMF638 service inventory over HTTP (read-only: services change through orders)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.security import Principal
from turnup.service_inventory import activation
from turnup.service_inventory.orm import Service
from turnup.service_inventory.render import API, render_service
from turnup.service_inventory.services import DELIVERY_API

router = APIRouter(tags=["service inventory"])

add_crud_routes(
    router,
    CrudSpec(
        path=f"/tmf-api/{API}/v4/service",
        label="service",
        area="services",
        model=Service,
        select=lambda: select(Service),
        filterable={
            "id": Service.id,
            "state": Service.state,
            "name": Service.name,
            "relatedParty.id": Service.customer_id,
            "productOffering.id": Service.offering_id,
            "startDate": Service.activation_date,
        },
        render=render_service,
        default_order=(Service.created_at, Service.id),
        owner_column=Service.customer_id,
        owner=lambda s: s.customer_id,
    ),
)

router.include_router(hub_router(API, "services"))
router.include_router(hub_router(DELIVERY_API, "services"))


# --- TMF640 Service Activation and Configuration (server side) ----------------------------------------------
ACTIVATION = f"/tmf-api/{activation.ACTIVATION_API}/v4/service"


def _activation_doc(outcome: dict[str, Any]) -> dict[str, Any]:
    doc = render_service(outcome["service"]) | {
        "href": render_service(outcome["service"])["href"].replace(
            f"/{API}/", f"/{activation.ACTIVATION_API}/"
        )
    }
    if outcome.get("activationError"):
        doc["activationError"] = outcome["activationError"]
    return doc


@router.post(ACTIVATION, status_code=201, name="activate service (TMF640)")
def activate_service(
    body: activation.ServiceActivationCreate,
    session: Session = Depends(get_session),
    principal: Principal = requires("services:write"),
) -> dict[str, Any]:
    outcome = activation.create(session, body, principal.actor)
    session.refresh(outcome["service"])
    return _activation_doc(outcome)


@router.patch(ACTIVATION + "/{service_id}", name="change service (TMF640)")
def change_service(
    service_id: str,
    body: activation.ServiceActivationUpdate,
    session: Session = Depends(get_session),
    principal: Principal = requires("services:write"),
) -> dict[str, Any]:
    outcome = activation.update(session, service_id, body, principal.actor)
    session.refresh(outcome["service"])
    return _activation_doc(outcome)


@router.get(ACTIVATION + "/{service_id}", name="get service (TMF640)")
def get_activation_service(
    service_id: str, session: Session = Depends(get_session), principal: Principal = requires("services:read")
) -> dict[str, Any]:
    from turnup.service_inventory.services import get_service

    return _activation_doc({"service": get_service(session, service_id)})


router.include_router(hub_router(activation.ACTIVATION_API, "services"))
