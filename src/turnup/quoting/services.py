"""Quote use cases: create, edit, price (with holds, approval chain and screening), approve/reject, cancel,
accept (holds -> allocations, agreement, signature, product order), sweep expired quotes.

States (TMF648): ``inProgress`` (being built) -> ``pending`` (priced, approval outstanding) or ``approved``
(priced, nothing outstanding) -> ``accepted``; ``rejected`` (an approver or the customer said no) and
``cancelled`` (withdrawn or expired) are final, as is ``accepted``. Editing a priced quote re-prices it and
restarts approval. Every use case validates first, then writes, audits, publishes and commits once; a
refusal leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import accounts, agreements, catalog
from turnup.accounts import CustomerInfo
from turnup.catalog import ZERO, add_totals, money_text
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound, TurnupError
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish
from turnup.quoting import approvals, holds, screening
from turnup.quoting.orm import Quote, QuoteApproval, QuoteItem, QuoteVersion
from turnup.quoting.pricing import (
    PricedLine,
    check_characteristics,
    margin_percent,
    offering_problem,
    price_line,
)
from turnup.quoting.render import API, render_quote
from turnup.quoting.schemas import ApprovalDecisionIn, QuoteAccept, QuoteCreate, QuoteItemIn, QuoteUpdate

DEFAULT_VALIDITY = timedelta(days=30)
OPEN = ("inProgress", "pending", "approved")
TRANSITIONS: dict[str, set[str]] = {
    "inProgress": {"pending", "approved", "cancelled"},
    "pending": {"inProgress", "pending", "approved", "rejected", "cancelled"},
    "approved": {"inProgress", "pending", "approved", "accepted", "rejected", "cancelled"},
    "accepted": set(),
    "rejected": set(),
    "cancelled": set(),
}
ILLEGAL = "Illegal state transition"


# --- loading ---------------------------------------------------------------------------------------------


def get_quote(session: Session, quote_id: str, *, lock: bool = False) -> Quote:
    if lock:
        quote = session.scalar(
            select(Quote)
            .where(Quote.id == quote_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    else:
        quote = session.get(Quote, quote_id)
    if quote is None:
        raise NotFound(f"quote {quote_id!r} not found")
    return quote


def _customer(session: Session, customer_id: str, field: str = "relatedParty[0].id") -> CustomerInfo:
    return accounts.live_customer(session, customer_id, field, unknown=InvalidInput)


def _check_transition(quote: Quote, new_state: str) -> None:
    if new_state not in TRANSITIONS[quote.state]:
        raise Conflict(f"state: a {quote.state} quote cannot become {new_state}", reason=ILLEGAL)


def _set_state(session: Session, quote: Quote, new_state: str, actor: str, reason: str | None = None) -> None:
    _check_transition(quote, new_state)
    old = quote.state
    quote.state, quote.state_reason, quote.updated_at = new_state, reason, clock.now()
    if old != new_state:
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="quote.state",
            resource_type="quote",
            resource_id=quote.id,
            details={"from": old, "to": new_state},
            comment=reason,
        )
        publish(
            session,
            api=API,
            event_type="QuoteStateChangeEvent",
            resource_type="quote",
            resource=render_quote(quote),
        )


def _snapshot(session: Session, quote: Quote, reason: str, actor: str) -> None:
    session.flush()
    session.add(
        QuoteVersion(
            id=new_id(),
            quote_id=quote.id,
            version=quote.version,
            reason=reason,
            actor=actor,
            snapshot=render_quote(quote),
            created_at=clock.now(),
        )
    )


# --- items -----------------------------------------------------------------------------------------------


def _build_items(
    session: Session, quote_id: str, customer: CustomerInfo, items: list[QuoteItemIn]
) -> list[QuoteItem]:
    now = clock.now()
    built = []
    for i, item in enumerate(items):
        where = f"quoteItem[{i}]"
        offering = catalog.offering_terms(session, item.productOffering.id)
        if offering is None:
            raise InvalidInput(
                f"{where}.productOffering.id: unknown product offering {item.productOffering.id!r}"
            )
        problem = offering_problem(offering, now)
        if problem:
            raise InvalidInput(
                f"{where}.productOffering: {problem}; it cannot be quoted", reason="Offering not sellable"
            )
        site_ref = item.product.place[0].id
        site = accounts.find_site(session, site_ref)
        if site is None:
            raise InvalidInput(f"{where}.product.place[0].id: unknown site {site_ref!r}")
        if site.customer_id != customer.id:
            raise InvalidInput(f"{where}.product.place[0].id: site {site_ref!r} belongs to another customer")
        chars = check_characteristics(
            offering,
            [
                (c.name, c.value if not isinstance(c.value, Decimal) else f"{c.value:f}")
                for c in item.product.productCharacteristic
            ],
            i,
        )
        built.append(
            QuoteItem(
                id=new_id(),
                quote_id=quote_id,
                item_ref=item.id,
                position=i,
                offering_id=offering.id,
                offering_name=offering.name,
                site_id=site.id,
                quantity=item.quantity,
                characteristics=chars,
                discount_percent=item.discountPercent,
                pricing=None,
                holds=None,
            )
        )
    return built


# --- create / edit ---------------------------------------------------------------------------------------


def create_quote(session: Session, data: QuoteCreate, actor: str) -> Quote:
    customer = _customer(session, data.relatedParty[0].id)
    now = clock.now()
    valid_until = data.validFor.endDateTime if data.validFor else now + DEFAULT_VALIDITY
    if valid_until <= now:
        raise InvalidInput("validFor.endDateTime: must be in the future")
    quote = Quote(
        id=new_id(),
        customer_id=customer.id,
        state="inProgress",
        version=1,
        description=data.description,
        external_id=data.externalId,
        contract_term_months=data.contractTermMonths,
        quote_date=now,
        valid_until=valid_until,
        compliance_hold=False,
        created_at=now,
        updated_at=now,
    )
    items = _build_items(session, quote.id, customer, data.quoteItem)
    session.add(quote)
    session.flush()
    for item in items:
        session.add(item)
    session.flush()
    session.expire(quote, ["items", "approvals"])
    audit.record(
        session,
        actor=actor,
        action="quote.create",
        resource_type="quote",
        resource_id=quote.id,
        details={"customerId": customer.id, "items": len(items)},
    )
    publish(
        session, api=API, event_type="QuoteCreateEvent", resource_type="quote", resource=render_quote(quote)
    )
    _snapshot(session, quote, "created", actor)
    if data.instantSyncQuote:
        _guarded(session, lambda: _price(session, quote, customer, actor, bump=True))
    session.commit()
    return quote


def _guarded(session: Session, action: Any) -> Any:
    """Run a multi-step change; on any refusal roll the whole transaction back before re-raising."""
    try:
        return action()
    except TurnupError:
        session.rollback()
        raise


def update_quote(session: Session, quote_id: str, data: QuoteUpdate, actor: str) -> Quote:
    fields = set(data.model_fields_set)
    if "state" in fields and data.state is not None:
        if fields - {"state", "stateReason"}:
            raise InvalidInput("state: change the state in a request of its own")
        if data.state == "cancelled":
            return cancel_quote(session, quote_id, data.stateReason, actor)
        if data.state == "rejected":
            return reject_quote(session, quote_id, data.stateReason, actor)
        quote = get_quote(session, quote_id)
        if data.state == quote.state:
            return quote
        if data.state == "accepted":
            raise Conflict(
                "state: accept a quote with POST …/quote/{id}/accept (it needs the signer)", reason=ILLEGAL
            )
        raise Conflict(
            f"state: a quote becomes {data.state} by being priced or approved, not by request "
            f"(it is {quote.state})",
            reason=ILLEGAL,
        )
    quote = get_quote(session, quote_id, lock=True)
    if quote.state not in OPEN:
        raise Conflict(f"a {quote.state} quote cannot be changed", reason=ILLEGAL)
    customer = _customer(session, quote.customer_id)
    now = clock.now()
    new_items = (
        _build_items(session, quote.id, customer, data.quoteItem) if data.quoteItem is not None else None
    )
    if "validFor" in fields and data.validFor is not None and data.validFor.endDateTime <= now:
        raise InvalidInput("validFor.endDateTime: must be in the future")

    def change() -> None:
        if "description" in fields:
            quote.description = data.description
        if "contractTermMonths" in fields and data.contractTermMonths is not None:
            quote.contract_term_months = data.contractTermMonths
        if "validFor" in fields and data.validFor is not None:
            quote.valid_until = data.validFor.endDateTime
        if new_items is not None:
            for item in list(quote.items):
                session.delete(item)
            session.flush()
            for item in new_items:
                session.add(item)
            session.flush()
            session.expire(quote, ["items"])
        quote.updated_at = now
        audit.record(
            session,
            actor=actor,
            action="quote.update",
            resource_type="quote",
            resource_id=quote.id,
            details={"fields": sorted(fields)},
        )
        if quote.priced_at is not None:
            _price(session, quote, customer, actor, bump=True, reason="edited and re-priced")
        else:
            quote.version += 1
            publish(
                session,
                api=API,
                event_type="QuoteAttributeValueChangeEvent",
                resource_type="quote",
                resource=render_quote(quote),
            )
            _snapshot(session, quote, "edited", actor)

    _guarded(session, change)
    session.commit()
    return quote


# --- pricing ---------------------------------------------------------------------------------------------


def price_quote(session: Session, quote_id: str, actor: str) -> Quote:
    """Price every line, hold every resource until the quote expires (all or nothing), evaluate the approval
    chain and screen the parties. Re-pricing replaces the previous holds in the same transaction."""
    quote = get_quote(session, quote_id, lock=True)
    if quote.state not in OPEN:
        raise Conflict(f"state: a {quote.state} quote cannot be priced", reason=ILLEGAL)
    if quote.valid_until <= clock.now():
        raise Conflict(
            f"validFor: quote expired at {quote.valid_until.isoformat()}; extend validFor first",
            reason="Quote expired",
        )
    customer = _customer(session, quote.customer_id)
    _guarded(session, lambda: _price(session, quote, customer, actor, bump=True))
    session.commit()
    return quote


def priced_lines(session: Session, quote: Quote) -> list[PricedLine]:
    """Price every line of the quote from the catalog as it is now."""
    lines = []
    for item in quote.items:
        offering = catalog.offering_terms(session, item.offering_id)
        site = accounts.find_site(session, item.site_id)
        if offering is None or site is None:
            raise Conflict(f"quoteItem[{item.position}]: its offering or site no longer exists")
        lines.append(
            price_line(
                session,
                index=item.position,
                offering=offering,
                site=site,
                quantity=item.quantity,
                characteristics=dict(item.characteristics),
                requested_discount=Decimal(item.discount_percent),
                term_months=quote.contract_term_months,
            )
        )
    return lines


def _price(
    session: Session, quote: Quote, customer: CustomerInfo, actor: str, *, bump: bool, reason: str = "priced"
) -> None:
    lines = priced_lines(session, quote)
    currencies = {line.currency for line in lines}
    if len(currencies) > 1:
        raise InvalidInput(
            f"quoteItem: lines are priced in different currencies ({', '.join(sorted(currencies))})"
        )
    approvals.check_discount_ceilings(session, customer, lines)
    holds.release(session, quote, actor)
    items = list(quote.items)
    holds.place(session, quote, items, lines, actor)
    by_position = {line.index: line for line in lines}
    for item in items:
        item.pricing = by_position[item.position].document
    total = add_totals([line.totals for line in lines])
    now = clock.now()
    quote.currency = currencies.pop()
    quote.recurring_total, quote.one_time_total, quote.usage_total = (
        total.recurring,
        total.one_time,
        total.usage,
    )
    quote.recurring_list_total, quote.one_time_list_total = total.recurring_list, total.one_time_list
    quote.contract_value = total.contract_value(quote.contract_term_months)
    quote.margin_percent = margin_percent(lines)
    quote.priced_at = now
    quote.updated_at = now
    if bump:
        quote.version += 1
    # approval chain for this version
    for old in quote.approvals:
        if old.state == "pending":
            old.state = "superseded"
    steps = approvals.required_chain(session, customer, lines, quote.contract_value, quote.margin_percent)
    for n, step in enumerate(steps, start=1):
        session.add(
            QuoteApproval(
                id=new_id(),
                quote_id=quote.id,
                quote_version=quote.version,
                step=n,
                role=step.role,
                state="pending",
                reasons=step.reasons,
                rules=step.rules,
                requested_at=now,
            )
        )
    quote.approval_status = "required" if steps else "notRequired"
    # export compliance: a hit holds the quote, never loses it
    sites = sorted({line.site.id: line.site for line in lines}.values(), key=lambda s: s.id)
    eccns = _eccns_by_country(session, items)
    result = screening.screen_quote(
        session, quote_id=quote.id, customer=customer, sites=sites, eccns_by_country=eccns, actor=actor
    )
    quote.screening = result.status
    quote.compliance_hold = result.status == "held"
    quote.compliance_case_id = result.case_id
    quote.compliance_reasons = result.reasons
    session.flush()
    session.expire(quote, ["approvals"])
    audit.record(
        session,
        actor=actor,
        action="quote.price",
        resource_type="quote",
        resource_id=quote.id,
        details={
            "version": quote.version,
            "recurring": money_text(total.recurring),
            "oneTime": money_text(total.one_time),
            "approvalSteps": [s.role for s in steps],
            "stockReservationId": quote.stock_reservation_id,
            "resourceReservationId": quote.logical_reservation_id,
            "screening": result.status,
            "complianceReasons": result.reasons,
        },
    )
    new_state = "pending" if steps else "approved"
    publish(
        session,
        api=API,
        event_type="QuoteAttributeValueChangeEvent",
        resource_type="quote",
        resource=render_quote(quote),
    )
    _set_state(
        session,
        quote,
        new_state,
        actor,
        "approval required" if steps else ("on compliance hold" if quote.compliance_hold else None),
    )
    _snapshot(session, quote, reason, actor)


# --- approval decisions ----------------------------------------------------------------------------------


def pending_step(quote: Quote) -> QuoteApproval | None:
    for a in sorted(quote.approvals, key=lambda a: a.step):
        if a.quote_version == quote.version and a.state == "pending":
            return a
    return None


def _approval_step_doc(step: Any) -> dict[str, Any]:
    """One approval step as the audit trail records it before and after a decision."""
    return {
        "step": step.step,
        "role": step.role,
        "quoteVersion": step.quote_version,
        "state": step.state,
        "decidedBy": step.decided_by,
        "decidedAt": step.decided_at.isoformat() if step.decided_at else None,
        "comment": step.comment,
    }


def decide(session: Session, data: ApprovalDecisionIn, actor: str, roles: Collection[str]) -> Quote:
    """Approve or reject the quote's next outstanding approval step (steps are decided in chain order).

    ``roles``: the deciding user's roles; they, not the request, say which steps the user may decide
    (``approvals.check_decider``). ``data.role``, when given, must name the next step (409 otherwise).
    """
    quote = get_quote(session, data.quoteId, lock=True)
    if quote.state != "pending":
        raise Conflict(
            f"quoteId: quote {quote.id!r} is {quote.state}; only a pending quote awaits approval",
            reason=ILLEGAL,
        )
    step = pending_step(quote)
    if step is None:
        raise Conflict(f"quoteId: quote {quote.id!r} has no outstanding approval", reason=ILLEGAL)
    if data.role is not None and step.role != data.role:
        raise Conflict(
            f"role: the next approval of quote {quote.id!r} (step {step.step}) is for {step.role}, "
            f"not {data.role}",
            reason="Out of order approval",
        )
    approvals.check_decider(session, quote, step, actor, roles)
    now = clock.now()

    def change() -> None:
        before = _approval_step_doc(step)
        step.state, step.decided_by, step.decided_at, step.comment = data.decision, actor, now, data.comment
        session.flush()
        audit.record(
            session,
            actor=actor,
            action=f"quote.approval.{data.decision}",
            resource_type="quote",
            resource_id=quote.id,
            details={"step": step.step, "role": step.role, "version": quote.version},
            comment=data.comment,
            before=before,
            after=_approval_step_doc(step),
        )
        if data.decision == "rejected":
            for other in quote.approvals:
                if other.quote_version == quote.version and other.state == "pending":
                    other.state = "superseded"
            quote.approval_status = "rejected"
            holds.release(session, quote, actor)
            _set_state(session, quote, "rejected", actor, f"rejected by {step.role}: {data.comment}")
        elif pending_step(quote) is None:
            quote.approval_status = "approved"
            _set_state(session, quote, "approved", actor, f"approved by {step.role}")
        else:
            quote.updated_at = now
            publish(
                session,
                api=API,
                event_type="QuoteAttributeValueChangeEvent",
                resource_type="quote",
                resource=render_quote(quote),
            )

    _guarded(session, change)
    session.commit()
    return quote


# --- cancel / reject / sweep -----------------------------------------------------------------------------


def _close(session: Session, quote_id: str, state: str, reason: str, actor: str) -> Quote:
    quote = get_quote(session, quote_id, lock=True)
    _check_transition(quote, state)

    def change() -> None:
        holds.release(session, quote, actor)
        for a in quote.approvals:
            if a.state == "pending":
                a.state = "superseded"
        _set_state(session, quote, state, actor, reason)

    _guarded(session, change)
    session.commit()
    return quote


def cancel_quote(session: Session, quote_id: str, reason: str | None, actor: str) -> Quote:
    return _close(session, quote_id, "cancelled", reason or "cancelled by request", actor)


def reject_quote(session: Session, quote_id: str, reason: str | None, actor: str) -> Quote:
    """The customer declines the quote."""
    return _close(session, quote_id, "rejected", reason or "declined by the customer", actor)


@dataclass
class SweepResult:
    expired: list[str]


def sweep_expired(session: Session, *, actor: str = "system:quote-sweeper") -> SweepResult:
    """Cancel every open quote past its validity and release its holds (one transaction per quote)."""
    now = clock.now()
    ids = list(
        session.scalars(
            select(Quote.id).where(Quote.state.in_(OPEN), Quote.valid_until <= now).order_by(Quote.id)
        )
    )
    session.rollback()
    done = []
    for quote_id in ids:
        quote = get_quote(session, quote_id, lock=True)
        if quote.state not in OPEN or quote.valid_until > clock.now():
            session.rollback()
            continue
        _close(session, quote_id, "cancelled", f"expired at {quote.valid_until.isoformat()}", actor)
        done.append(quote_id)
    return SweepResult(done)


# --- accept ----------------------------------------------------------------------------------------------


def _acceptance_problem(session: Session, quote: Quote, now: datetime) -> None:
    if quote.state == "pending":
        step = pending_step(quote)
        waiting = f"step {step.step} ({step.role})" if step else "a step"
        raise Conflict(
            f"state: quote {quote.id!r} cannot be accepted while approval is outstanding: {waiting}",
            reason="Approval outstanding",
        )
    if quote.state == "inProgress":
        raise Conflict(f"state: quote {quote.id!r} has not been priced; price it first", reason=ILLEGAL)
    _check_transition(quote, "accepted")
    if quote.valid_until <= now:
        raise Conflict(
            f"validFor: quote {quote.id!r} expired at {quote.valid_until.isoformat()}", reason="Quote expired"
        )
    for item in quote.items:
        offering = catalog.offering_terms(session, item.offering_id)
        problem = "it no longer exists" if offering is None else offering_problem(offering, now)
        if problem:
            raise Conflict(
                f"quoteItem[{item.position}].productOffering: {problem}; it cannot be accepted",
                reason="Offering not sellable",
            )
    if screening.on_hold(session, quote.id):
        reasons = "; ".join(quote.compliance_reasons or []) or "see the compliance case"
        raise Conflict(f"quote {quote.id!r} is on compliance hold: {reasons}", reason="Compliance hold")
    export = screening.unreviewed_export(session, quote.id, _eccns_by_country(session, list(quote.items)))
    if export:
        raise Conflict(
            f"quote {quote.id!r} has export findings not yet screened for review: "
            f"{'; '.join(export)}; re-price the quote",
            reason="Compliance hold",
        )
    lost = holds.lost(session, quote, now)
    if lost:
        raise Conflict(
            f"{holds.first_held_line(list(quote.items))}: holds were lost ({lost}); re-price the quote",
            reason="Holds lost",
        )


def _eccns_by_country(session: Session, items: list[QuoteItem]) -> dict[str, list[str]]:
    from turnup.quoting.pricing import requirements

    found: dict[str, set[str]] = {}
    for item in items:
        offering = catalog.offering_terms(session, item.offering_id)
        site = accounts.find_site(session, item.site_id)
        if offering is not None and site is not None:
            found.setdefault(site.country, set()).update(requirements(offering)[1])
    return {k: sorted(v) for k, v in found.items()}


def accept_quote(session: Session, quote_id: str, data: QuoteAccept, actor: str) -> Quote:
    """The customer accepts: re-validate, convert holds, generate and sign the agreement, create the order."""
    prepare_order_handoff(session)
    now = clock.now()
    quote = get_quote(session, quote_id, lock=True)
    _acceptance_problem(session, quote, now)
    customer = _customer(session, quote.customer_id)
    if not customer.billing_account_id:
        raise Conflict(
            f"relatedParty[0].id: customer {customer.id!r} has no billing account; give it one first "
            f"(PATCH /tmf-api/customerManagement/v4/customer/{customer.id} with "
            '{"billingAccount": {"id": ..., "name": ...}}), then accept the quote',
            reason="Billing account missing",
        )
    items = list(quote.items)

    def change() -> None:
        agreement = agreements.generate_for_quote(
            session,
            terms=agreements.QuoteTerms(
                quote_id=quote.id,
                quote_version=quote.version,
                term_months=quote.contract_term_months,
                customer_id=customer.id,
                customer_name=customer.name,
                billing_account_id=customer.billing_account_id,
            ),
            lines=_agreement_lines(session, items),
            totals={
                "recurring": money_text(quote.recurring_total or ZERO),
                "oneTime": money_text(quote.one_time_total or ZERO),
                "usage": money_text(quote.usage_total or ZERO),
                "contractValue": money_text(quote.contract_value or ZERO),
            },
            currency=quote.currency or "",
            actor=actor,
        )
        agreements.sign(
            session,
            agreement.id,
            agreements.SignatureCreate(
                signer=agreements.Signer(
                    name=data.signer.name, email=data.signer.email, organisation=data.signer.organisation
                ),
                role="customer",
            ),
            actor,
            commit=False,
        )
        order_id = create_product_order(session, quote, customer, items, agreement.id, actor)
        holds.commit(session, quote, items, order_id, actor)
        agreements.record_order(session, agreement.id, order_id)
        quote.agreement_id, quote.order_id, quote.accepted_at = agreement.id, order_id, now
        quote.compliance_hold = False
        audit.record(
            session,
            actor=actor,
            action="quote.accept",
            resource_type="quote",
            resource_id=quote.id,
            details={"agreementId": agreement.id, "orderId": order_id, "signer": data.signer.email},
            comment=data.comment,
        )
        _set_state(session, quote, "accepted", actor, "accepted by the customer")

    _guarded(session, change)
    session.commit()
    return quote


def _agreement_lines(session: Session, items: list[QuoteItem]) -> list[dict[str, Any]]:
    lines = []
    for item in items:
        site = accounts.find_site(session, item.site_id)
        held = []
        for h in item.holds or []:
            if h["resource"] == "stock":
                held.append(f"{h['quantity']} x {h['sku']} from {h['location']}")
            else:
                held.append(f"{h['resource']} {h['value']}")
        lines.append(
            {
                "offering": item.offering_name,
                "quantity": item.quantity,
                "site": f"{site.name}, {site.city or ''} {site.country}".replace(" ,", ",")
                if site
                else item.site_id,
                "discount": f"{Decimal(item.discount_percent).normalize():f}",
                "prices": (item.pricing or {}).get("quoteItemPrice", []),
                "holds": held,
            }
        )
    return lines


# --- hand-off to ordering --------------------------------------------------------------------------------


def prepare_order_handoff(session: Session) -> None:
    """Ordering's workflow client must exist before this transaction writes anything (see ordering)."""
    from turnup.orchestration import runtime

    runtime.prepare(session)


