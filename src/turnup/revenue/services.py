"""Earned-trigger processing and the revenue use cases.

Delivery facts move obligations (``turnup.revenue.consumers`` calls these, in the worker's transaction):

- ``service_activated``: the line's service obligations met by that service start their ratable schedule on
  the activation date (daily proration, calendar-month periods);
- ``service_terminated``: they stop on the termination date (later periods cancelled, the month of the stop
  earns its days only);
- ``order_milestone``: ``technicianCompleted`` recognises the installation (and technician-delivered
  hardware) at a point in time, ``shipmentDelivered`` / ``pickedUp`` recognise hardware at hand-over,
  ``milestoneAccepted`` moves a professional-services obligation by the milestone's revenue percent
  (cumulative catch-up).

Ratable periods are posted to the ledger by ``close_period`` (month-end close; ``turnup revenue close``).
Usage (variable consideration) is recognised as used by ``record_usage`` and billing is recorded by
``record_billing`` — the two slots the usage and billing features fill (docs/revenue.md). Every handler is
idempotent: obligations move only from the state the event expects, and every journal entry carries a
unique source reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import ordering, service_inventory
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.revenue.contracts import ACTOR, ensure_contract
from turnup.revenue.engine import (
    HARDWARE,
    INSTALLATION,
    PROFESSIONAL,
    SERVICE,
    USAGE,
    Period,
    add_months,
    billing_posting,
    day_after,
    milestone_progress,
    month_days,
    percent_complete,
    q2,
    ratable,
    recognise_posting,
    revenue_account,
    split_amount,
    stop_schedule,
)
from turnup.revenue.ledger import LineTag, position, post_entry
from turnup.revenue.orm import RevenueContract, RevenueObligation, RevenueScheduleLine

ZERO = Decimal("0.00")
HAND_OVER_KINDS = {
    "technicianCompleted": (INSTALLATION, HARDWARE),
    "shipmentDelivered": (HARDWARE,),
    "pickedUp": (HARDWARE,),
}


def as_date(value: Any, default: datetime | None = None) -> date | None:
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    return default.date() if default is not None else None


def obligations_of(session: Session, contract_id: str) -> list[RevenueObligation]:
    return list(
        session.scalars(
            select(RevenueObligation)
            .where(RevenueObligation.contract_id == contract_id)
            .order_by(RevenueObligation.item_ref, RevenueObligation.key)
        )
    )


def _locked_contract(session: Session, contract_id: str) -> RevenueContract:
    contract = session.get(RevenueContract, contract_id, with_for_update=True, populate_existing=True)
    if contract is None:
        raise NotFound(f"revenueContract {contract_id!r} not found")
    return contract


def _recognise(
    session: Session,
    contract: RevenueContract,
    obligation: RevenueObligation,
    amount: Decimal,
    day: date,
    *,
    ref: str,
    source: str,
    memo: str,
) -> str | None:
    """Post ``amount`` of the obligation's revenue now (a posted schedule line and its journal entry)."""
    if session.scalar(
        select(RevenueScheduleLine.id).where(
            RevenueScheduleLine.obligation_id == obligation.id, RevenueScheduleLine.ref == ref
        )
    ):
        return None  # already recognised (redelivery)
    entry_id = post_entry(
        session,
        source_ref=f"{obligation.id}:{ref}",
        contract_id=contract.id,
        entry_date=day,
        kind="usage" if obligation.kind == USAGE else "recognition",
        currency=contract.currency,
        memo=memo,
        posting=recognise_posting(position(session, contract.id), amount, revenue_account(obligation.kind)),
        tag=LineTag(obligation.id, obligation.kind, obligation.product),
    )
    session.add(
        RevenueScheduleLine(
            obligation_id=obligation.id,
            ref=ref,
            period=day.replace(day=1),
            days=0,
            amount=amount,
            source=source,
            status="posted",
            entry_id=entry_id,
        )
    )
    obligation.recognised = q2(obligation.recognised + amount)
    obligation.updated_at = clock.now()
    session.flush()
    return entry_id


