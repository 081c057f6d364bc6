"""Revenue contracts from product orders: the order's lines (priced by its accepted quote, else by the
catalog) segmented into performance obligations, the transaction price allocated by relative SSP.

A contract whose obligations cannot be allocated (a missing standalone selling price, a residual that is not
appropriate) is stored in ``review`` with the reason and no obligations: a review item for finance, never a
guess. ``ensure_contract`` is idempotent (one contract per order).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import catalog, ordering, quoting
from turnup.catalog import OfferingTerms
from turnup.kernel import audit, clock
from turnup.kernel.errors import InvalidInput
from turnup.revenue.engine import (
    PATTERN,
    USAGE,
    Allocable,
    Component,
    LineSpec,
    Obligation,
    RevenueError,
    allocate,
    segment_contract,
)
from turnup.revenue.orm import RevenueContract, RevenueObligation

ACTOR = "system:revenue"
DEFAULT_TERM_MONTHS = 12  # an order without a quote: the minimum term of the demo's offerings
ZERO = Decimal("0.00")


def _dec(value: Any) -> Decimal | None:
    if isinstance(value, dict):
        value = value.get("value")
    return None if value in (None, "") else Decimal(str(value))


def _recognition(offering: OfferingTerms) -> dict[str, Any]:
    return dict(offering.revenue_recognition or {})


def _delivery(offering: OfferingTerms) -> frozenset[str]:
    flags: set[str] = set()
    for spec in offering.specifications:
        req = spec.delivery_requirements or {}
        if req.get("fieldVisit"):
            flags.add("fieldVisit")
        if req.get("implementationProject"):
            flags.add("project")
        if any(p.get("fulfilmentMethod") in ("ship", "pickup") for p in req.get("physical") or []):
            flags.add("shipped")
    return frozenset(flags)


def _milestones(offering: OfferingTerms) -> tuple[tuple[str, Decimal], ...]:
    for spec in offering.specifications:
        project = (spec.delivery_requirements or {}).get("implementationProject") or {}
        if project:
            return tuple(
                (str(m.get("name")), Decimal(str(m.get("revenuePercent") or 0)))
                for m in project.get("milestones") or []
            )
    return ()


def _list_price(offering: OfferingTerms, price_type: str) -> Decimal | None:
    now = clock.now()
    amounts = [p.amount for p in offering.prices if p.price_type == price_type and catalog.live_price(p, now)]
    return sum(amounts, ZERO) if amounts else None


def _ssp(offering: OfferingTerms) -> tuple[str | None, Decimal | None]:
    """The method and SSP of an offering's main obligation: its revenueRecognition SSP; else the observable
    price it is sold for on its own (a service: its recurring list price, ``catalog.standalone_weight``; a
    project or hardware: its one-time list price); else none (a review item)."""
    recognition = _recognition(offering)
    method = recognition.get("method")
    declared = _dec(recognition.get("standaloneSellingPrice"))
    if declared is not None:
        return method, declared
    if method in ("percentComplete", "pointInTime"):
        return method, _list_price(offering, "oneTime")
    recurring = _list_price(offering, "recurring")
    if recurring is None:
        return method, None
    return method, catalog.standalone_weight(offering, clock.now())


def _part(ref: str, offering: OfferingTerms) -> LineSpec:
    method, ssp = _ssp(offering)
    delivery = _delivery(offering)
    return LineSpec(
        ref=ref,
        product=offering.name,
        offering_id=offering.id,
        method=method,
        ssp=ssp,
        delivery=delivery,
        install_ssp=_list_price(offering, "oneTime") if "fieldVisit" in delivery else None,
        milestones=_milestones(offering),
        recurring_ssp=_list_price(offering, "recurring"),
    )


@dataclass(frozen=True)
class _Line:
    spec: LineSpec
    specs_of: dict[str, list[str]]  # product -> its specification ids


def _components_from_quote(line: quoting.AgreedLine) -> tuple[Component, ...]:
    return tuple(Component(p.name, p.price_type, p.net_amount, p.list_amount) for p in line.prices)


def _components_from_catalog(offering: OfferingTerms, quantity: int, term: int) -> tuple[Component, ...]:
    """An order without a quote: the offering priced for the product it creates (its default
    characteristics, as its services are created), no discount beyond the catalog's own rules."""
    priced = catalog.price_offering(
        offering,
        quantity=quantity,
        characteristics=catalog.default_characteristics(offering),
        requested_discount=Decimal(0),
        term_months=term,
        now=clock.now(),
        where="productOrderItem",
    )
    return tuple(Component(c.name, c.price_type, c.net_amount, c.list_amount) for c in priced.components)


