"""The product catalog over HTTP: TMF620 v4 category, productSpecification, productOffering,
productOfferingPrice, plus the hub."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.hub import hub_router
from turnup.catalog import services
from turnup.catalog.orm import Category, ProductOffering, ProductOfferingPrice, ProductSpecification
from turnup.catalog.render import API, render_category, render_offering, render_price, render_specification
from turnup.catalog.schemas import (
    CategoryCreate,
    CategoryUpdate,
    ProductOfferingCreate,
    ProductOfferingPriceCreate,
    ProductOfferingPriceUpdate,
    ProductOfferingUpdate,
    ProductSpecificationCreate,
    ProductSpecificationUpdate,
)

BASE = f"/tmf-api/{API}/v4"
router = APIRouter(tags=["catalog"])

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BASE}/category",
        label="category",
        area="catalog",
        model=Category,
        select=lambda: select(Category),
        filterable={
            "id": Category.id,
            "name": Category.name,
            "version": Category.version,
            "lifecycleStatus": Category.lifecycle_status,
            "parentId": Category.parent_id,
            "isRoot": Category.is_root,
            "lastUpdate": Category.updated_at,
            "validFor.startDateTime": Category.valid_from,
            "validFor.endDateTime": Category.valid_to,
        },
        render=render_category,
        default_order=(Category.name, Category.id),
        create_schema=CategoryCreate,
        create=services.create_category,
        update_schema=CategoryUpdate,
        update=services.update_category,
        delete=services.delete_category,
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BASE}/productSpecification",
        label="productSpecification",
        area="catalog",
        model=ProductSpecification,
        select=lambda: select(ProductSpecification),
        filterable={
            "id": ProductSpecification.id,
            "name": ProductSpecification.name,
            "version": ProductSpecification.version,
            "lifecycleStatus": ProductSpecification.lifecycle_status,
            "brand": ProductSpecification.brand,
            "productNumber": ProductSpecification.product_number,
            "exportClassification": ProductSpecification.eccn,
            "supersededBy.id": ProductSpecification.superseded_by_id,
            "lastUpdate": ProductSpecification.updated_at,
            "validFor.startDateTime": ProductSpecification.valid_from,
            "validFor.endDateTime": ProductSpecification.valid_to,
        },
        render=render_specification,
        default_order=(ProductSpecification.name, ProductSpecification.version, ProductSpecification.id),
        create_schema=ProductSpecificationCreate,
        create=services.create_specification,
        update_schema=ProductSpecificationUpdate,
        update=services.update_specification,
        delete=services.delete_specification,
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BASE}/productOffering",
        label="productOffering",
        area="catalog",
        model=ProductOffering,
        select=lambda: select(ProductOffering),
        filterable={
            "id": ProductOffering.id,
            "name": ProductOffering.name,
            "version": ProductOffering.version,
            "lifecycleStatus": ProductOffering.lifecycle_status,
            "isBundle": ProductOffering.is_bundle,
            "isSellable": ProductOffering.is_sellable,
            "exportClassification": ProductOffering.eccn,
            "supersededBy.id": ProductOffering.superseded_by_id,
            "lastUpdate": ProductOffering.updated_at,
            "validFor.startDateTime": ProductOffering.valid_from,
            "validFor.endDateTime": ProductOffering.valid_to,
        },
        render=render_offering,
        default_order=(ProductOffering.name, ProductOffering.version, ProductOffering.id),
        create_schema=ProductOfferingCreate,
        create=services.create_offering,
        update_schema=ProductOfferingUpdate,
        update=services.update_offering,
        delete=services.delete_offering,
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BASE}/productOfferingPrice",
        label="productOfferingPrice",
        area="catalog",
        model=ProductOfferingPrice,
        select=lambda: select(ProductOfferingPrice),
        filterable={
            "id": ProductOfferingPrice.id,
            "name": ProductOfferingPrice.name,
            "version": ProductOfferingPrice.version,
            "lifecycleStatus": ProductOfferingPrice.lifecycle_status,
            "priceType": ProductOfferingPrice.price_type,
            "recurringChargePeriodType": ProductOfferingPrice.recurring_period_type,
            "price.unit": ProductOfferingPrice.currency,
            "price.value": ProductOfferingPrice.amount,
            "lastUpdate": ProductOfferingPrice.updated_at,
            "validFor.startDateTime": ProductOfferingPrice.valid_from,
            "validFor.endDateTime": ProductOfferingPrice.valid_to,
        },
        render=render_price,
        default_order=(ProductOfferingPrice.name, ProductOfferingPrice.id),
        create_schema=ProductOfferingPriceCreate,
        create=services.create_price,
        update_schema=ProductOfferingPriceUpdate,
        update=services.update_price,
        delete=services.delete_price,
    ),
)

router.include_router(hub_router(API, "catalog"))
