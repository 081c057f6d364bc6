"""TMF622 ProductOrder documents and the plan view."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import object_session

from turnup.kernel.hrefs import href, iso
from turnup.ordering.model import FINAL, WAIT_KINDS
from turnup.ordering.orm import PlanItem, ProductOrder

API = "productOrderingManagement"
SERVICE_ORDER_API = "serviceOrdering"  # TMF641: each plan item is published as a one-item service order
AWAITING_STATES = ("acknowledged", "inProgress", "held")  # a wait step in these states takes its event


def awaited_events(o: ProductOrder) -> list[dict[str, Any]]:
    """The outside events the order's plan waits for (field work, shipping, milestones): what
    ``POST …/productOrder/{id}/event`` accepts now, one entry per waiting plan item in plan order."""
    session = object_session(o)
    if session is None or o.state in FINAL:  # a finished order awaits nothing: no query
        return []
    rows = session.execute(
        select(PlanItem.adapter_action, PlanItem.id, PlanItem.state, PlanItem.kind)
        .where(
            PlanItem.order_id == o.id,
            PlanItem.kind.in_(WAIT_KINDS),
            PlanItem.state.in_(AWAITING_STATES),
        )
        .order_by(PlanItem.position)
    )
    return [
        {"eventType": event, "planItemId": plan_id, "state": state, "kind": kind}
        for event, plan_id, state, kind in rows
    ]


def render_order(o: ProductOrder) -> dict[str, Any]:
    return {
        "id": o.id,
        "href": href(API, "productOrder", o.id),
        "@type": "ProductOrder",
        "state": o.state,
        "stateReason": o.state_reason,
        "externalId": o.external_id,
        "description": o.description,
        "priority": str(o.priority),
        "orderDate": iso(o.order_date),
        "requestedCompletionDate": iso(o.requested_completion_date),
        "completionDate": iso(o.completion_date),
        "relatedParty": [{"id": o.customer_id, "role": "customer", "@referredType": "Customer"}],
        "productOrderItem": [
            {
                "id": i.item_ref,
                "action": i.action,
                "state": i.state,
                "quantity": i.quantity,
                "productOffering": {"id": i.offering_id, "name": i.offering_name},
                **_item_prices(i.pricing),
            }
            for i in o.items
        ],
        "plan": {"href": href(API, "productOrder", o.id) + "/plan"},
        "awaitedEvent": awaited_events(o),
        "quote": (
            [
                {
                    "id": o.quote_id,
                    "href": href("quoteManagement", "quote", o.quote_id),
                    "@referredType": "Quote",
                }
            ]
            if o.quote_id
            else []
        ),
        "agreement": [
            {"id": a, "href": href("agreementManagement", "agreement", a), "@referredType": "Agreement"}
            for a in o.agreement_ids or []
        ],
        "reservation": list(o.reservation_refs or []),
        "lastUpdate": iso(o.updated_at),
    }


def _amount(currency: str, value: str) -> dict[str, Any]:
    return {"dutyFreeAmount": {"unit": currency, "value": value}}


def _item_prices(pricing: dict[str, Any] | None) -> dict[str, Any]:
    """A priced change (modify) in TMF622 shape: ``itemPrice`` (each price of the item after the change),
    ``itemTotalPrice`` (recurring and one-time totals after the change, each with a ``priceAlteration``
    giving the difference from the current price) and the extension ``priceChange`` (before, after and
    difference, exact decimal text). Nothing for items that were not priced."""
    if not pricing:
        return {}
    currency, after, difference = pricing["currency"], pricing["after"], pricing["difference"]
    periods = [
        p.get("recurringChargePeriod") for p in after["itemPrice"] if p.get("priceType") == "recurring"
    ]
    totals = []
    for kind, period in (("recurring", next((p for p in periods if p), "month")), ("oneTime", None)):
        key = "recurring" if kind == "recurring" else "oneTime"
        totals.append(
            {
                "name": f"{kind} total after the change",
                "priceType": kind,
                "recurringChargePeriod": period,
                "price": _amount(currency, after[key]),
                "priceAlteration": [
                    {
                        "name": "change from the current price",
                        "priceType": kind,
                        "recurringChargePeriod": period,
                        "price": _amount(currency, difference[key]),
                    }
                ],
            }
        )
    return {
        "itemPrice": [
            {
                "name": p["name"],
                "priceType": p["priceType"],
                "recurringChargePeriod": p.get("recurringChargePeriod"),
                "productOfferingPrice": p.get("productOfferingPrice"),
                "price": _amount(currency, p["price"]["value"]),
            }
            for p in after["itemPrice"]
        ],
        "itemTotalPrice": totals,
        "priceChange": {
            "@type": "TurnupPriceChange",
            "currency": currency,
            "before": {"recurring": pricing["before"]["recurring"], "oneTime": pricing["before"]["oneTime"]},
            "after": {"recurring": after["recurring"], "oneTime": after["oneTime"]},
            "difference": difference,
        },
    }


def render_plan_item(p: PlanItem) -> dict[str, Any]:
    return {
        "id": p.id,
        "@type": "ServiceOrderItem",
        "position": p.position,
        "kind": p.kind,
        "action": p.action,
        "state": p.state,
        "productOrderItemId": p.order_item.item_ref,  # the caller's productOrderItem[].id
        "service": {
            "id": p.service_id,
            "name": p.service_name,
            "href": href("serviceInventory", "service", p.service_id),
        },
        "adapter": p.adapter,
        "adapterAction": p.adapter_action,
        "parameters": p.parameters,
        "dependsOn": p.depends_on,
        "attempts": p.attempts,
        "lastError": p.last_error,
        "skipReason": p.skip_reason,
        "startedAt": iso(p.started_at),
        "completedAt": iso(p.completed_at),
    }


def render_service_order(p: PlanItem) -> dict[str, Any]:
    """A plan item as a TMF641 ServiceOrder with one item (the id is the plan item's)."""
    action = "modify" if p.action in ("suspend", "resume") else p.action
    return {
        "id": p.id,
        "href": href(SERVICE_ORDER_API, "serviceOrder", p.id),
        "@type": "ServiceOrder",
        "state": p.state,
        "externalId": p.order_id,
        "productOrder": {"id": p.order_id, "href": href(API, "productOrder", p.order_id)},
        "serviceOrderItem": [
            {
                "id": "1",
                "action": action,
                "state": p.state,
                "@type": "ServiceOrderItem",
                "service": {
                    "id": p.service_id,
                    "name": p.service_name,
                    "href": href("serviceInventory", "service", p.service_id),
                },
                "kind": p.kind,
                "operation": p.action,
                "adapter": p.adapter or None,
            }
        ],
        "startDate": iso(p.started_at),
        "completionDate": iso(p.completed_at),
    }
