"""TMF622 product ordering over HTTP (the subset built so far) and the plan view."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.kernel.errors import NotFound
from turnup.ordering import services
from turnup.ordering.orm import PlanItem, ProductOrder
from turnup.ordering.render import (
    API,
    SERVICE_ORDER_API,
    render_order,
    render_plan_item,
    render_service_order,
)
from turnup.ordering.schemas import CancelProductOrderCreate, OrderEventCreate, ProductOrderCreate
from turnup.security import Principal

ORDERS = f"/tmf-api/{API}/v4/productOrder"

router = APIRouter(tags=["ordering"])


@router.post(ORDERS, status_code=201, name="create productOrder")
def create_order(
    body: ProductOrderCreate,
    session: Session = Depends(get_session),
    principal: Principal = requires("ordering:write"),
) -> dict[str, Any]:
    """Create a TMF622 ProductOrder. Turnup extensions on every productOrder document:

    - `awaitedEvent`: `[{eventType, planItemId, state, kind}]`, the outside events (field work, shipping,
      project milestones) the order's plan waits for now; report one with
      `POST /productOrder/{id}/event {"eventType": …, "planItemId": …}`.
    - `plan.href`: the decomposed plan; each plan item's `productOrderItemId` is the `productOrderItem[].id`
      given here.
    """
    return render_order(services.create_order(session, body, principal.actor))


add_crud_routes(
    router,
    CrudSpec(
        path=ORDERS,
        label="productOrder",
        area="ordering",
        model=ProductOrder,
        select=lambda: select(ProductOrder),
        filterable={
            "id": ProductOrder.id,
            "state": ProductOrder.state,
            "externalId": ProductOrder.external_id,
            "relatedParty.id": ProductOrder.customer_id,
            "orderDate": ProductOrder.order_date,
            "completionDate": ProductOrder.completion_date,
        },
        render=render_order,
        default_order=(ProductOrder.order_date, ProductOrder.id),
        owner_column=ProductOrder.customer_id,
        owner=lambda o: o.customer_id,
    ),
)


# TMF641: every plan item is a one-item service order (read-only: product orders drive them).
add_crud_routes(
    router,
    CrudSpec(
        path=f"/tmf-api/{SERVICE_ORDER_API}/v4/serviceOrder",
        label="serviceOrder",
        area="ordering",
        model=PlanItem,
        select=lambda: select(PlanItem),
        filterable={
            "id": PlanItem.id,
            "state": PlanItem.state,
            "externalId": PlanItem.order_id,
            "productOrder.id": PlanItem.order_id,
            "service.id": PlanItem.service_id,
            "kind": PlanItem.kind,
            "startDate": PlanItem.started_at,
            "completionDate": PlanItem.completed_at,
        },
        render=render_service_order,
        default_order=(PlanItem.created_at, PlanItem.order_id, PlanItem.position),
    ),
)


@router.get(ORDERS + "/{order_id}/plan", name="productOrder plan")
def get_plan(
    order_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires("ordering:read"),
) -> list[dict[str, Any]]:
    services.get_order(session, order_id)
    return [render_plan_item(p) for p in services.plan_items(session, order_id)]


@router.post(ORDERS + "/{order_id}/event", status_code=201, name="report productOrder event")
def report_event(
    order_id: str,
    body: OrderEventCreate,
    session: Session = Depends(get_session),
    principal: Principal = requires("ordering:write"),
) -> dict[str, Any]:
    """Field work done, shipment delivered, milestone accepted: completes the plan item waiting for it."""
    return render_plan_item(services.report_event(session, order_id, body, principal.actor))


CANCELS = f"/tmf-api/{API}/v4/cancelProductOrder"


def render_cancel(order: ProductOrder) -> dict[str, Any]:
    """A CancelProductOrder request, derived from its order (one cancellation per order; its id is the
    order's id): ``inProgress`` while the order is pendingCancellation, ``done`` once it is cancelled."""
    state = {"pendingCancellation": "inProgress", "cancelled": "done"}.get(order.state, "terminatedWithError")
    return {
        "id": order.id,
        "href": f"{CANCELS}/{order.id}",
        "@type": "CancelProductOrder",
        "state": state,
        "cancellationReason": order.state_reason,
        "effectiveCancellationDate": render_order(order)["completionDate"] if state == "done" else None,
        "productOrder": {"id": order.id, "href": render_order(order)["href"]},
    }


@router.post(CANCELS, status_code=201, name="cancel productOrder")
def cancel_order(
    body: CancelProductOrderCreate,
    session: Session = Depends(get_session),
    principal: Principal = requires("ordering:write"),
) -> dict[str, Any]:
    """acknowledged orders cancel at once (``done``); in-progress ones answer ``inProgress`` and become
    ``done`` when the workflow has stopped, compensated and released the order's resources."""
    order = services.cancel_order(session, body.productOrder.id, body.cancellationReason, principal.actor)
    return render_cancel(order)


@router.get(CANCELS + "/{order_id}", name="get cancelProductOrder")
def get_cancel(
    order_id: str, session: Session = Depends(get_session), principal: Principal = requires("ordering:read")
) -> dict[str, Any]:
    order = services.get_order(session, order_id)
    if order.state not in ("pendingCancellation", "cancelled"):
        raise NotFound(f"cancelProductOrder {order_id!r} not found")
    return render_cancel(order)


router.include_router(hub_router(API, "ordering"))
router.include_router(hub_router(SERVICE_ORDER_API, "ordering"))