def _line(ref: str, offering: OfferingTerms, quantity: int, components: tuple[Component, ...]) -> _Line:
    base = _part(ref, offering)
    members = tuple(_part(ref, m) for m in offering.members)
    spec = LineSpec(
        ref=ref,
        product=offering.name,
        offering_id=offering.id,
        components=components,
        method=base.method,
        ssp=base.ssp,
        delivery=base.delivery,
        members=members,
        quantity=quantity,
        install_ssp=base.install_ssp,
        milestones=base.milestones,
        recurring_ssp=base.recurring_ssp,
    )
    specs_of = {offering.name: [s.id for s in offering.specifications]}
    for m in offering.members:
        specs_of[m.name] = [s.id for s in m.specifications]
    if offering.members:  # the bundle's usage obligation is met by every member's service
        specs_of[offering.name] = [sid for ids in list(specs_of.values()) for sid in ids]
    return _Line(spec, specs_of)


def contract_of_order(session: Session, order_id: str) -> RevenueContract | None:
    return session.scalar(select(RevenueContract).where(RevenueContract.order_id == order_id))


def ensure_contract(session: Session, order_id: str, actor: str = ACTOR) -> RevenueContract | None:
    """The order's revenue contract, created (with its obligations, allocated) if it does not exist yet.
    None for an order that adds nothing (a disconnect or a change of existing services). Never commits."""
    existing = contract_of_order(session, order_id)
    if existing is not None:
        return existing
    order = ordering.get_order(session, order_id)
    adds = [i for i in order.items if i.action == "add"]
    if not adds:
        return None
    terms = quoting.agreed_terms(session, order.quote_id) if order.quote_id else None
    agreed = {line.item_ref: line for line in terms.lines} if terms else {}
    term = terms.contract_term_months if terms and terms.contract_term_months else DEFAULT_TERM_MONTHS
    now = clock.now()
    lines: list[_Line] = []
    currency = (terms.currency if terms else None) or ""
    problem: str | None = None
    for item in adds:
        offering = catalog.offering_terms(session, item.offering_id)
        if offering is None:
            problem = f"productOrderItem {item.item_ref}: offering {item.offering_id} is not in the catalog"
            break
        line = agreed.get(item.item_ref)
        if line is not None:
            components = _components_from_quote(line)
            currency = currency or line.currency
        else:
            try:
                components = _components_from_catalog(offering, item.quantity, term)
            except InvalidInput as error:  # e.g. an offering without an active price: nothing to allocate
                problem = str(error)
                break
            currency = currency or next((p.currency for p in offering.prices), "")
        lines.append(_line(item.item_ref, offering, item.quantity, components))
    obligations: list[Obligation] = []
    allocation: dict[str, Decimal] = {}
    method: str | None = None
    price = ZERO
    if problem is None:
        try:
            obligations = segment_contract([line.spec for line in lines], term)
            fixed = [o for o in obligations if o.kind != USAGE]
            price = sum((o.billed for o in fixed), ZERO)
            if any(o.billed < 0 for o in fixed):
                raise RevenueError("price: negative prices cannot be allocated")
            result = allocate(price, [Allocable(o.key, o.ssp, o.residual_allowed) for o in fixed])
            allocation, method = result.amounts, result.method
        except RevenueError as error:
            problem = str(error)
    contract = RevenueContract(
        order_id=order.id,
        quote_id=order.quote_id,
        customer_id=order.customer_id,
        currency=(currency or "GBP")[:3],
        term_months=term,
        transaction_price=price,
        allocation_method=method,
        status="review" if problem else "active",
        review_reason=problem,
        created_at=now,
        updated_at=now,
    )
    session.add(contract)
    session.flush()
    specs_by_line = {line.spec.ref: line.specs_of for line in lines}
    if problem is None:
        for o in obligations:
            session.add(
                RevenueObligation(
                    contract_id=contract.id,
                    key=o.key,
                    item_ref=o.ref,
                    product=o.product,
                    offering_id=o.offering_id,
                    specification_ids=specs_by_line.get(o.ref, {}).get(o.product, []),
                    kind=o.kind,
                    pattern=PATTERN[o.kind],
                    ssp=o.ssp,
                    allocated=allocation.get(o.key, ZERO),
                    billed_plan=o.billed,
                    months=o.months,
                    milestones=[[name, str(pct)] for name, pct in o.milestones],
                    accepted=[],
                    modifications=[],
                    service_id=None,
                    state="pending",
                    start_date=None,
                    stop_date=None,
                    recognised=ZERO,
                    created_at=now,
                    updated_at=now,
                )
            )
        session.flush()
    audit.record(
        session,
        actor=actor,
        action="revenueContract.review" if problem else "revenueContract.create",
        resource_type="revenueContract",
        resource_id=contract.id,
        details={
            "orderId": order.id,
            "quoteId": order.quote_id,
            "transactionPrice": f"{price:f}",
            "allocationMethod": method,
            "obligations": {
                o.key: f"{allocation.get(o.key, ZERO):f}" for o in obligations if o.kind != USAGE
            },
            **({"reviewReason": problem} if problem else {}),
        },
    )
    return contract