def _item_ref(session: Session, order_item_id: Any) -> str | None:
    product = ordering.ordered_product(session, str(order_item_id or ""))
    return product.item_ref if product else None


def _matches(obligation: RevenueObligation, spec_id: str | None) -> bool:
    return spec_id is None or not obligation.specification_ids or spec_id in obligation.specification_ids


def service_activated(session: Session, fact: dict[str, Any], event_time: datetime, event_id: str) -> int:
    """Start the ratable schedules of the service obligations this service meets; how many started."""
    order_id = fact.get("productOrderId")
    if not order_id:
        return 0
    contract = ensure_contract(session, str(order_id))
    if contract is None or contract.status != "active":
        return 0
    ref = _item_ref(session, fact.get("productOrderItemId"))
    if ref is None:
        return 0
    service_id = str(fact.get("serviceId") or "")
    try:
        spec_id = service_inventory.get_service(session, service_id).specification_id
    except NotFound:
        spec_id = None
    contract = _locked_contract(session, contract.id)
    start = as_date(fact.get("activationDate")) or as_date(fact.get("at"), event_time)
    assert start is not None
    started = 0
    for o in obligations_of(session, contract.id):
        if o.item_ref != ref or o.kind != SERVICE or o.state != "pending" or not _matches(o, spec_id):
            continue
        o.state, o.service_id, o.start_date, o.updated_at = "inProgress", service_id, start, clock.now()
        for period in ratable(o.allocated, start, o.months):
            session.add(
                RevenueScheduleLine(
                    obligation_id=o.id,
                    ref=f"ratable:{period.month.isoformat()}",
                    period=period.month,
                    days=period.days,
                    amount=period.amount,
                    source="ratable",
                    status="scheduled",
                    entry_id=None,
                )
            )
        started += 1
        audit.record(
            session,
            actor=ACTOR,
            action="revenueObligation.start",
            resource_type="revenueObligation",
            resource_id=o.id,
            details={"serviceId": service_id, "startDate": start.isoformat(), "eventId": event_id},
        )
    session.flush()
    return started


def service_terminated(session: Session, fact: dict[str, Any], event_time: datetime, event_id: str) -> int:
    """Stop the schedules of the obligations the terminated service met; how many stopped."""
    service_id = str(fact.get("serviceId") or "")
    stop = as_date(fact.get("terminationDate")) or as_date(fact.get("at"), event_time)
    assert stop is not None
    stopped = 0
    rows = session.scalars(
        select(RevenueObligation)
        .where(RevenueObligation.service_id == service_id, RevenueObligation.state == "inProgress")
        .order_by(RevenueObligation.id)
    ).all()
    for o in rows:
        _locked_contract(session, o.contract_id)
        lines = list(
            session.scalars(
                select(RevenueScheduleLine)
                .where(RevenueScheduleLine.obligation_id == o.id, RevenueScheduleLine.source == "ratable")
                .order_by(RevenueScheduleLine.period)
            )
        )
        assert o.start_date is not None
        schedule = [Period(line.period, line.days, line.amount) for line in lines]
        kept = {p.month: p for p in stop_schedule(schedule, o.allocated, o.start_date, stop)}
        for line in lines:
            if line.status != "scheduled":
                continue
            keep = kept.get(line.period)
            if keep is None:
                line.status = "cancelled"
            elif keep.days != line.days:
                line.days, line.amount = keep.days, keep.amount
        o.state, o.stop_date, o.updated_at = "stopped", stop, clock.now()
        stopped += 1
        audit.record(
            session,
            actor=ACTOR,
            action="revenueObligation.stop",
            resource_type="revenueObligation",
            resource_id=o.id,
            details={"serviceId": service_id, "stopDate": stop.isoformat(), "eventId": event_id},
        )
    session.flush()
    return stopped