def create_product_order(
    session: Session,
    quote: Quote,
    customer: CustomerInfo,
    items: list[QuoteItem],
    agreement_id: str,
    actor: str,
) -> str:
    """The hand-off: a TMF622 product order for the accepted quote, referencing the quote, its agreement and
    the reservations it carries, created inside the acceptance transaction (``commit=False``)."""
    from turnup import ordering
    from turnup.ordering import ProductOrderCreate

    targets: dict[str, list[dict[str, Any]]] = {}  # reservation id -> which item/unit/spec needs each line
    for item in items:
        for held in item.holds or []:
            if "line" not in held or not held.get("specificationId"):
                continue  # a hold recorded before holds named their line: the order's first service gets it
            target = {
                "line": held["line"],
                "productOrderItem": item.item_ref,
                "unit": held.get("unit") or 1,
                "specification": held["specificationId"],
            }
            if held.get("fulfilmentMethod"):
                target["fulfilmentMethod"] = held["fulfilmentMethod"]
            found = targets.setdefault(held["reservation"]["id"], [])
            if target not in found:
                found.append(target)
    reservations = []
    if quote.stock_reservation_id:
        reservations.append(
            {
                "id": quote.stock_reservation_id,
                "referredType": "ReserveProductStock",
                "line": targets.get(quote.stock_reservation_id, []),
            }
        )
    if quote.logical_reservation_id:
        reservations.append(
            {
                "id": quote.logical_reservation_id,
                "referredType": "ResourceReservation",
                "line": targets.get(quote.logical_reservation_id, []),
            }
        )
    data = ProductOrderCreate.model_validate(
        {
            "externalId": f"quote:{quote.id}",
            "description": quote.description or f"Order for accepted quote {quote.id}",
            "relatedParty": [{"id": customer.id, "role": "customer"}],
            "productOrderItem": [
                {
                    "id": item.item_ref,
                    "action": "add",
                    "quantity": item.quantity,
                    "productOffering": {"id": item.offering_id},
                    "product": {"place": [{"id": item.site_id, "role": "installationAddress"}]},
                }
                for item in items
            ],
            "quote": [{"id": quote.id}],
            "agreement": [{"id": agreement_id}],
            "reservation": reservations,
        }
    )
    accepting = ordering.QuoteFacts(id=quote.id, customer_id=customer.id, state="accepted")
    order = ordering.create_order(session, data, actor, commit=False, accepting_quote=accepting)
    return order.id
