"""TMF635 JSON for usage records (and their review state, a Turnup extension)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from turnup.kernel.hrefs import href, iso
from turnup.usage.orm import UsageRecord

API = "usageManagement"


def _num(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")


def render_usage(u: UsageRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": u.id,
        "href": href(API, "usage", u.id),
        "@type": "Usage",
        "usageDate": iso(u.usage_date),
        "usageType": u.usage_type,
        "description": u.description,
        "status": u.status,
        "usageCharacteristic": [
            {"name": "quantity", "valueType": "number", "value": _num(u.quantity)},
            {"name": "serviceId", "valueType": "string", "value": u.service_id},
        ],
        "relatedService": {"id": u.service_id, "@referredType": "Service"},
        "relatedParty": (
            [{"id": u.customer_id, "role": "customer", "@referredType": "Customer"}] if u.customer_id else []
        ),
        "billingAccount": (
            {"id": u.billing_account_id, "@referredType": "BillingAccount"} if u.billing_account_id else None
        ),
        "ratedProductUsage": [],
        "review": None,
        "createdAt": iso(u.created_at),
        "lastUpdate": iso(u.updated_at),
    }
    if u.amount is not None and u.status in ("rated", "billed"):
        doc["ratedProductUsage"] = [
            {
                "@type": "RatedProductUsage",
                "ratingDate": iso(u.rated_at),
                "ratingAmountType": "total",
                "usageRatingTag": "usage",
                "isBilled": u.status == "billed",
                "currencyCode": u.currency,
                "taxExcludedRatingAmount": {"unit": u.currency, "value": f"{Decimal(u.amount):.2f}"},
                "offerTariffType": u.price_source,
                "productOfferingPrice": {"id": u.price_id} if u.price_id else None,
                "tier": u.tiers or [],
                "billRef": u.bill_ref,
            }
        ]
    if u.review_state is not None:
        doc["review"] = {
            "state": u.review_state,
            "reason": u.review_reason,
            "message": u.review_message,
            "resolution": u.resolution,
        }
    return doc
