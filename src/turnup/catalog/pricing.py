"""Price an offering from its catalog prices (pure, no database): the rules quotes and change orders share.

- a bundle's own prices replace its members' recurring and one-time prices; members' usage prices still
  apply. A bundle without a recurring/one-time price of its own is priced as the sum of its members;
- a price applies only while live (not retired, inside ``validFor``) and, when it has
  ``prodSpecCharValueUse``, only to products whose characteristics take those values;
- automatic catalog discounts (``volume`` when the quantity reaches ``minQuantity``, ``term`` when the
  contract term reaches ``minTermMonths``) do not stack: the largest applies. A requested discount replaces
  it when larger. Discounts apply to recurring and one-time charges, never to usage rates;
- usage is estimated from a characteristic ``estimatedUsage.<unit>`` (per month, whole line) and rated on
  graduated tiers; without an estimate the usage charge is 0 and the tiers are shown;
- the catalog's ``approvalThreshold`` is the most a seller may give without approval.

``price_offering`` raises ``InvalidInput`` naming ``where`` for an offering it cannot price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from turnup.catalog.characteristics import bundle_members, price_applies
from turnup.catalog.money import (
    ZERO,
    Component,
    TierSpec,
    Totals,
    component,
    money_text,
    tiered_charge,
    totals,
)
from turnup.catalog.queries import OfferingTerms, PriceTerms
from turnup.kernel.errors import InvalidInput

USAGE_PREFIX = "estimatedUsage."


@dataclass(frozen=True)
class OfferingPrice:
    """An offering priced for a quantity and characteristics: its charges and their totals."""

    currency: str
    automatic_discount: Decimal
    automatic_rule: str | None
    effective_discount: Decimal
    approval_threshold: Decimal | None
    components: list[Component]
    documents: list[dict[str, Any]]  # one per component (TMF quoteItemPrice / orderItemPrice shape)
    totals: Totals


def live_price(price: PriceTerms, now: datetime) -> bool:
    if price.lifecycle_status == "retired":
        return False
    if price.valid_from and price.valid_from > now:
        return False
    return not (price.valid_to and price.valid_to <= now)


def _tiers(price: PriceTerms) -> list[TierSpec]:
    return [
        TierSpec(
            Decimal(str(t["from"])),
            None if t.get("to") is None else Decimal(str(t["to"])),
            Decimal(str(t["rate"])),
        )
        for t in price.tiers or []
    ]


def discounts(
    offering: OfferingTerms, quantity: int, term_months: int
) -> tuple[Decimal, str | None, Decimal | None]:
    """The automatic discount (percent, rule name) and the approval threshold of the offering."""
    auto, auto_rule, threshold = Decimal(0), None, None
    for rule in offering.discount_rules or []:
        kind = rule.get("kind")
        percent = Decimal(str(rule.get("discountPercent", "0")))
        if kind == "approvalThreshold":
            value = Decimal(str(rule["maxDiscountPercentWithoutApproval"]))
            threshold = value if threshold is None else min(threshold, value)
        elif kind == "volume" and quantity >= int(rule["minQuantity"]) and percent > auto:
            auto, auto_rule = percent, rule.get("name") or f"volume {rule['minQuantity']}+"
        elif kind == "term" and term_months >= int(rule["minTermMonths"]) and percent > auto:
            auto, auto_rule = percent, rule.get("name") or f"term {rule['minTermMonths']}+ months"
    return auto, auto_rule, threshold


def price_rows(
    offering: OfferingTerms, now: datetime, characteristics: dict[str, Any] | None = None
) -> list[tuple[OfferingTerms, PriceTerms]]:
    """The prices that apply (source offering, price), in catalog order."""
    chars = characteristics or {}

    def applies(price: PriceTerms) -> bool:
        return live_price(price, now) and price_applies(price, chars)

    own = [(offering, price) for price in offering.prices if applies(price)]
    if not offering.members:
        return own
    rows = list(own)
    has_own_charges = any(p.price_type in ("recurring", "oneTime") for _, p in own)
    for member in bundle_members(offering)[1:]:
        for price in member.prices:
            if applies(price) and (price.price_type == "usage" or not has_own_charges):
                rows.append((member, price))
    return rows


def _price_doc(
    c: Component, currency: str, price: PriceTerms, source: OfferingTerms, extra: dict[str, Any]
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": c.name,
        "priceType": c.price_type,
        "recurringChargePeriod": price.recurring_period_type,
        "productOfferingPrice": {"id": price.id, "name": price.name, "@referredType": "ProductOfferingPrice"},
        "fromOffering": source.name,
        "unitPrice": {"unit": currency, "value": f"{c.unit_price.normalize():f}"},
        "quantity": f"{c.quantity.normalize():f}",
        "listPrice": {"unit": currency, "value": money_text(c.list_amount)},
        "discountPercent": f"{c.discount_percent.normalize():f}",
        "price": {"unit": currency, "value": money_text(c.net_amount)},
    }
    doc.update(extra)
    return doc


def price_offering(
    offering: OfferingTerms,
    *,
    quantity: int,
    characteristics: dict[str, Any],
    requested_discount: Decimal,
    term_months: int,
    now: datetime,
    where: str,
) -> OfferingPrice:
    """Price ``quantity`` units of the offering with these characteristics (see the module's rules)."""
    auto, auto_rule, threshold = discounts(offering, quantity, term_months)
    effective = max(auto, requested_discount)
    rows = price_rows(offering, now, characteristics)
    if not any(p.price_type in ("recurring", "oneTime") for _, p in rows):
        raise InvalidInput(f"{where}.productOffering: offering {offering.name!r} has no active price")
    currencies = {p.currency for _, p in rows}
    if len(currencies) != 1:
        raise InvalidInput(
            f"{where}.productOffering: offering {offering.name!r} mixes currencies "
            f"{', '.join(sorted(currencies))}"
        )
    currency = currencies.pop()
    comps: list[Component] = []
    docs: list[dict[str, Any]] = []
    qty = Decimal(quantity)
    for source, price in rows:
        if price.price_type == "usage":
            units = str((price.unit_of_measure or {}).get("units"))
            estimate = Decimal(str(characteristics.get(USAGE_PREFIX + units, "0")))
            charge = tiered_charge(estimate, _tiers(price))
            c = Component(price.name, "usage", Decimal(0), estimate, Decimal(0), charge, charge)
            docs.append(
                _price_doc(
                    c,
                    currency,
                    price,
                    source,
                    {
                        "unitOfMeasure": units,
                        "estimatedUsage": f"{estimate.normalize():f}",
                        "tiers": price.tiers,
                    },
                )
            )
        else:
            c = component(price.name, price.price_type, Decimal(price.amount), qty, effective)
            docs.append(_price_doc(c, currency, price, source, {}))
        comps.append(c)
    return OfferingPrice(
        currency=currency,
        automatic_discount=auto,
        automatic_rule=auto_rule,
        effective_discount=effective,
        approval_threshold=threshold,
        components=comps,
        documents=docs,
        totals=totals(comps),
    )


def standalone_weight(member: OfferingTerms, now: datetime) -> Decimal:
    """A bundle member's share weight: its standalone selling price, else its recurring list price."""
    ssp = ((member.revenue_recognition or {}).get("standaloneSellingPrice") or {}).get("value")
    if ssp is not None:
        return Decimal(str(ssp))
    return sum(
        (
            Decimal(price.amount)
            for price in member.prices
            if price.price_type == "recurring" and live_price(price, now)
        ),
        ZERO,
    )
