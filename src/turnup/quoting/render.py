"""TMF648 quote documents, approval rules and approval steps as JSON."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from turnup.catalog import money_text
from turnup.kernel.hrefs import api_base, href, iso
from turnup.quoting.orm import ApprovalRule, Quote, QuoteApproval, QuoteItem

API = "quoteManagement"
APPROVAL_API = "turnupApproval"
APPROVAL_BASE = api_base(APPROVAL_API)


def _money(currency: str | None, value: Decimal | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {"unit": currency or "", "value": money_text(Decimal(value))}


def render_item(item: QuoteItem) -> dict[str, Any]:
    pricing = item.pricing or {}
    return {
        "id": item.item_ref,
        "@type": "QuoteItem",
        "action": "add",
        "quantity": item.quantity,
        "state": "approved" if item.pricing else "inProgress",
        "productOffering": {
            "id": item.offering_id,
            "name": item.offering_name,
            "href": href("productCatalogManagement", "productOffering", item.offering_id),
            "@referredType": "ProductOffering",
        },
        "product": {
            "place": [
                {
                    "id": item.site_id,
                    "@referredType": "GeographicSite",
                    "href": href("geographicSiteManagement", "geographicSite", item.site_id),
                }
            ],
            "productCharacteristic": [
                {"name": k, "value": v} for k, v in sorted(item.characteristics.items())
            ],
        },
        "discountPercent": f"{Decimal(item.discount_percent).normalize():f}",
        "quoteItemPrice": pricing.get("quoteItemPrice", []),
        "pricing": {k: v for k, v in pricing.items() if k != "quoteItemPrice"} or None,
        "reservedResource": item.holds or [],
    }


def render_approval(a: QuoteApproval) -> dict[str, Any]:
    return {
        "id": a.id,
        "href": href(APPROVAL_API, "approvalRequest", a.id),
        "@type": "Authorization",
        "quoteId": a.quote_id,
        "quoteVersion": a.quote_version,
        "step": a.step,
        "name": a.role,
        "state": a.state,
        "reason": a.reasons,
        "rule": a.rules,
        "requestedDate": iso(a.requested_at),
        "givenDate": iso(a.decided_at),
        "approver": a.decided_by,
        "comment": a.comment,
    }


def render_quote(q: Quote) -> dict[str, Any]:
    cur = q.currency
    priced = q.priced_at is not None
    return {
        "id": q.id,
        "href": href(API, "quote", q.id),
        "@type": "Quote",
        "version": str(q.version),
        "state": q.state,
        "stateReason": q.state_reason,
        "description": q.description,
        "externalId": q.external_id,
        "quoteDate": iso(q.quote_date),
        "validFor": {"startDateTime": iso(q.quote_date), "endDateTime": iso(q.valid_until)},
        "contractTermMonths": q.contract_term_months,
        "relatedParty": [
            {
                "id": q.customer_id,
                "role": "customer",
                "@referredType": "Customer",
                "href": href("customerManagement", "customer", q.customer_id),
            }
        ],
        "quoteItem": [render_item(i) for i in q.items],
        "quoteTotalPrice": [
            {
                "priceType": "recurring",
                "recurringChargePeriod": "month",
                "price": {"dutyFreeAmount": _money(cur, q.recurring_total)},
                "listPrice": _money(cur, q.recurring_list_total),
            },
            {
                "priceType": "oneTime",
                "price": {"dutyFreeAmount": _money(cur, q.one_time_total)},
                "listPrice": _money(cur, q.one_time_list_total),
            },
            {
                "priceType": "usage",
                "name": "estimated usage per month",
                "price": {"dutyFreeAmount": _money(cur, q.usage_total)},
            },
        ]
        if priced
        else [],
        "contractValue": _money(cur, q.contract_value),
        "marginPercent": None if q.margin_percent is None else f"{Decimal(q.margin_percent):f}",
        "pricedAt": iso(q.priced_at),
        "holds": {
            "state": q.holds_state,
            "until": iso(q.valid_until) if q.holds_state == "held" else None,
            "stockReservationId": q.stock_reservation_id,
            "resourceReservationId": q.logical_reservation_id,
        },
        "approvalStatus": q.approval_status,
        "authorization": [render_approval(a) for a in q.approvals if a.quote_version == q.version],
        "complianceHold": {
            "held": q.compliance_hold,
            "caseId": q.compliance_case_id,
            "reasons": q.compliance_reasons or [],
            "screening": q.screening,
        },
        "agreement": (
            [
                {
                    "id": q.agreement_id,
                    "@referredType": "Agreement",
                    "href": href("agreementManagement", "agreement", q.agreement_id),
                }
            ]
            if q.agreement_id
            else []
        ),
        "productOrder": (
            {
                "id": q.order_id,
                "@referredType": "ProductOrder",
                "href": href("productOrderingManagement", "productOrder", q.order_id),
            }
            if q.order_id
            else None
        ),
        "effectiveQuoteCompletionDate": iso(q.accepted_at),
        "createdAt": iso(q.created_at),
        "lastUpdate": iso(q.updated_at),
    }


def render_rule(r: ApprovalRule) -> dict[str, Any]:
    return {
        "id": r.id,
        "href": href(APPROVAL_API, "approvalRule", r.id),
        "@type": "ApprovalRule",
        "name": r.name,
        "description": r.description,
        "priority": r.priority,
        "active": r.active,
        "conditions": r.conditions,
        "chain": r.chain,
        "maxDiscountPercent": None
        if r.max_discount_percent is None
        else f"{Decimal(r.max_discount_percent).normalize():f}",
        "createdAt": iso(r.created_at),
        "lastUpdate": iso(r.updated_at),
    }
