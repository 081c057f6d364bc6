"""The agreed terms of an accepted quote, read by billing and revenue recognition through the face.

A quote's priced lines are what the customer agreed to: for each line (``item_ref``, the same reference the
product order's items carry), its offering, quantity, site and every price component with its list amount,
discount and net amount, as priced when the quote was last priced (``quoteItem.pricing``). Bundles carry the
split of their recurring and one-time totals over their members by standalone selling price
(``bundle_allocation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from turnup.quoting.orm import Quote


@dataclass(frozen=True)
class AgreedPrice:
    """One price component of an agreed line (TMF648 quoteItemPrice)."""

    name: str
    price_type: str  # recurring | oneTime | usage
    recurring_period: str | None  # e.g. "month" for recurring prices
    offering_price_id: str | None
    from_offering: str  # the offering (or bundle member) the price belongs to
    unit_price: Decimal
    quantity: Decimal
    list_amount: Decimal
    discount_percent: Decimal
    net_amount: Decimal
    unit_of_measure: str | None = None  # usage prices
    tiers: tuple[dict[str, Any], ...] = ()  # usage prices


@dataclass(frozen=True)
class AgreedLine:
    item_ref: str
    offering_id: str
    offering_name: str
    site_id: str
    quantity: int
    currency: str
    discount_percent: Decimal  # the discount applied to the line
    prices: tuple[AgreedPrice, ...]
    # bundles: [{"offering": member name, "recurring": "12.00", "oneTime": "0.00"}, ...] (by standalone price)
    bundle_allocation: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class AgreedTerms:
    quote_id: str
    customer_id: str
    state: str
    currency: str | None
    contract_term_months: int
    accepted_at: datetime | None
    agreement_id: str | None
    order_id: str | None
    lines: tuple[AgreedLine, ...]


def _dec(value: Any, default: str = "0") -> Decimal:
    if isinstance(value, dict):
        value = value.get("value")
    return Decimal(str(value if value not in (None, "") else default))


def _price(doc: dict[str, Any]) -> AgreedPrice:
    pop = doc.get("productOfferingPrice") or {}
    return AgreedPrice(
        name=str(doc.get("name", "")),
        price_type=str(doc.get("priceType", "")),
        recurring_period=doc.get("recurringChargePeriod"),
        offering_price_id=pop.get("id"),
        from_offering=str(doc.get("fromOffering", "")),
        unit_price=_dec(doc.get("unitPrice")),
        quantity=_dec(doc.get("quantity"), "1"),
        list_amount=_dec(doc.get("listPrice")),
        discount_percent=_dec(doc.get("discountPercent")),
        net_amount=_dec(doc.get("price")),
        unit_of_measure=doc.get("unitOfMeasure"),
        tiers=tuple(doc.get("tiers") or ()),
    )


def agreed_terms(session: Session, quote_id: str) -> AgreedTerms | None:
    """The priced lines of quote ``quote_id`` (None when there is no such quote). Lines of a quote never
    priced carry no prices."""
    quote = session.get(Quote, quote_id)
    if quote is None:
        return None
    lines = []
    for item in quote.items:
        pricing = item.pricing or {}
        lines.append(
            AgreedLine(
                item_ref=item.item_ref,
                offering_id=item.offering_id,
                offering_name=item.offering_name,
                site_id=item.site_id,
                quantity=item.quantity,
                currency=str(pricing.get("currency") or quote.currency or ""),
                discount_percent=_dec(pricing.get("appliedDiscountPercent"), str(item.discount_percent)),
                prices=tuple(_price(doc) for doc in pricing.get("quoteItemPrice") or ()),
                bundle_allocation=tuple(pricing.get("bundleAllocation") or ()),
            )
        )
    return AgreedTerms(
        quote_id=quote.id,
        customer_id=quote.customer_id,
        state=quote.state,
        currency=quote.currency,
        contract_term_months=quote.contract_term_months,
        accepted_at=quote.accepted_at,
        agreement_id=quote.agreement_id,
        order_id=quote.order_id,
        lines=tuple(lines),
    )
