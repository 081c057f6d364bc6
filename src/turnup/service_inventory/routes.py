"""TMF638 service inventory over HTTP (read-only: services change through orders)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.hub import hub_router
from turnup.service_inventory.orm import Service
from turnup.service_inventory.render import API, render_service
from turnup.service_inventory.services import DELIVERY_API

router = APIRouter(tags=["service inventory"])

add_crud_routes(router, CrudSpec(
    path=f"/tmf-api/{API}/v4/service", label="service", area="services", model=Service,
    select=lambda: select(Service),
    filterable={"id": Service.id, "state": Service.state, "name": Service.name,
                "relatedParty.id": Service.customer_id, "productOffering.id": Service.offering_id,
                "startDate": Service.activation_date},
    render=render_service, default_order=(Service.created_at, Service.id),
))

router.include_router(hub_router(API, "services"))
router.include_router(hub_router(DELIVERY_API, "services"))
