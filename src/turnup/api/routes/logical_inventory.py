"""Logical inventory over HTTP.

- ``/tmf-api/resourcePoolManagement/v4/resourcePool`` (+ ``/{id}/allocate``, ``/{id}/utilization``)
- ``/tmf-api/resourcePoolManagement/v4/resourceReservation`` (one reservation API for all logical kinds)
- ``/tmf-api/resourcePoolManagement/v4/numberClass``, ``numberBlock``, ``numberImport``,
  ``numberBlockPoolingReport``
- ``/tmf-api/resourceInventoryManagement/v4/logicalResource`` (TMF639 resource views of allocations;
  ``DELETE`` releases into quarantine) and ``.../telephoneNumber`` (search, lifecycle)
"""

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.api.tmf import list_resources, parse_fields, render_one, select_fields
from turnup.inventory.logical import numbers, reservations, services
from turnup.inventory.logical.orm import (
    LogicalBlock,
    LogicalSpace,
    NumberBlock,
    NumberClass,
    ResourceReservation,
)
from turnup.inventory.logical.render import (
    render_block,
    render_number,
    render_number_block,
    render_number_class,
    render_pool,
    render_reservation,
)
from turnup.inventory.logical.schemas import (
    AllocationRequest,
    NumberClassCreate,
    NumberClassUpdate,
    NumberImport,
    NumberSearch,
    NumberUpdate,
    PoolCreate,
    PoolUpdate,
    ReservationCreate,
    ReservationUpdate,
)
from turnup.kernel.errors import InvalidInput
from turnup.security import Principal

POOLS = "/tmf-api/resourcePoolManagement/v4"
INVENTORY = "/tmf-api/resourceInventoryManagement/v4"
AREA = "inventory"

router = APIRouter(tags=["logical inventory"])


@router.post(POOLS + "/resourcePool/{pool_id}/allocate", status_code=201)
def allocate(
    pool_id: str,
    body: AllocationRequest = Body(...),
    session: Session = Depends(get_session),
    principal: Principal = requires(f"{AREA}:write"),
) -> dict[str, Any]:
    taken, space = services.allocate(session, pool_id, body, principal.actor)
    return render_block(taken, space)


@router.get(POOLS + "/resourcePool/{pool_id}/utilization")
def utilization(
    pool_id: str, session: Session = Depends(get_session), principal: Principal = requires(f"{AREA}:read")
) -> dict[str, Any]:
    return services.utilization(session, pool_id)


add_crud_routes(
    router,
    CrudSpec(
        path=POOLS + "/resourcePool",
        label="resourcePool",
        area=AREA,
        model=LogicalSpace,
        select=lambda: select(LogicalSpace),
        filterable={
            "id": LogicalSpace.id,
            "name": LogicalSpace.name,
            "resourceType": LogicalSpace.resource_type,
            "role": LogicalSpace.role,
            "routingDomain": LogicalSpace.domain,
            "prefix": LogicalSpace.prefix,
            "purpose": LogicalSpace.purpose,
            "site": LogicalSpace.site,
            "parentPool.id": LogicalSpace.parent_id,
            "createdAt": LogicalSpace.created_at,
        },
        render=render_pool,
        default_order=(LogicalSpace.created_at, LogicalSpace.id),
        create_schema=PoolCreate,
        create=services.create_pool,
        update_schema=PoolUpdate,
        update=services.update_pool,
        delete=services.delete_pool,
        get=lambda session, pool: services.get_pool(session, pool, "id"),
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=POOLS + "/resourceReservation",
        label="resourceReservation",
        area=AREA,
        model=ResourceReservation,
        select=lambda: select(ResourceReservation),
        filterable={
            "id": ResourceReservation.id,
            "reservationState": ResourceReservation.state,
            "relatedParty": ResourceReservation.related_party,
            "serviceId": ResourceReservation.service_id,
            "createdAt": ResourceReservation.created_at,
        },
        render=render_reservation,
        default_order=(ResourceReservation.created_at, ResourceReservation.id),
        create_schema=ReservationCreate,
        create=reservations.create_from_api,
        update_schema=ReservationUpdate,
        update=reservations.update_from_api,
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=POOLS + "/numberClass",
        label="numberClass",
        area=AREA,
        model=NumberClass,
        select=lambda: select(NumberClass),
        filterable={"id": NumberClass.name, "name": NumberClass.name, "agingDays": NumberClass.aging_days},
        render=render_number_class,
        default_order=(NumberClass.name,),
        create_schema=NumberClassCreate,
        create=numbers.create_number_class,
        update_schema=NumberClassUpdate,
        update=numbers.update_number_class,
    ),
)


