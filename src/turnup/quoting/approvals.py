"""Approval rules as data: conditions -> an ordered approval chain; evaluated each time a quote is priced.

A rule matches a quote when *every* condition it states holds:

- ``discountPercentOver``: some line's requested discount is above this percent;
- ``dealValueOver``: the quote's contract value (one-time + term x recurring) is above this amount;
- ``marginPercentBelow``: the quote's recurring margin is known and below this percent;
- ``offerings``: some line sells one of these offerings (a bundle counts its members);
- ``segments``: the customer's segment is one of these.

The chains of all matching rules are merged in rule order (``priority``, then name), each role once. A line
whose requested discount is above its catalog ``approvalThreshold`` needs at least one approval; when no
rule matched, the default chain is ``salesManager``. A requested discount above every ceiling that could
approve it (the catalog threshold and the ``maxDiscountPercent`` of every active rule applying to the line's
offering and the customer's segment) is refused outright.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.accounts import CustomerInfo
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish
from turnup.quoting.orm import ApprovalRule, Quote, QuoteApproval, QuoteVersion
from turnup.quoting.pricing import PricedLine, _members
from turnup.quoting.render import APPROVAL_API, render_rule
from turnup.quoting.schemas import ApprovalRuleCreate, ApprovalRuleImport, ApprovalRuleUpdate
from turnup.security import approval_step_names, may_decide_step, step_deciders

DEFAULT_ROLE = "salesManager"


@dataclass
class Step:
    role: str
    reasons: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


def _pct(value: Decimal) -> str:
    return f"{value.normalize():f}%"


def _offering_names(line: PricedLine) -> set[str]:
    return {m.name for m in _members(line.offering)}


def _applies_to(rule: ApprovalRule, line: PricedLine, customer: CustomerInfo) -> bool:
    cond = rule.conditions or {}
    if cond.get("offerings") and not (_offering_names(line) & set(cond["offerings"])):
        return False
    return not (cond.get("segments") and customer.segment not in cond["segments"])


def active_rules(session: Session) -> list[ApprovalRule]:
    return list(
        session.scalars(
            select(ApprovalRule)
            .where(ApprovalRule.active.is_(True))
            .order_by(ApprovalRule.priority, ApprovalRule.name)
        )
    )


def check_discount_ceilings(session: Session, customer: CustomerInfo, lines: list[PricedLine]) -> None:
    rules = active_rules(session)
    for line in lines:
        ceilings = [line.approval_threshold if line.approval_threshold is not None else Decimal(0)]
        ceilings += [
            Decimal(r.max_discount_percent)
            for r in rules
            if r.max_discount_percent is not None and _applies_to(r, line, customer)
        ]
        ceiling = max(ceilings)
        if line.requested_discount > ceiling:
            raise InvalidInput(
                f"quoteItem[{line.index}].discountPercent: {_pct(line.requested_discount)} on "
                f"{line.offering.name!r} exceeds the largest discount any approval rule can approve "
                f"({_pct(ceiling)})",
                reason="Discount beyond approval rules",
            )


def required_chain(
    session: Session,
    customer: CustomerInfo,
    lines: list[PricedLine],
    contract_value: Decimal,
    margin: Decimal | None,
) -> list[Step]:
    """The ordered approval steps a priced quote needs (empty: no approval needed)."""
    steps: dict[str, Step] = {}

    def add(role: str, reason: str, rule: str | None) -> None:
        step = steps.setdefault(role, Step(role))
        if reason not in step.reasons:
            step.reasons.append(reason)
        if rule and rule not in step.rules:
            step.rules.append(rule)

    max_line = max(lines, key=lambda line: line.requested_discount)
    names = set().union(*(_offering_names(line) for line in lines))
    for rule in active_rules(session):
        cond = rule.conditions or {}
        reasons = []
        if "discountPercentOver" in cond:
            limit = Decimal(str(cond["discountPercentOver"]))
            if max_line.requested_discount <= limit:
                continue
            reasons.append(
                f"quoteItem[{max_line.index}] discount {_pct(max_line.requested_discount)} "
                f"is over {_pct(limit)}"
            )
        if "dealValueOver" in cond:
            limit = Decimal(str(cond["dealValueOver"]))
            if contract_value <= limit:
                continue
            reasons.append(f"deal value {contract_value} is over {limit}")
        if "marginPercentBelow" in cond:
            limit = Decimal(str(cond["marginPercentBelow"]))
            if margin is None or margin >= limit:
                continue
            reasons.append(f"margin {_pct(margin)} is below {_pct(limit)}")
        if cond.get("offerings"):
            hit = sorted(names & set(cond["offerings"]))
            if not hit:
                continue
            reasons.append(f"offering {', '.join(hit)}")
        if cond.get("segments"):
            if customer.segment not in cond["segments"]:
                continue
            reasons.append(f"customer segment {customer.segment}")
        reason = f"rule {rule.name!r}: " + ("; ".join(reasons) if reasons else "always")
        for role in rule.chain:
            add(role, reason, rule.name)
    if not steps:
        for line in lines:
            if line.approval_threshold is not None and line.requested_discount > line.approval_threshold:
                add(
                    DEFAULT_ROLE,
                    f"quoteItem[{line.index}] discount {_pct(line.requested_discount)} is over the "
                    f"catalog threshold {_pct(line.approval_threshold)} for {line.offering.name!r}",
                    None,
                )
    return list(steps.values())


# --- separation of duties -------------------------------------------------------------------------------


def check_decider(
    session: Session, quote: Quote, step: QuoteApproval, actor: str, roles: Collection[str]
) -> None:
    """Refuse (403) a decision the deciding user may not make; the request cannot claim a role.

    - the step is bound to roles in the permission matrix (``approvalSteps``): one of the user's roles must
      be among them; no role bypasses this, not even ``admin``;
    - a user decides at most one step of a quote's chain (the steps of its current version);
    - a user never decides a step of a quote they created, edited or priced (its version history's actors).
    """
    deciders = step_deciders(step.role)
    if not may_decide_step(roles, step.role):
        bound = ", ".join(deciders) if deciders else "no role (add it to approvalSteps)"
        raise Forbidden(
            f"step {step.step} ({step.role}) of quote {quote.id!r} is decided by role {bound}; "
            f"your roles: {', '.join(roles) or 'none'}",
            reason="Approval step bound to another role",
        )
    for other in quote.approvals:
        if other.quote_version == quote.version and other.id != step.id and other.decided_by == actor:
            raise Forbidden(
                f"you already decided step {other.step} ({other.role}) of quote {quote.id!r}; "
                "one user decides at most one step of a chain",
                reason="Separation of duties",
            )
    authors = set(session.scalars(select(QuoteVersion.actor).where(QuoteVersion.quote_id == quote.id)))
    if actor in authors:
        raise Forbidden(
            f"you created or changed quote {quote.id!r}; its approvals are for others",
            reason="Separation of duties",
        )


def _check_chain(chain: list[str] | None) -> None:
    known = approval_step_names()
    for i, role in enumerate(chain or []):
        if role not in known:
            raise InvalidInput(
                f"chain[{i}]: no role decides approval step {role!r}; steps: {', '.join(sorted(known))} "
                "(bound to roles in the permission matrix, approvalSteps)",
                reason="Unknown approval step",
            )


# --- rule management ------------------------------------------------------------------------------------


def get_rule(session: Session, rule_id: str) -> ApprovalRule:
    rule = session.get(ApprovalRule, rule_id)
    if rule is None:
        raise NotFound(f"approvalRule {rule_id!r} not found")
    return rule


def _apply(rule: ApprovalRule, data: ApprovalRuleCreate | ApprovalRuleUpdate, fields: set[str]) -> None:
    if "description" in fields:
        rule.description = data.description
    if "priority" in fields and data.priority is not None:
        rule.priority = data.priority
    if "active" in fields and data.active is not None:
        rule.active = data.active
    if "conditions" in fields and data.conditions is not None:
        rule.conditions = data.conditions.as_json()
    if "chain" in fields and data.chain is not None:
        if len(set(data.chain)) != len(data.chain):
            raise InvalidInput("chain: a role may appear only once")
        _check_chain(data.chain)
        rule.chain = list(data.chain)
    if "maxDiscountPercent" in fields:
        rule.max_discount_percent = data.maxDiscountPercent


def _create(session: Session, data: ApprovalRuleCreate, actor: str) -> ApprovalRule:
    if session.scalar(select(ApprovalRule).where(ApprovalRule.name == data.name)) is not None:
        raise Conflict(f"name: an approval rule named {data.name!r} already exists")
    now = clock.now()
    rule = ApprovalRule(
        id=new_id(),
        name=data.name,
        priority=data.priority,
        active=data.active,
        conditions={},
        chain=[],
        created_at=now,
        updated_at=now,
    )
    _apply(rule, data, set(ApprovalRuleCreate.model_fields))
    session.add(rule)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="approvalRule.create",
        resource_type="approvalRule",
        resource_id=rule.id,
        details=render_rule(rule),
    )
    publish(
        session,
        api=APPROVAL_API,
        event_type="ApprovalRuleCreateEvent",
        resource_type="approvalRule",
        resource=render_rule(rule),
    )
    return rule


def create_rule(session: Session, data: ApprovalRuleCreate, actor: str) -> ApprovalRule:
    rule = _create(session, data, actor)
    session.commit()
    return rule


def _update(
    session: Session,
    rule: ApprovalRule,
    data: ApprovalRuleCreate | ApprovalRuleUpdate,
    fields: set[str],
    actor: str,
) -> ApprovalRule:
    before = render_rule(rule)
    _apply(rule, data, fields)
    rule.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="approvalRule.update",
        resource_type="approvalRule",
        resource_id=rule.id,
        details={"before": before, "after": render_rule(rule)},
    )
    publish(
        session,
        api=APPROVAL_API,
        event_type="ApprovalRuleAttributeValueChangeEvent",
        resource_type="approvalRule",
        resource=render_rule(rule),
    )
    return rule


def update_rule(session: Session, rule_id: str, data: ApprovalRuleUpdate, actor: str) -> ApprovalRule:
    rule = _update(session, get_rule(session, rule_id), data, set(data.model_fields_set), actor)
    session.commit()
    return rule


def delete_rule(session: Session, rule_id: str, actor: str) -> None:
    rule = get_rule(session, rule_id)
    document = render_rule(rule)
    session.delete(rule)
    audit.record(
        session,
        actor=actor,
        action="approvalRule.delete",
        resource_type="approvalRule",
        resource_id=rule_id,
        details=document,
    )
    publish(
        session,
        api=APPROVAL_API,
        event_type="ApprovalRuleDeleteEvent",
        resource_type="approvalRule",
        resource=document,
    )
    session.commit()


def import_rules(session: Session, data: ApprovalRuleImport | str, actor: str) -> dict[str, list[str]]:
    """Upsert every rule of a YAML document ``{rules: [...]}`` by name, all or nothing."""
    text = data.yaml if isinstance(data, ApprovalRuleImport) else data
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"yaml: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise InvalidInput("yaml: expected a mapping with a list 'rules'")
    parsed: list[ApprovalRuleCreate] = []
    errors: list[str] = []
    for i, raw in enumerate(document["rules"]):
        try:
            parsed.append(ApprovalRuleCreate.model_validate(raw))
        except ValidationError as exc:
            for err in exc.errors():
                errors.append(f"rules[{i}].{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
    names = [r.name for r in parsed]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"rules: {name!r} is given more than once")
    if errors:
        raise InvalidInput("approval rules not imported: " + "; ".join(errors[:5]), details=errors)
    result: dict[str, list[str]] = {"created": [], "updated": []}
    for rule_in in parsed:
        existing = session.scalar(select(ApprovalRule).where(ApprovalRule.name == rule_in.name))
        if existing is None:
            result["created"].append(_create(session, rule_in, actor).id)
        else:
            result["updated"].append(
                _update(session, existing, rule_in, set(ApprovalRuleCreate.model_fields), actor).id
            )
    session.commit()
    return result
