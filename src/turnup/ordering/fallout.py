"""Fallout queue use cases: staff retry, skip (with a reason) or abort a step that failed for good.

The decision is recorded, the order's state changed and the message to the waiting workflow sent
(``DBOSClient.send_in_transaction``) in one transaction: either all of it happens or none.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from turnup import service_inventory as inventory
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.hrefs import href, iso
from turnup.orchestration import runtime as orchestration
from turnup.ordering import services as ordering
from turnup.ordering.orm import FalloutEntry, PlanItem

API = "turnupOrchestration"
ACTIONS = ("retry", "skip", "abort")


def render_fallout(f: FalloutEntry) -> dict[str, Any]:
    return {
        "id": f.id,
        "href": href(API, "fallout", f.id),
        "@type": "FalloutEntry",
        "state": f.state,
        "productOrder": {
            "id": f.order_id,
            "href": href("productOrderingManagement", "productOrder", f.order_id),
        },
        "planItemId": f.plan_item_id,
        "step": f.step,
        "error": f.error,
        "attempts": f.attempts,
        "openedAt": iso(f.opened_at),
        "resolvedAt": iso(f.resolved_at),
        "resolvedBy": f.resolved_by,
        "resolutionReason": f.resolution_reason,
    }


def resolve(session: Session, fallout_id: str, action: str, reason: str | None, actor: str) -> FalloutEntry:
    if action not in ACTIONS:
        raise InvalidInput(f"action: must be one of {', '.join(ACTIONS)}, got {action!r}")
    reason = (reason or "").strip() or None
    if action == "skip" and not reason:
        raise InvalidInput("reason: a reason is required to skip a step")
    url = orchestration.prepare(session)  # system tables exist before this transaction takes any lock
    entry = session.get(FalloutEntry, fallout_id, with_for_update=True)
    if entry is None:
        raise NotFound(f"fallout entry {fallout_id!r} not found")
    if entry.state != "open":
        raise Conflict(
            f"fallout entry {fallout_id} is already {entry.state}", reason="Illegal state transition"
        )
    order = ordering.get_order(session, entry.order_id, lock=True)
    plan = session.get(PlanItem, entry.plan_item_id)
    now = clock.now()
    entry.state = {"retry": "retried", "skip": "skipped", "abort": "aborted"}[action]
    entry.resolution_reason = reason
    entry.resolved_by = actor
    entry.resolved_at = now
    if action in ("retry", "skip") and order.state == "held":
        ordering.transition(
            session,
            order,
            "inProgress",
            actor,
            f"fallout {entry.id}: {action}" + (f" ({reason})" if reason else ""),
        )
    if action == "skip" and plan is not None and entry.step in ("activate", "wait"):
        ordering.set_plan_state(session, plan, "cancelled")
        plan.skip_reason = reason
        plan.updated_at = now
        service = inventory.get_service(session, plan.service_id)
        if service.state == "designed":
            inventory.change_state(
                session,
                service,
                "terminated",
                order_id=order.id,
                order_item_id=plan.order_item_id,
                action="skip",
            )
    if action == "abort":
        order.state_reason = f"aborting (fallout {entry.id}): {reason or 'no reason given'}"
        order.updated_at = now
    audit.record(
        session,
        actor=actor,
        action=f"fallout.{action}",
        resource_type="falloutEntry",
        resource_id=entry.id,
        details={"orderId": order.id, "planItemId": entry.plan_item_id},
        comment=reason,
    )
    orchestration.send_in_transaction(
        session,
        url,
        entry.workflow_id,
        {"action": action, "reason": reason},
        f"fallout:{entry.id}",
        idempotency_key=f"fallout:{entry.id}",
    )
    session.commit()
    return entry
