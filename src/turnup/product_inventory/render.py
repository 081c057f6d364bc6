"""TMF637 Product documents (see ``services`` for how a product is derived)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import object_session

from turnup.kernel.hrefs import href, iso
from turnup.ordering.orm import ProductOrderItem
from turnup.product_inventory.services import API, ProductView, view


def render_product(p: ProductView) -> dict[str, Any]:
    item, order = p.item, p.order
    site = p.site_id
    return {
        "id": item.id,
        "href": href(API, "product", item.id),
        "@type": "Product",
        "name": item.offering_name,
        "status": p.status,
        "isBundle": False,
        "isCustomerVisible": True,
        "quantity": item.quantity,
        "orderDate": iso(order.order_date),
        "startDate": iso(p.start_date),
        "terminationDate": iso(p.termination_date),
        "productOffering": {
            "id": item.offering_id,
            "name": item.offering_name,
            "href": href("productCatalogManagement", "productOffering", item.offering_id),
        },
        "productOrderItem": [
            {
                "productOrderId": order.id,
                "orderItemId": item.item_ref,
                "orderItemAction": "add",
                "productOrderHref": href("productOrderingManagement", "productOrder", order.id),
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
        "relatedParty": [{"id": order.customer_id, "role": "customer", "@referredType": "Customer"}],
        "place": [{"id": site, "role": "installationAddress", "@referredType": "GeographicSite"}]
        if site
        else [],
    }


def render_item(item: ProductOrderItem) -> dict[str, Any]:
    session = object_session(item)
    assert session is not None
    return render_product(view(session, item))