def service_modified(session: Session, fact: dict[str, Any], event_time: datetime, event_id: str) -> int:
    """A priced change of an active service (``ServiceModifiedEvent`` from a modify order whose item carries a
    price difference): a contract modification treated **prospectively** (the remaining months of service are
    distinct from those already transferred; the change is not priced as a separate contract at SSP). From
    the modification day, the revenue not yet earned plus the added consideration (the recurring difference
    for the rest of the term, daily prorated, plus any one-time difference) is spread over the rest of the
    term by day; what was earned before the day is kept. Idempotent per event. How many obligations moved."""
    service_id = str(fact.get("serviceId") or "")
    rows = session.scalars(
        select(RevenueObligation)
        .where(
            RevenueObligation.service_id == service_id,
            RevenueObligation.state == "inProgress",
            RevenueObligation.kind == SERVICE,
        )
        .order_by(RevenueObligation.id)
    ).all()
    if not rows:
        return 0
    try:
        order = ordering.get_order(session, str(fact.get("productOrderId") or ""))
    except NotFound:
        return 0
    item = next((i for i in order.items if i.id == fact.get("productOrderItemId")), None)
    difference = (item.pricing or {}).get("difference") if item is not None else None
    if not difference:
        return 0
    recurring = Decimal(str(difference.get("recurring") or "0"))
    once = Decimal(str(difference.get("oneTime") or "0"))
    if not recurring and not once:
        return 0
    day = as_date(fact.get("at"), event_time)
    assert day is not None
    moved = 0
    for o in rows:
        if any(m.get("eventId") == event_id for m in o.modifications):
            continue  # redelivered
        contract = _locked_contract(session, o.contract_id)
        assert o.start_date is not None
        end = add_months(o.start_date, o.months)
        lines = [
            line
            for line in session.scalars(
                select(RevenueScheduleLine)
                .where(
                    RevenueScheduleLine.obligation_id == o.id,
                    RevenueScheduleLine.source == "ratable",
                    RevenueScheduleLine.status == "scheduled",
                    RevenueScheduleLine.period >= day.replace(day=1),
                )
                .order_by(RevenueScheduleLine.period)
            )
        ]
        if day >= end or not lines:
            continue
        first = lines[0]
        effective = max(day, first.period, o.start_date)
        kept = ZERO
        if first.period == effective.replace(day=1) and first.days:
            before = (effective - max(first.period, o.start_date)).days
            kept = q2(first.amount * before / first.days)
        remaining = sum((line.amount for line in lines), ZERO) - kept
        term_days = (end - o.start_date).days
        added = q2(recurring * o.months * (end - effective).days / term_days) + once
        total = remaining + added
        if total < 0:
            total, added = ZERO, -remaining
        spans = month_days(effective, end)
        parts = split_amount(total, [Decimal(d) for _, d in spans])
        by_month = {m: p for (m, _), p in zip(spans, parts, strict=True)}
        for line in lines:
            share = by_month.get(line.period, ZERO)
            line.amount = (kept + share) if line is first else share
        o.allocated = q2(o.allocated + added)
        o.billed_plan = q2(o.billed_plan + added)
        o.modifications = [
            *o.modifications,
            {
                "eventId": event_id,
                "treatment": "prospective",
                "effective": effective.isoformat(),
                "added": f"{added:f}",
                "productOrderId": order.id,
            },
        ]
        o.updated_at = clock.now()
        contract.transaction_price = q2(contract.transaction_price + added)
        contract.updated_at = clock.now()
        moved += 1
        audit.record(
            session,
            actor=ACTOR,
            action="revenueObligation.modify",
            resource_type="revenueObligation",
            resource_id=o.id,
            details={
                "treatment": "prospective",
                "effective": effective.isoformat(),
                "added": f"{added:f}",
                "recurringDifference": f"{recurring:f}",
                "oneTimeDifference": f"{once:f}",
                "eventId": event_id,
            },
        )
    session.flush()
    return moved


