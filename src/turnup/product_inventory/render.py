"""TMF637 Product documents (see ``services`` for how a product is derived)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import object_session

from turnup.kernel.hrefs import href, iso
from turnup.product_inventory.services import API, ProductView, get_product


def render_product(p: ProductView) -> dict[str, Any]:
    item = p.product
    site = p.site_id
    return {
        "id": item.id,
        "href": href(API, "product", item.id),
        "@type": "Product",
        "name": item.offering_name,
        "status": p.status,
        "isBundle": p.is_bundle,
        "isCustomerVisible": True,
        "quantity": item.quantity,
        "orderDate": iso(item.order_date),
        "startDate": iso(p.start_date),
        "terminationDate": iso(p.termination_date),
        "productOffering": {
            "id": item.offering_id,
            "name": item.offering_name,
            "href": href("productCatalogManagement", "productOffering", item.offering_id),
        },
        "productOrderItem": [
            {
                "productOrderId": item.order_id,
                "orderItemId": item.item_ref,
                "orderItemAction": "add",
                "productOrderHref": href("productOrderingManagement", "productOrder", item.order_id),
                "@referredType": "ProductOrderItem",
            }
        ],
        "realizingService": [
            {
                "id": s.id,
                "href": href("serviceInventory", "service", s.id),
                "name": s.name,
                "@referredType": "Service",
            }
            for s in p.services
        ],
        "product": [_ref(c) for c in p.children],  # a bundle's child products
        "productRelationship": [{"relationshipType": "bundles", "product": _ref(c)} for c in p.children]
        + (
            [
                {
                    "relationshipType": "bundledIn",
                    "product": {
                        "id": p.parent_id,
                        "href": href(API, "product", p.parent_id),
                        "@referredType": "Product",
                    },
                }
            ]
            if p.parent_id
            else []
        ),
        "relatedParty": [{"id": item.customer_id, "role": "customer", "@referredType": "Customer"}],
        "place": [{"id": site, "role": "installationAddress", "@referredType": "GeographicSite"}]
        if site
        else [],
    }


def _ref(p: ProductView) -> dict[str, Any]:
    return {
        "id": p.product.id,
        "href": href(API, "product", p.product.id),
        "name": p.product.offering_name,
        "@referredType": "Product",
    }


def render_item(item: Any) -> dict[str, Any]:
    """Render the product of a row of ``services.products_select()`` (an order item)."""
    session = object_session(item)
    assert session is not None
    product = get_product(session, str(item.id))
    assert product is not None
    return render_product(product)
