"""Price a quote line from the catalog (TMF620): recurring, one-time and tiered usage prices, bundle
prices, automatic (volume, term) and requested discounts, and the delivery requirements the line needs.

Rules (also in docs/adr/0005-quote-holds.md; the price calculation itself is ``turnup.catalog.pricing``,
shared with change orders):

- a bundle's own prices replace its members' recurring and one-time prices; members' usage prices still
  apply. A bundle without a recurring/one-time price of its own is priced as the sum of its members;
- automatic catalog discounts (``volume`` when the line quantity reaches ``minQuantity``, ``term`` when the
  quote's contract term reaches ``minTermMonths``) do not stack: the largest applies. A requested discount
  replaces it when larger. Discounts apply to recurring and one-time charges, never to usage rates;
- usage is estimated from a characteristic ``estimatedUsage.<unit>`` (per month, whole line) and rated on
  graduated tiers; without an estimate the usage charge is 0 and the tiers are shown;
- the catalog's ``approvalThreshold`` is the most a seller may give without approval;
- characteristics a line may carry: the characteristics its specifications define (checked against their
  allowed values and ranges), the offering's provisioning parameters, ``numberArea`` (area code for
  phone numbers), ``ipPoolPurpose`` and ``estimatedUsage.<unit>``; anything else is refused. Prices with
  ``prodSpecCharValueUse`` apply according to the line's characteristics over the offering's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from turnup import catalog
from turnup.accounts import SiteInfo
from turnup.catalog import USAGE_PREFIX, ZERO, Component, OfferingTerms, Totals, allocate, money_text
from turnup.kernel import clock
from turnup.kernel.errors import Conflict, InvalidInput

QUOTE_CHARACTERISTICS = ("numberArea", "ipPoolPurpose")
MAX_DEPTH = 3


@dataclass
class Requirement:
    """One resource a line needs (per unit of the line; multiplied by the line quantity when held)."""

    kind: str  # "physical" or a logical kind (ipv4Prefix, ipv6Prefix, phoneNumber, vlan, asn, circuitId)
    sku: str | None = None
    quantity: int = 1
    parameters: dict[str, Any] = field(default_factory=dict)
    specification: str = ""  # the name of the specification needing it
    specification_id: str = ""


@dataclass
class PricedLine:
    index: int
    offering: OfferingTerms
    site: SiteInfo
    quantity: int
    characteristics: dict[str, Any]
    requested_discount: Decimal
    automatic_discount: Decimal
    automatic_rule: str | None
    effective_discount: Decimal
    approval_threshold: Decimal | None
    currency: str
    components: list[Component]
    totals: Totals
    cost: Decimal | None
    requirements: list[Requirement]
    eccns: list[str]
    document: dict[str, Any]


def _where(index: int) -> str:
    return f"quoteItem[{index}]"


def offering_problem(offering: OfferingTerms, now: datetime) -> str | None:
    """Why an offering cannot be quoted (retired, not active, not sellable, outside validFor), or None."""
    if offering.lifecycle_status != "active":
        return f"offering {offering.name!r} is {offering.lifecycle_status}"
    if not offering.is_sellable:
        return f"offering {offering.name!r} is not sellable"
    if offering.valid_to and offering.valid_to <= now:
        return f"offering {offering.name!r} is no longer valid (ended {offering.valid_to.isoformat()})"
    for member in offering.members:
        if member.lifecycle_status == "retired":
            return f"bundle member {member.name!r} of {offering.name!r} is retired"
    return None


def _members(offering: OfferingTerms, depth: int = 0) -> list[OfferingTerms]:
    """The offering and every bundle member below it (depth first, catalog order)."""
    if depth > MAX_DEPTH:
        raise InvalidInput(f"productOffering {offering.name!r}: bundle nesting deeper than {MAX_DEPTH}")
    found = [offering]
    for member in offering.members:
        found.extend(_members(member, depth + 1))
    return found


def allowed_characteristics(offering: OfferingTerms) -> set[str]:
    names: set[str] = set(QUOTE_CHARACTERISTICS) | set(catalog.characteristic_definitions(offering))
    for member in _members(offering):
        for spec in member.specifications:
            for action in spec.delivery_requirements.get("provisioning") or []:
                names.update((action.get("parameters") or {}).keys())
        for price in member.prices:
            if price.price_type == "usage" and price.unit_of_measure:
                names.add(USAGE_PREFIX + str(price.unit_of_measure.get("units")))
    return names


def requirements(offering: OfferingTerms) -> tuple[list[Requirement], list[str]]:
    """Every physical and logical resource one unit of the offering needs, and every ECCN it carries."""
    needs: list[Requirement] = []
    eccns: list[str] = []
    for member in _members(offering):
        if member.eccn:
            eccns.append(member.eccn)
        for spec in member.specifications:
            if spec.eccn:
                eccns.append(spec.eccn)
            delivery = spec.delivery_requirements
            for item in delivery.get("physical") or []:
                needs.append(
                    Requirement(
                        "physical",
                        sku=item["sku"],
                        quantity=int(item.get("quantity", 1)),
                        parameters={"fulfilmentMethod": item.get("fulfilmentMethod")},
                        specification=spec.name,
                        specification_id=spec.id,
                    )
                )
            for item in delivery.get("logicalResources") or []:
                needs.append(
                    Requirement(
                        item["kind"],
                        quantity=int(item.get("quantity", 1)),
                        parameters=dict(item.get("parameters") or {}),
                        specification=spec.name,
                        specification_id=spec.id,
                    )
                )
    return needs, sorted(set(eccns))


def _decimal(value: Any, where: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"{where}: {value!r} is not a number") from None
    if not result.is_finite() or result < 0:
        raise InvalidInput(f"{where}: must be a non-negative number")
    return result


def check_characteristics(
    offering: OfferingTerms, characteristics: list[tuple[str, Any]], index: int
) -> dict[str, Any]:
    allowed = allowed_characteristics(offering)
    values: dict[str, Any] = {}
    for j, (name, value) in enumerate(characteristics):
        where = f"{_where(index)}.product.productCharacteristic[{j}]"
        if name not in allowed:
            raise InvalidInput(
                f"{where}.name: unknown characteristic {name!r} for offering {offering.name!r}; "
                f"allowed: {', '.join(sorted(allowed))}",
                reason="Unknown characteristic",
            )
        if name in values:
            raise InvalidInput(f"{where}.name: characteristic {name!r} is given twice")
        problem = catalog.characteristic_problem(offering, name, value, allowed)
        if problem:
            raise InvalidInput(f"{where}.value: {problem}", reason="Characteristic value not allowed")
        if name.startswith(USAGE_PREFIX):
            value = f"{_decimal(value, where + '.value').normalize():f}"
        if name == "numberArea" and not str(value).isdigit():
            raise InvalidInput(f"{where}.value: numberArea must be an area code made of digits, e.g. '0113'")
        values[name] = value
    return values


def price_line(
    session: Session,
    *,
    index: int,
    offering: OfferingTerms,
    site: SiteInfo,
    quantity: int,
    characteristics: dict[str, Any],
    requested_discount: Decimal,
    term_months: int,
) -> PricedLine:
    """Price one line. Raises ``InvalidInput`` naming the line for anything the catalog cannot price."""
    now = clock.now()
    where = _where(index)
    problem = offering_problem(offering, now)
    if problem:
        raise Conflict(
            f"{where}.productOffering: {problem}; it cannot be quoted", reason="Offering not sellable"
        )
    priced = catalog.price_offering(
        offering,
        quantity=quantity,
        characteristics=catalog.default_characteristics(offering) | characteristics,
        requested_discount=requested_discount,
        term_months=term_months,
        now=now,
        where=where,
    )
    auto, auto_rule, threshold = priced.automatic_discount, priced.automatic_rule, priced.approval_threshold
    effective, currency = priced.effective_discount, priced.currency
    comps, docs = priced.components, priced.documents
    qty = Decimal(quantity)
    line_totals = priced.totals
    document: dict[str, Any] = {
        "currency": currency,
        "requestedDiscountPercent": f"{requested_discount.normalize():f}",
        "automaticDiscount": ({"name": auto_rule, "percent": f"{auto.normalize():f}"} if auto_rule else None),
        "appliedDiscountPercent": f"{effective.normalize():f}",
        "approvalThresholdPercent": None if threshold is None else f"{threshold.normalize():f}",
        "quoteItemPrice": docs,
        "totals": {
            "recurring": money_text(line_totals.recurring),
            "oneTime": money_text(line_totals.one_time),
            "usageEstimate": money_text(line_totals.usage),
            "recurringList": money_text(line_totals.recurring_list),
            "oneTimeList": money_text(line_totals.one_time_list),
        },
    }
    if offering.members:
        members = list(offering.members)
        weights = [_weight(m, now) for m in members]
        document["bundleAllocation"] = [
            {"offering": m.name, "recurring": money_text(r), "oneTime": money_text(o)}
            for m, r, o in zip(
                members,
                allocate(line_totals.recurring, weights),
                allocate(line_totals.one_time, weights),
                strict=True,
            )
        ]
    cost = _cost(offering, qty)
    needs, eccns = requirements(offering)
    return PricedLine(
        index=index,
        offering=offering,
        site=site,
        quantity=quantity,
        characteristics=characteristics,
        requested_discount=requested_discount,
        automatic_discount=auto,
        automatic_rule=auto_rule,
        effective_discount=effective,
        approval_threshold=threshold,
        currency=currency,
        components=comps,
        totals=line_totals,
        cost=cost,
        requirements=needs,
        eccns=eccns,
        document=document,
    )


def _weight(member: OfferingTerms, now: datetime) -> Decimal:
    """A bundle member's share weight: its standalone selling price, else its recurring list price."""
    return catalog.standalone_weight(member, now)


def _cost(offering: OfferingTerms, qty: Decimal) -> Decimal | None:
    """Monthly cost from the offering's ``monthlyCost`` reporting attribute (per unit), if known."""
    raw = (offering.reporting_attributes or {}).get("monthlyCost")
    if raw is None:
        return None
    try:
        return Decimal(str(raw)) * qty
    except InvalidOperation:
        return None


def margin_percent(lines: list[PricedLine]) -> Decimal | None:
    """Recurring margin of the whole quote, when every line's cost is known and revenue is positive."""
    if not lines or any(line.cost is None for line in lines):
        return None
    revenue = sum((line.totals.recurring for line in lines), ZERO)
    if revenue <= 0:
        return None
    cost = sum((line.cost for line in lines if line.cost is not None), ZERO)
    return ((revenue - cost) * 100 / revenue).quantize(Decimal("0.01"))
