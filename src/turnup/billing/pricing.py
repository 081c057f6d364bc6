"""What a delivered service is charged: its share of the order item's agreed (or catalog) prices.

- The order's accepted quote, when there is one (``quoting.agreed_terms``; the line with the order item's
  ``item_ref``): each recurring / one-time component at its net (discounted) amount. Without a quote, the
  catalog's live list prices (``catalog.offering_terms``) times the item's quantity.
- An order item realised by several services is charged once: on its first service (plan order). A bundle
  is charged per member: its recurring and one-time totals split over the members by standalone selling
  price (the quote's ``bundle_allocation``, else ``catalog.standalone_weight`` with ``catalog.allocate``),
  each member's share on the first service delivering one of the member's specifications.
- The product tax category is the offering's ``reportingAttributes.taxCategory`` (default ``standard``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from turnup import catalog, ordering, quoting
from turnup.kernel import clock
from turnup.kernel.errors import InvalidInput

DEFAULT_TAX_CATEGORY = "standard"


@dataclass(frozen=True)
class PriceComponent:
    name: str
    price_type: str  # recurring | oneTime
    amount: Decimal  # recurring: per bill period (month)
    currency: str
    tax_category: str


@dataclass(frozen=True)
class ServicePrices:
    order_id: str | None
    order_item_id: str | None
    offering_id: str | None
    components: tuple[PriceComponent, ...]


def _tax_category(offering: catalog.OfferingTerms | None) -> str:
    if offering is None:
        return DEFAULT_TAX_CATEGORY
    return str((offering.reporting_attributes or {}).get("taxCategory") or DEFAULT_TAX_CATEGORY)


def _check(components: list[PriceComponent], where: str) -> tuple[PriceComponent, ...]:
    for c in components:
        if c.amount < 0:
            raise InvalidInput(f"{where}: price component {c.name!r} is negative ({c.amount})")
    return tuple(components)


def activation_specs(session: Session, order_id: str) -> dict[str, str | None]:
    """The specification each service an order's plan activates delivers."""
    return {
        p.service_id: p.specification_id
        for p in ordering.plan_items(session, order_id)
        if p.kind == "serviceActivation"
    }


def service_for_plan_item(session: Session, order_id: str, plan_item_id: str) -> tuple[str, str] | None:
    """(service id, order item id) of the service a plan step (a hand-over or installation wait) belongs
    to: the first service the same order item activates for the same specification, else its first one."""
    plan = ordering.plan_items(session, order_id)
    step = next((p for p in plan if p.id == plan_item_id), None)
    if step is None:
        return None
    activations = [p for p in plan if p.kind == "serviceActivation" and p.order_item_id == step.order_item_id]
    if not activations:
        return None
    same = next((p for p in activations if p.specification_id == step.specification_id), activations[0])
    return same.service_id, step.order_item_id


WAIT_KINDS = ("fieldVisit", "shipment", "pickup", "projectMilestone")


def charged_at_milestone(session: Session, order_id: str | None, service_id: str) -> bool:
    """Whether the service's one-time charges wait for a hand-over or installation milestone: its order item
    has a wait step (field visit, shipment, pickup, project milestone) for the service's specification."""
    if not order_id:
        return False
    plan = ordering.plan_items(session, order_id)
    own = next((p for p in plan if p.service_id == service_id and p.kind == "serviceActivation"), None)
    if own is None:
        return False
    return any(
        p.kind in WAIT_KINDS
        and p.order_item_id == own.order_item_id
        and p.specification_id == own.specification_id
        for p in plan
    )


def service_prices(
    session: Session, service_id: str, order_id: str | None, order_item_id: str | None
) -> ServicePrices:
    """The price components charged on this service (empty when another service of the item carries them)."""
    empty = ServicePrices(order_id, order_item_id, None, ())
    if not order_id or not order_item_id:
        return empty
    product = ordering.ordered_product(session, order_item_id)
    if product is None or service_id not in product.service_ids:
        return empty
    offering = catalog.offering_terms(session, product.offering_id)
    result = ServicePrices(order_id, order_item_id, product.offering_id, ())
    members = catalog.bundle_members_of(session, product.offering_id)
    member_name: str | None = None
    if members:
        spec_of = activation_specs(session, order_id)
        owner = next((m for m in members if spec_of.get(service_id) in m.specification_ids), None)
        if owner is None:
            return result
        first = next(
            (sid for sid in product.service_ids if spec_of.get(sid) in owner.specification_ids), None
        )
        if first != service_id:
            return result
        member_name = owner.name
    elif product.service_ids[0] != service_id:
        return result
    tax = _tax_category(offering)
    order = ordering.get_order(session, order_id)
    where = f"productOrder {order_id} item {product.item_ref}"
    terms = quoting.agreed_terms(session, order.quote_id) if order.quote_id else None
    line = next((ln for ln in terms.lines if ln.item_ref == product.item_ref), None) if terms else None
    components: list[PriceComponent] = []
    if line is not None:
        if member_name is not None:
            share = next((a for a in line.bundle_allocation if a.get("offering") == member_name), None)
            if share is not None:
                for key, kind in (("recurring", "recurring"), ("oneTime", "oneTime")):
                    amount = Decimal(str(share.get(key) or "0"))
                    if amount:
                        label = "monthly" if kind == "recurring" else "one-time"
                        components.append(
                            PriceComponent(
                                f"{line.offering_name} {label} ({member_name})",
                                kind,
                                amount,
                                line.currency,
                                tax,
                            )
                        )
        else:
            components.extend(
                PriceComponent(p.name, p.price_type, p.net_amount, line.currency, tax)
                for p in line.prices
                if p.price_type in ("recurring", "oneTime")
            )
        return ServicePrices(order_id, order_item_id, product.offering_id, _check(components, where))
    if offering is None:
        return result
    now = clock.now()
    live = [
        p for p in offering.prices if p.price_type in ("recurring", "oneTime") and catalog.live_price(p, now)
    ]
    quantity = Decimal(product.quantity)
    if member_name is not None:
        member_terms = list(offering.members)
        weights = [catalog.standalone_weight(m, now) for m in member_terms]
        index = next(i for i, m in enumerate(member_terms) if m.name == member_name)
        for p in live:
            part = catalog.allocate(catalog.q2(p.amount * quantity), weights)[index]
            if part:
                components.append(
                    PriceComponent(f"{p.name} ({member_name})", p.price_type, part, p.currency, tax)
                )
    else:
        components.extend(
            PriceComponent(p.name, p.price_type, catalog.q2(p.amount * quantity), p.currency, tax)
            for p in live
        )
    return ServicePrices(order_id, order_item_id, product.offering_id, _check(components, where))
