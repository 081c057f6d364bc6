"""TMF638 Service documents."""

from __future__ import annotations

from typing import Any

from turnup.kernel.hrefs import href, iso
from turnup.service_inventory.orm import Service

API = "serviceInventory"


def render_service(s: Service) -> dict[str, Any]:
    return {
        "id": s.id,
        "href": href(API, "service", s.id),
        "@type": "Service",
        "name": s.name,
        "state": s.state,
        "serviceDate": iso(s.created_at),
        "startDate": iso(s.activation_date),
        "endDate": iso(s.termination_date),
        "relatedParty": [{"id": s.customer_id, "role": "customer", "@referredType": "Customer"}],
        "place": [{"id": s.site_id, "role": "installationAddress", "@referredType": "GeographicSite"}]
        if s.site_id
        else [],
        "serviceSpecification": {"id": s.specification_id, "name": s.name} if s.specification_id else None,
        "productOffering": {"id": s.offering_id, "name": s.offering_name},
        "serviceCharacteristic": [{"name": k, "value": v} for k, v in sorted(s.characteristics.items())],
        "supportingResource": s.resources,
        "externalReference": {"adapter": s.adapter, "networkRef": s.network_ref},
        "serviceOrderItem": [
            {
                "serviceOrderId": h.order_id,
                "itemId": h.order_item_id,
                "itemAction": h.action,
                "state": h.state,
                "at": iso(h.at),
                "@referredType": "ProductOrder",
            }
            for h in s.history
        ],
        "lastUpdate": iso(s.updated_at),
    }
