"""TMF620 JSON documents for the catalog. Money is TMF Money ``{unit, value}`` with a string value."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from turnup.catalog.orm import Category, ProductOffering, ProductOfferingPrice, ProductSpecification
from turnup.kernel.hrefs import href, iso

API = "productCatalogManagement"


def money_str(value: Decimal | str | int) -> str:
    """Exact decimal text: at least two places, trailing zeros beyond that dropped ('45.00', '0.0125')."""
    d = Decimal(str(value))
    two = d.quantize(Decimal("0.01"))
    if two == d:
        return f"{two:f}"
    return f"{d.normalize():f}"


def money(unit: str, value: Decimal | str) -> dict[str, str]:
    return {"unit": unit, "value": money_str(value)}


def _valid_for(obj: Any) -> dict[str, Any] | None:
    if obj.valid_from is None and obj.valid_to is None:
        return None
    return {"startDateTime": iso(obj.valid_from), "endDateTime": iso(obj.valid_to)}


def _channels(channels: list[str]) -> list[dict[str, str]]:
    return [{"id": c, "name": c, "@referredType": "SalesChannel"} for c in channels]


def _ref(api_resource: str, referred: str, obj: Any, **extra: Any) -> dict[str, Any]:
    return {
        "id": obj.id,
        "href": href(API, api_resource, obj.id),
        "name": obj.name,
        "@referredType": referred,
        **extra,
    }


def _superseded(obj: Any, resource: str, referred: str) -> dict[str, Any] | None:
    if not obj.superseded_by_id:
        return None
    return {
        "id": obj.superseded_by_id,
        "href": href(API, resource, obj.superseded_by_id),
        "@referredType": referred,
    }


def render_category(c: Category) -> dict[str, Any]:
    return {
        "id": c.id,
        "href": href(API, "category", c.id),
        "@type": "Category",
        "name": c.name,
        "description": c.description,
        "version": c.version,
        "lifecycleStatus": c.lifecycle_status,
        "isRoot": c.is_root,
        "parentId": c.parent_id,
        "validFor": _valid_for(c),
        "lastUpdate": iso(c.updated_at),
    }


def render_specification(s: ProductSpecification) -> dict[str, Any]:
    return {
        "id": s.id,
        "href": href(API, "productSpecification", s.id),
        "@type": "ProductSpecification",
        "name": s.name,
        "description": s.description,
        "brand": s.brand,
        "productNumber": s.product_number,
        "version": s.version,
        "lifecycleStatus": s.lifecycle_status,
        "statusReason": s.status_reason,
        "isBundle": False,
        "validFor": _valid_for(s),
        "deliveryRequirements": s.delivery_requirements,
        "productSpecCharacteristic": s.characteristics or [],
        "revenueRecognition": s.revenue_recognition,
        "reportingAttributes": s.reporting_attributes,
        "exportClassification": s.eccn,
        "channel": _channels(s.channels),
        "supersededBy": _superseded(s, "productSpecification", "ProductSpecification"),
        "lastUpdate": iso(s.updated_at),
    }


def render_price(p: ProductOfferingPrice) -> dict[str, Any]:
    return {
        "id": p.id,
        "href": href(API, "productOfferingPrice", p.id),
        "@type": "ProductOfferingPrice",
        "name": p.name,
        "description": p.description,
        "version": p.version,
        "lifecycleStatus": p.lifecycle_status,
        "isBundle": False,
        "priceType": p.price_type,
        "recurringChargePeriodType": p.recurring_period_type,
        "recurringChargePeriodLength": p.recurring_period_length,
        "price": money(p.currency, p.amount),
        "unitOfMeasure": p.unit_of_measure,
        "tiers": p.tiers,
        "prodSpecCharValueUse": p.char_value_use,
        "validFor": _valid_for(p),
        "lastUpdate": iso(p.updated_at),
    }


def render_offering(o: ProductOffering) -> dict[str, Any]:
    return {
        "id": o.id,
        "href": href(API, "productOffering", o.id),
        "@type": "ProductOffering",
        "name": o.name,
        "description": o.description,
        "version": o.version,
        "lifecycleStatus": o.lifecycle_status,
        "statusReason": o.status_reason,
        "isBundle": o.is_bundle,
        "isSellable": o.is_sellable,
        "validFor": _valid_for(o),
        "productSpecification": [
            _ref(
                "productSpecification",
                "ProductSpecification",
                link.specification,
                version=link.specification.version,
            )
            for link in o.spec_links
        ],
        "bundledProductOffering": [
            {
                **_ref("productOffering", "ProductOffering", link.member),
                "lifecycleStatus": link.member.lifecycle_status,
            }
            for link in o.bundle_links
        ],
        "productOfferingPrice": [
            _ref("productOfferingPrice", "ProductOfferingPrice", link.price) for link in o.price_links
        ],
        "category": [
            _ref("category", "Category", link.category, version=link.category.version)
            for link in o.category_links
        ],
        "channel": _channels(o.channels),
        "discountRules": o.discount_rules,
        "revenueRecognition": o.revenue_recognition,
        "reportingAttributes": o.reporting_attributes,
        "exportClassification": o.eccn,
        "supersededBy": _superseded(o, "productOffering", "ProductOffering"),
        "lastUpdate": iso(o.updated_at),
    }


def render_offering_detail(o: ProductOffering) -> dict[str, Any]:
    """An offering with its specifications (incl. delivery requirements), prices, categories and bundle
    members resolved to full documents (for the web catalog browser and ``turnup catalog show``)."""
    document = render_offering(o)
    document["productSpecification"] = [render_specification(link.specification) for link in o.spec_links]
    document["productOfferingPrice"] = [render_price(link.price) for link in o.price_links]
    document["category"] = [render_category(link.category) for link in o.category_links]
    document["bundledProductOffering"] = [render_offering_detail(link.member) for link in o.bundle_links]
    return document