@router.post(POOLS + "/numberImport", status_code=201)
def import_numbers(
    body: NumberImport = Body(...),
    session: Session = Depends(get_session),
    principal: Principal = requires(f"{AREA}:write"),
) -> dict[str, Any]:
    return numbers.import_numbers(session, body, principal.actor)


@router.get(POOLS + "/numberBlockPoolingReport")
def pooling_report(
    request: Request, session: Session = Depends(get_session), principal: Principal = requires(f"{AREA}:read")
) -> list[dict[str, Any]]:
    params = dict(request.query_params)
    unknown = set(params) - {"thresholdPercent", "country"}
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: unknown parameter (thresholdPercent, country)")
    try:
        threshold = float(params.get("thresholdPercent", "10"))
    except ValueError:
        raise InvalidInput("thresholdPercent: must be a number") from None
    if not 0 < threshold <= 100:
        raise InvalidInput("thresholdPercent: must be in (0, 100]")
    return numbers.pooling_report(session, threshold, params.get("country"))


add_crud_routes(
    router,
    CrudSpec(
        path=POOLS + "/numberBlock",
        label="numberBlock",
        area=AREA,
        model=NumberBlock,
        select=lambda: select(NumberBlock),
        filterable={
            "id": NumberBlock.id,
            "country": NumberBlock.region,
            "numberClass": NumberBlock.number_class,
            "prefix": NumberBlock.prefix,
        },
        render=render_number_block,
        default_order=(NumberBlock.prefix,),
    ),
)


# ------------------------------------------------------------------ TMF639 views: logical resources

_ALLOCATED = ("reserved", "allocated", "quarantine")


@router.get(INVENTORY + "/logicalResource")
def list_logical_resources(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires(f"{AREA}:read"),
) -> list[dict[str, Any]]:
    stmt = select(LogicalBlock).where(LogicalBlock.state.in_(_ALLOCATED))
    filterable = {
        "id": LogicalBlock.id,
        "lifecycleState": LogicalBlock.state,
        "resourcePool.id": LogicalBlock.space_id,
        "serviceId": LogicalBlock.service_id,
        "reservation.id": LogicalBlock.reservation_id,
        "startOperatingDate": LogicalBlock.allocated_at,
    }
    return list_resources(
        request,
        response,
        session,
        stmt,
        filterable,
        lambda b: render_block(b, b.space),
        (LogicalBlock.space_id, LogicalBlock.lo),
    )


@router.get(INVENTORY + "/logicalResource/{item_id}")
def get_logical_resource(
    item_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires(f"{AREA}:read"),
) -> dict[str, Any]:
    block = services.get_block(session, item_id)
    return render_one(request, render_block(block, block.space))


@router.delete(INVENTORY + "/logicalResource/{item_id}", status_code=204)
def release_logical_resource(
    item_id: str, session: Session = Depends(get_session), principal: Principal = requires(f"{AREA}:write")
) -> Response:
    services.release(session, item_id, principal.actor)
    return Response(status_code=204)


# ------------------------------------------------------------------------------ telephone numbers

_SEARCH = set(NumberSearch.model_fields)


@router.get(INVENTORY + "/telephoneNumber")
def search_numbers(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires(f"{AREA}:read"),
) -> list[dict[str, Any]]:
    """Search (default: available numbers). No X-Total-Count: counting 10M rows per page is not free."""
    params = dict(request.query_params)
    fields = parse_fields(params.pop("fields", None))
    unknown = set(params) - _SEARCH
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: unknown parameter; search by {', '.join(sorted(_SEARCH))}")
    try:
        query = NumberSearch(**params)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    numbers.sweep(session)
    items = [select_fields(render_number(n), fields) for n in numbers.search(session, query)]
    response.headers["X-Result-Count"] = str(len(items))
    return items


@router.get(INVENTORY + "/telephoneNumber/{item_id}")
def get_number(
    item_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires(f"{AREA}:read"),
) -> dict[str, Any]:
    return render_one(request, render_number(numbers.get_number(session, item_id)))


@router.patch(INVENTORY + "/telephoneNumber/{item_id}")
def patch_number(
    item_id: str,
    body: NumberUpdate = Body(..., media_type="application/merge-patch+json"),
    session: Session = Depends(get_session),
    principal: Principal = requires(f"{AREA}:write"),
) -> dict[str, Any]:
    return render_number(numbers.update_number(session, item_id, body, principal.actor))


router.include_router(hub_router("resourcePoolManagement", AREA))
