"""Physical inventory over HTTP: TMF687 Stock Management v4 (``productStock``, ``reserveProductStock``,
``checkProductStock``, ``adjustProductStock``, ``queryProductStock``) plus the SKU master, locations, units,
movements, allocations, CPE returns (``stockReturn``), rack space and replenishment requests. Permission
area: ``stock``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.api.tmf import get_or_404, list_resources, render_one
from turnup.inventory.physical import fulfilment, racks, reservations, services
from turnup.inventory.physical.orm import (
    Location,
    RackHold,
    ReplenishmentRequest,
    Reservation,
    ReturnExpectation,
    Sku,
    StockLevel,
    StockMovement,
    StockUnit,
)
from turnup.inventory.physical.render import (
    ReservationView,
    render_allocation,
    render_location,
    render_movement,
    render_rack_hold,
    render_replenishment,
    render_reservation,
    render_return,
    render_sku,
    render_unit,
)
from turnup.inventory.physical.schemas import (
    AllocationDispatch,
    AvailabilityRequest,
    LevelSettings,
    LocationCreate,
    LocationUpdate,
    MovementCreate,
    RackHoldCreate,
    RackHoldUpdate,
    ReservationCreate,
    ReservationUpdate,
    ReturnReceipt,
    SkuCreate,
    SkuUpdate,
    StockQuery,
)
from turnup.kernel.ids import new_id
from turnup.security import Principal

BASE = "/tmf-api/stock/v4"
router = APIRouter(tags=["stock"])
READ, WRITE = "stock:read", "stock:write"

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BASE}/sku",
        label="sku",
        area="stock",
        model=Sku,
        select=lambda: select(Sku),
        filterable={
            "id": Sku.id,
            "code": Sku.code,
            "name": Sku.name,
            "serialised": Sku.serialised,
            "unit": Sku.unit,
            "lastUpdate": Sku.updated_at,
        },
        render=render_sku,
        default_order=(Sku.code,),
        create_schema=SkuCreate,
        create=services.create_sku,
        update_schema=SkuUpdate,
        update=services.update_sku,
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BASE}/location",
        label="location",
        area="stock",
        model=Location,
        select=lambda: select(Location),
        filterable={
            "id": Location.id,
            "code": Location.code,
            "name": Location.name,
            "locationType": Location.location_type,
            "parentId": Location.parent_id,
            "region": Location.region,
            "siteId": Location.site_id,
        },
        render=render_location,
        default_order=(Location.code,),
        create_schema=LocationCreate,
        create=services.create_location,
        update_schema=LocationUpdate,
        update=services.update_location,
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BASE}/stockUnit",
        label="stockUnit",
        area="stock",
        model=StockUnit,
        select=lambda: select(StockUnit),
        filterable={
            "id": StockUnit.id,
            "serial": StockUnit.serial,
            "mac": StockUnit.mac,
            "imei": StockUnit.imei,
            "skuId": StockUnit.sku_id,
            "locationId": StockUnit.location_id,
            "state": StockUnit.state,
            "orderId": StockUnit.order_id,
        },
        render=render_unit,
        default_order=(StockUnit.serial, StockUnit.id),
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BASE}/replenishmentRequest",
        label="replenishmentRequest",
        area="stock",
        model=ReplenishmentRequest,
        select=lambda: select(ReplenishmentRequest),
        filterable={
            "id": ReplenishmentRequest.id,
            "status": ReplenishmentRequest.status,
            "skuId": ReplenishmentRequest.sku_id,
            "locationId": ReplenishmentRequest.location_id,
            "productStockId": ReplenishmentRequest.level_id,
            "createdAt": ReplenishmentRequest.created_at,
        },
        render=render_replenishment,
        default_order=(ReplenishmentRequest.created_at, ReplenishmentRequest.id),
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BASE}/rackSpaceReservation",
        label="rackSpaceReservation",
        area="stock",
        model=RackHold,
        select=lambda: select(RackHold),
        filterable={
            "id": RackHold.id,
            "rackId": RackHold.rack_id,
            "reservationState": RackHold.status,
            "customerId": RackHold.customer_id,
            "quoteId": RackHold.quote_id,
            "orderId": RackHold.order_id,
        },
        render=render_rack_hold,
        default_order=(RackHold.created_at, RackHold.id),
    ),
)


@router.get(f"{BASE}/stockMovement")
def list_movements(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires(READ),
) -> list[dict[str, Any]]:
    """The ledger (immutable), oldest first."""
    filterable = {
        "kind": StockMovement.kind,
        "skuId": StockMovement.sku_id,
        "locationId": StockMovement.location_id,
        "unitId": StockMovement.unit_id,
        "reservationId": StockMovement.reservation_id,
        "reference": StockMovement.reference,
        "at": StockMovement.at,
    }
    return list_resources(
        request, response, session, select(StockMovement), filterable, render_movement, (StockMovement.id,)
    )


@router.get(f"{BASE}/stockUnit/{{unit_id}}/history")
def unit_history(
    unit_id: str, session: Session = Depends(get_session), principal: Principal = requires(READ)
) -> list[dict[str, Any]]:
    """A serialised unit's full history: every ledger entry naming it, with its location's code (e.g.
    warehouse -> customer site -> back)."""
    history = services.unit_history(session, unit_id)
    codes = services.location_codes(session, [m.location_id for m in history])
    return [render_movement(m) | {"location": codes.get(m.location_id or "")} for m in history]


# --- productStock ----------------------------------------------------------------------------------------


@router.get(f"{BASE}/productStock")
def list_product_stock(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires(READ),
) -> list[dict[str, Any]]:
    filterable = {
        "id": StockLevel.id,
        "skuId": StockLevel.sku_id,
        "locationId": StockLevel.location_id,
        "lastUpdate": StockLevel.updated_at,
    }
    return list_resources(
        request,
        response,
        session,
        select(StockLevel),
        filterable,
        lambda level: services.level_document(session, level),
        (StockLevel.id,),
    )


@router.get(f"{BASE}/productStock/{{level_id}}")
def get_product_stock(
    level_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires(READ),
) -> dict[str, Any]:
    level = get_or_404(session, StockLevel, level_id, "productStock")
    return render_one(request, services.level_document(session, level))


@router.post(f"{BASE}/productStock", status_code=201)
def set_product_stock(
    body: LevelSettings, session: Session = Depends(get_session), principal: Principal = requires(WRITE)
) -> dict[str, Any]:
    """Create a SKU × location stock record or set its reorder policy."""
    level = services.set_level_policy(session, body, principal.actor)
    return services.level_document(session, level)


@router.post(f"{BASE}/adjustProductStock", status_code=201)
def adjust_product_stock(
    body: MovementCreate, session: Session = Depends(get_session), principal: Principal = requires(WRITE)
) -> dict[str, Any]:
    """Any movement: receipt, transfer, issue, ship, install, return, refurbish, scrap, count_adjustment."""
    return services.apply_movement(session, body, principal.actor)


@router.post(f"{BASE}/checkProductStock", status_code=201)
def check_product_stock(
    body: AvailabilityRequest, session: Session = Depends(get_session), principal: Principal = requires(READ)
) -> dict[str, Any]:
    """Per line: available now, where, and when replenishment is expected (reserves nothing)."""
    results = reservations.check_availability(session, body.lines)
    return {
        "id": new_id(),
        "@type": "CheckProductStock",
        "state": "done",
        "checkProductStockItem": [r.as_dict() for r in results],
        "sufficient": all(r.sufficient for r in results),
    }


@router.post(f"{BASE}/queryProductStock", status_code=201)
def query_product_stock(
    body: StockQuery, session: Session = Depends(get_session), principal: Principal = requires(READ)
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "@type": "QueryProductStock",
        "state": "done",
        "searchResult": services.query_stock(session, body),
    }


# --- reserveProductStock ---------------------------------------------------------------------------------


@router.post(f"{BASE}/reserveProductStock", status_code=201)
def reserve_product_stock(
    body: ReservationCreate, session: Session = Depends(get_session), principal: Principal = requires(WRITE)
) -> dict[str, Any]:
    return render_reservation(reservations.create_reservation(session, body, principal.actor))


@router.get(f"{BASE}/reserveProductStock")
def list_reservations(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires(READ),
) -> list[dict[str, Any]]:
    filterable = {
        "id": Reservation.id,
        "reservationState": Reservation.status,
        "customerId": Reservation.customer_id,
        "quoteId": Reservation.quote_id,
        "orderId": Reservation.order_id,
        "expiresAt": Reservation.expires_at,
    }
    return list_resources(
        request,
        response,
        session,
        select(Reservation),
        filterable,
        lambda r: render_reservation(reservations._view(session, r)),
        (Reservation.created_at, Reservation.id),
    )


@router.get(f"{BASE}/reserveProductStock/{{reservation_id}}")
def get_reservation(
    reservation_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires(READ),
) -> dict[str, Any]:
    return render_one(request, render_reservation(reservations.get_reservation(session, reservation_id)))


@router.patch(f"{BASE}/reserveProductStock/{{reservation_id}}")
def patch_reservation(
    reservation_id: str,
    body: ReservationUpdate,
    session: Session = Depends(get_session),
    principal: Principal = requires(WRITE),
) -> dict[str, Any]:
    """``expiresAt`` extends; ``reservationState``: ``cancelled`` releases, ``committed`` (+ ``orderId``)
    commits into an allocation."""
    view: ReservationView
    if body.expiresAt is not None:
        view = reservations.extend_reservation(session, reservation_id, body.expiresAt, principal.actor)
    elif body.reservationState == "cancelled":
        view = reservations.release_reservation(session, reservation_id, principal.actor)
    else:
        assert body.orderId is not None
        view = reservations.commit_reservation(session, reservation_id, body.orderId, principal.actor)
    return render_reservation(view)


@router.post(f"{BASE}/sweepExpiredHolds")
def sweep(session: Session = Depends(get_session), principal: Principal = requires(WRITE)) -> dict[str, Any]:
    """Release every expired stock and rack hold now (housekeeping also does this periodically)."""
    result = reservations.sweep_expired(session, actor=principal.actor)
    return {
        "linesReleased": result.lines_released,
        "reservationsExpired": result.reservations_expired,
        "rackHoldsExpired": result.rack_holds_expired,
    }


# --- allocations -----------------------------------------------------------------------------------------


@router.get(f"{BASE}/allocation/{{allocation_id}}")
def get_allocation(
    allocation_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires(READ),
) -> dict[str, Any]:
    return render_one(request, render_allocation(services.get_allocation(session, allocation_id)))


@router.post(f"{BASE}/allocation/{{allocation_id}}/dispatch")
def dispatch_allocation(
    allocation_id: str,
    body: AllocationDispatch,
    session: Session = Depends(get_session),
    principal: Principal = requires("dispatch:write"),
) -> dict[str, Any]:
    return render_allocation(services.dispatch_allocation(session, allocation_id, body, principal.actor))


@router.post(f"{BASE}/allocation/{{allocation_id}}/cancel")
def cancel_allocation(
    allocation_id: str, session: Session = Depends(get_session), principal: Principal = requires(WRITE)
) -> dict[str, Any]:
    return render_allocation(services.cancel_allocation(session, allocation_id, principal.actor))


# --- CPE returns ----------------------------------------------------------------------------------------


def _return_document(session: Session, r: ReturnExpectation) -> dict[str, Any]:
    return render_return(r, fulfilment.location_codes(session, [r]))


@router.get(f"{BASE}/stockReturn")
def list_returns(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires(READ),
) -> list[dict[str, Any]]:
    """Return expectations (RMAs): units expected back from customer sites, oldest first."""
    filterable = {
        "id": ReturnExpectation.id,
        "status": ReturnExpectation.status,
        "serviceId": ReturnExpectation.service_id,
        "customerId": ReturnExpectation.customer_id,
        "productOrderId": ReturnExpectation.order_id,
        "createdAt": ReturnExpectation.created_at,
    }
    return list_resources(
        request,
        response,
        session,
        select(ReturnExpectation),
        filterable,
        lambda r: _return_document(session, r),
        (ReturnExpectation.created_at, ReturnExpectation.id),
    )


@router.get(f"{BASE}/stockReturn/{{return_id}}")
def get_return(
    return_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires(READ),
) -> dict[str, Any]:
    return render_one(request, _return_document(session, fulfilment.get_return(session, return_id)))


@router.post(f"{BASE}/stockReturn/{{return_id}}/receive")
def receive_return(
    return_id: str,
    body: ReturnReceipt,
    session: Session = Depends(get_session),
    principal: Principal = requires(WRITE),
) -> dict[str, Any]:
    """The returned units arrive: back into stock at ``location`` (default: where they are expected)."""
    expectation = fulfilment.receive_return(session, return_id, body, principal.actor)
    return _return_document(session, expectation)


# --- rack space ------------------------------------------------------------------------------------------


@router.post(f"{BASE}/rackSpaceReservation", status_code=201)
def reserve_rack(
    body: RackHoldCreate, session: Session = Depends(get_session), principal: Principal = requires(WRITE)
) -> dict[str, Any]:
    return render_rack_hold(racks.reserve_rack_space(session, body, principal.actor))


@router.patch(f"{BASE}/rackSpaceReservation/{{hold_id}}")
def patch_rack(
    hold_id: str,
    body: RackHoldUpdate,
    session: Session = Depends(get_session),
    principal: Principal = requires(WRITE),
) -> dict[str, Any]:
    if body.expiresAt is not None:
        hold = racks.extend_rack_hold(session, hold_id, body.expiresAt, principal.actor)
    elif body.reservationState == "cancelled":
        hold = racks.release_rack_hold(session, hold_id, principal.actor)
    else:
        assert body.orderId is not None
        hold = racks.commit_rack_hold(session, hold_id, body.orderId, principal.actor)
    return render_rack_hold(hold)


router.include_router(hub_router("stock", "stock"))
