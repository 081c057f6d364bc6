"""TMF637 product inventory over HTTP (read-only: products change through orders)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.api.tmf import list_resources, render_one
from turnup.kernel.errors import NotFound
from turnup.ordering.orm import ProductOrder, ProductOrderItem
from turnup.product_inventory import services
from turnup.product_inventory.render import render_item, render_product
from turnup.security import Principal

PRODUCTS = f"/tmf-api/{services.API}/v4/product"
FILTERABLE = {
    "id": ProductOrderItem.id,
    "name": ProductOrderItem.offering_name,
    "relatedParty.id": ProductOrder.customer_id,
    "productOffering.id": ProductOrderItem.offering_id,
    "productOrderItem.productOrderId": ProductOrderItem.order_id,
    "orderDate": ProductOrder.order_date,
}

router = APIRouter(tags=["product inventory"])


@router.get(PRODUCTS, name="list product")
def list_products(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("services:read"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        services.products_select(),
        FILTERABLE,
        render_item,
        (ProductOrder.order_date, ProductOrderItem.id),
    )


@router.get(PRODUCTS + "/{product_id}", name="get product")
def get_product(
    product_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires("services:read"),
) -> dict[str, Any]:
    product = services.get_product(session, product_id)
    if product is None:
        raise NotFound(f"product {product_id!r} not found")
    return render_one(request, render_product(product))


router.include_router(hub_router(services.API, "services"))