def order_milestone(session: Session, order: dict[str, Any], event_time: datetime, event_id: str) -> int:
    """Recognise what a reported hand-over, installation or accepted milestone satisfies; how many
    obligations moved."""
    order_id = str(order.get("id") or "")
    milestones = order.get("milestone") or []
    if not order_id or not milestones:
        return 0
    contract = ensure_contract(session, order_id)
    if contract is None or contract.status != "active":
        return 0
    contract = _locked_contract(session, contract.id)
    moved = 0
    plan = {p.id: p for p in ordering.plan_items(session, order_id)}
    for milestone in milestones:
        name = str(milestone.get("name") or "")
        item = plan.get(str(milestone.get("planItemId") or ""))
        if item is None:
            continue
        ref = _item_ref(session, item.order_item_id)
        day = as_date(milestone.get("milestoneDate"), event_time)
        assert day is not None
        kinds = HAND_OVER_KINDS.get(name, ())
        for o in obligations_of(session, contract.id):
            if o.item_ref != ref or not _matches(o, item.specification_id):
                continue
            if o.kind in kinds and o.state == "pending":
                _recognise(
                    session,
                    contract,
                    o,
                    o.allocated - o.recognised,
                    day,
                    ref=f"event:{event_id}",
                    source="pointInTime",
                    memo=f"{o.product} {o.kind}: {name}",
                )
                o.state = "satisfied"
                moved += 1
            elif (
                name == "milestoneAccepted"
                and o.kind == PROFESSIONAL
                and o.state in ("pending", "inProgress")
            ):
                accepted_name = str((item.parameters or {}).get("milestone") or item.service_name)
                if accepted_name in o.accepted:
                    continue
                o.accepted = [*o.accepted, accepted_name]
                steps = tuple((str(n), Decimal(str(p))) for n, p in o.milestones)
                progress = milestone_progress(steps, o.accepted)
                amount = percent_complete(o.allocated, progress, o.recognised)
                _recognise(
                    session,
                    contract,
                    o,
                    amount,
                    day,
                    ref=f"milestone:{accepted_name}",
                    source="percentComplete",
                    memo=f"{o.product}: milestone {accepted_name} accepted ({progress * 100:.1f}%)",
                )
                o.state = "satisfied" if progress >= 1 else "inProgress"
                moved += 1
    if moved:
        audit.record(
            session,
            actor=ACTOR,
            action="revenueContract.earned",
            resource_type="revenueContract",
            resource_id=contract.id,
            details={"milestones": [m.get("name") for m in milestones], "eventId": event_id, "moved": moved},
        )
    session.flush()
    return moved


def close_period(session: Session, through: date, actor: str, *, commit: bool = True) -> int:
    """Post every scheduled ratable period whose month has ended by ``through`` (month-end close): each a
    journal entry dated the month's last day (contract liability released first, else a contract asset).
    Idempotent; returns how many periods were posted."""
    cutoff = day_after(min(through, date(9998, 12, 31)))  # no overflow past the calendar's end
    lines = session.scalars(
        select(RevenueScheduleLine)
        .where(RevenueScheduleLine.status == "scheduled", RevenueScheduleLine.period <= through)
        .order_by(RevenueScheduleLine.obligation_id, RevenueScheduleLine.period)
        .with_for_update()
    ).all()
    posted = 0
    for line in lines:
        if add_months(line.period, 1) > cutoff:
            continue
        o = session.get(RevenueObligation, line.obligation_id)
        assert o is not None
        contract = _locked_contract(session, o.contract_id)
        last_day = add_months(line.period, 1).toordinal() - 1
        line.entry_id = post_entry(
            session,
            source_ref=f"{o.id}:{line.ref}",
            contract_id=contract.id,
            entry_date=date.fromordinal(last_day),
            kind="recognition",
            currency=contract.currency,
            memo=f"{o.product} {o.kind} {line.period:%Y-%m} ({line.days} days)",
            posting=recognise_posting(position(session, contract.id), line.amount, revenue_account(o.kind)),
            tag=LineTag(o.id, o.kind, o.product),
        )
        line.status = "posted"
        o.recognised = q2(o.recognised + line.amount)
        if o.recognised == o.allocated:
            o.state = "satisfied"
        session.flush()
        posted += 1
    audit.record(
        session,
        actor=actor,
        action="revenue.close",
        resource_type="revenuePeriod",
        resource_id=through.isoformat(),
        details={"through": through.isoformat(), "posted": posted},
    )
    if commit:
        session.commit()
    return posted


def _obligation_of_service(
    session: Session, service_id: str, kind: str
) -> tuple[RevenueContract, RevenueObligation]:
    served = session.scalar(
        select(RevenueObligation)
        .where(RevenueObligation.service_id == service_id)
        .order_by(RevenueObligation.id)
    )
    if served is None:
        raise NotFound(f"serviceId: no revenue obligation is met by service {service_id!r}")
    contract = _locked_contract(session, served.contract_id)
    if kind == SERVICE:
        return contract, served
    match = session.scalar(
        select(RevenueObligation).where(
            RevenueObligation.contract_id == contract.id,
            RevenueObligation.item_ref == served.item_ref,
            RevenueObligation.kind == kind,
        )
    )
    if match is None:
        raise Conflict(f"serviceId: the contract line of service {service_id!r} has no {kind} obligation")
    return contract, match


def record_usage(
    session: Session, *, service_id: str, amount: Decimal, used_on: date, ref: str, actor: str = ACTOR
) -> str | None:
    """Usage rated for a service (variable consideration) is revenue as used: the line's usage obligation
    recognises ``amount`` on ``used_on`` (unbilled: a contract asset until billed). Idempotent by ``ref``.
    The slot for the usage feature (rated usage records). Never commits."""
    if amount <= 0:
        raise InvalidInput("amount: usage revenue must be positive")
    contract, o = _obligation_of_service(session, service_id, USAGE)
    entry = _recognise(
        session, contract, o, q2(amount), used_on, ref=f"usage:{ref}", source="usage", memo=f"usage {ref}"
    )
    if entry:
        audit.record(
            session,
            actor=actor,
            action="revenue.usage",
            resource_type="revenueObligation",
            resource_id=o.id,
            details={"ref": ref, "amount": f"{q2(amount):f}", "usedOn": used_on.isoformat()},
        )
    return entry


def record_billing(
    session: Session, *, service_id: str, amount: Decimal, billed_on: date, ref: str, actor: str = ACTOR
) -> str | None:
    """A charge billed for a service's contract: a receivable, settling the contract asset first, the rest a
    contract liability (deferred revenue). Idempotent by ``ref``. The slot for the billing feature (billed
    charges). Never commits."""
    if amount <= 0:
        raise InvalidInput("amount: a billed amount must be positive")
    contract, o = _obligation_of_service(session, service_id, SERVICE)
    entry = post_entry(
        session,
        source_ref=f"billing:{ref}",
        contract_id=contract.id,
        entry_date=billed_on,
        kind="billing",
        currency=contract.currency,
        memo=f"billed {ref}",
        posting=billing_posting(position(session, contract.id), q2(amount)),
        tag=LineTag(o.id, o.kind, o.product),
    )
    audit.record(
        session,
        actor=actor,
        action="revenue.billing",
        resource_type="revenueContract",
        resource_id=contract.id,
        details={"ref": ref, "amount": f"{q2(amount):f}", "serviceId": service_id},
    )
    return entry


def schedule_lines(session: Session, obligation_ids: Sequence[str]) -> list[RevenueScheduleLine]:
    if not obligation_ids:
        return []
    return list(
        session.scalars(
            select(RevenueScheduleLine)
            .where(RevenueScheduleLine.obligation_id.in_(obligation_ids))
            .order_by(RevenueScheduleLine.obligation_id, RevenueScheduleLine.period, RevenueScheduleLine.ref)
        )
    )
