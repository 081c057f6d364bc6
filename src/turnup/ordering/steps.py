"""The order workflow's steps. Each is idempotent: run again after a crash, it finds its work done.

Every step opens its own short Turnup transaction(s). Adapter calls carry the idempotency key
``<plan item id>:<operation>``, so an adapter that already applied the effect answers without repeating it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import service_inventory as inventory
from turnup.kernel import audit, clock
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish
from turnup.orchestration import runtime as orchestration
from turnup.ordering import services as ordering
from turnup.ordering.orm import FalloutEntry, PlanItem, ProductOrder, ProductOrderItem
from turnup.ordering.render import API, render_order
from turnup.ordering.services import set_plan_state
from turnup.ordering.settlement import ACTOR, settle_resources, terminate
from turnup.provisioning import (
    AdapterAnswerMalformed,
    AdapterContext,
    AdapterRegistry,
    AdapterRequest,
    AdapterResult,
    UnknownAdapter,
    call_with_timeout,
    step_timeout,
)

CANCELLING = "pendingCancellation"  # what activate/wait steps return when the order is being cancelled


class StepFailed(Exception):
    """A step attempt failed; the workflow retries it with backoff."""


class StepFailedForGood(Exception):
    """A step attempt failed in a way retrying cannot fix (malformed answer, unknown adapter)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    fallout_wait_seconds: float = 86400.0

    def backoff(self, failed_attempts: int) -> float:
        return float(min(self.base_seconds * 2 ** (failed_attempts - 1), self.cap_seconds))

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            max_attempts=int(os.environ.get("TURNUP_STEP_MAX_ATTEMPTS", "5")),
            base_seconds=float(os.environ.get("TURNUP_STEP_BACKOFF_SECONDS", "1.0")),
            cap_seconds=float(os.environ.get("TURNUP_STEP_BACKOFF_CAP_SECONDS", "60")),
        )


_registry: AdapterRegistry | None = None


def adapters() -> AdapterRegistry:
    global _registry
    factory = orchestration.runtime.factory
    if _registry is None or _registry.context.sessions is not factory:
        assert factory is not None, "orchestrator not launched"
        _registry = AdapterRegistry(AdapterContext(sessions=factory, settings={}))
    return _registry


# --- start --------------------------------------------------------------------------------------------------
def start_order(order_id: str) -> dict[str, Any]:
    """Validate the order is still to be worked and move it to inProgress; return the plan to run."""
    with orchestration.step_session() as s:
        order = s.get(ProductOrder, order_id, with_for_update=True)
        if order is None:
            return {"proceed": False, "state": "missing", "items": []}
        if order.state == "acknowledged":
            ordering.transition(s, order, "inProgress", ACTOR)
            for item in order.items:
                item.state = "inProgress"
        elif order.state not in ("inProgress", "held"):
            return {"proceed": False, "state": order.state, "items": []}
        plan = _topological(ordering.plan_items(s, order_id))
        items = [p.id for p in plan]
        waits = {p.id: dict(p.parameters) for p in plan if p.kind in ordering.WAIT_KINDS}
        s.commit()
        return {"proceed": True, "state": order.state, "items": items, "waits": waits}


def _topological(plan: list[PlanItem]) -> list[PlanItem]:
    done: set[str] = set()
    ordered: list[PlanItem] = []
    pending = list(plan)
    while pending:
        ready = [p for p in pending if all(d in done for d in p.depends_on)]
        if not ready:
            raise StepFailedForGood("plan has a dependency cycle")
        for p in ready:
            ordered.append(p)
            done.add(p.id)
            pending.remove(p)
    return ordered


# --- activate / change / deactivate -------------------------------------------------------------------------
# What a plan item's action needs of its service before the adapter call, and what it leaves it in.
NEEDS = {
    "add": ("designed", "reserved", "active"),
    "modify": ("active",),
    "suspend": ("active",),
    "resume": ("inactive",),
    "delete": ("active", "inactive"),
    "moveOut": ("active",),
    "moveIn": ("active",),
}
# Compensation (abort): the operation that undoes a completed plan item, or None when it cannot be undone.
UNDO = {
    "add": "deactivate",
    "modify": "modify",
    "suspend": "resume",
    "resume": "suspend",
    "delete": None,
    "moveOut": "activate",
    "moveIn": "deactivate",
}  # a move undone: off the new site, back on the old


def activate_item(order_id: str, plan_item_id: str) -> str:
    """Carry out one plan item through its adapter (activate, modify, suspend, resume or deactivate) and
    record the outcome in the service inventory."""
    return _operate(order_id, plan_item_id, "do")


def deactivate_item(order_id: str, plan_item_id: str) -> str:
    """Compensation: undo a plan item this order completed (deactivate what it activated, restore what it
    modified, resume what it suspended…)."""
    return _operate(order_id, plan_item_id, "undo")


def _adapter_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parameters.items() if not k.startswith("_")}


def _operate(order_id: str, plan_item_id: str, mode: str) -> str:
    with orchestration.step_session() as s:
        found = s.execute(
            select(PlanItem, ProductOrder.state)
            .join(ProductOrder, ProductOrder.id == PlanItem.order_id)
            .where(PlanItem.id == plan_item_id, PlanItem.order_id == order_id)
        ).one_or_none()
        if found is None:
            raise StepFailedForGood(f"plan item {plan_item_id} of order {order_id} not found")
        plan, order_state = found
        if plan.kind in ordering.WAIT_KINDS:
            return plan.state  # field/shipping items have no adapter effect to do or undo
        if mode == "do" and plan.state not in ("completed", "cancelled") and order_state == CANCELLING:
            return CANCELLING  # cancelProductOrder accepted: do nothing more
        if plan.kind == ordering.RESOURCE_KIND:
            # no undo of its own: the service it assigned to releases the resources when terminated
            return _assign(s, plan) if mode == "do" else plan.state
        if plan.kind == ordering.SITE_RESOURCES_KIND:
            return _site_resources(s, plan, mode)
        views = inventory.service_views(s, [plan.service_id])  # its id and state: no history needed here
        if not views:
            raise StepFailedForGood(f"service {plan.service_id} of plan item {plan_item_id} not found")
        view = views[0]
        parameters = _adapter_parameters(dict(plan.parameters))
        if mode == "do":
            if plan.state in ("completed", "cancelled"):
                return plan.state  # done before (or skipped by staff)
            if view.state not in NEEDS[plan.action]:
                error = (
                    f"service {view.id} is {view.state}; a {plan.action} needs it "
                    f"{' or '.join(NEEDS[plan.action])}"
                )
                _record_failure(plan_item_id, error)
                raise StepFailedForGood(error)
            operation = ordering.OPERATIONS[plan.action]
            key = f"{plan.id}:{operation}"
        else:
            operation_or_none = UNDO.get(plan.action)
            if plan.state != "completed" or operation_or_none is None:
                return plan.state  # nothing this order did, or nothing that can be undone
            operation = operation_or_none
            key = f"{plan.id}:{operation}" if plan.action == "add" else f"{plan.id}:undo-{operation}"
            if plan.action == "modify":
                parameters = dict(plan.parameters.get(ordering.UNDO_KEY) or {})
        request = AdapterRequest(
            idempotency_key=key,
            service_id=view.id,
            action=plan.adapter_action,
            parameters=parameters,
            order_id=order_id,
        )
        adapter_name, action = plan.adapter, plan.action
        timeout = step_timeout(plan.parameters)
        s.rollback()  # no database transaction is held while the adapter works
    try:
        result = _call_with_timeout(adapter_name, operation, request, timeout)
    except (AdapterAnswerMalformed, UnknownAdapter) as exc:
        _record_failure(plan_item_id, str(exc))
        raise StepFailedForGood(str(exc)) from None
    except Exception as exc:
        _record_failure(plan_item_id, f"{type(exc).__name__}: {exc}")
        raise StepFailed(f"{type(exc).__name__}: {exc}") from None
    with orchestration.step_session() as s:
        locked = s.get(PlanItem, plan_item_id, with_for_update=True)
        assert locked is not None
        plan = locked
        service = inventory.get_service(s, plan.service_id)
        now = clock.now()
        plan.attempts += 1  # before the state change below flushes the plan item: one UPDATE, not two
        plan.started_at = plan.started_at or now
        plan.updated_at = now
        ids = {"order_id": order_id, "order_item_id": plan.order_item_id}
        if mode == "do":
            if action == "add":
                if service.state != "active":
                    inventory.change_state(
                        s, service, "active", action="add", network_ref=result.network_ref, **ids
                    )
            elif action == "modify":
                inventory.modify_characteristics(
                    s, service, _adapter_parameters(dict(plan.parameters)), **ids
                )
            elif action == "suspend":
                inventory.change_state(s, service, "inactive", action="suspend", **ids)
            elif action == "resume":
                inventory.change_state(s, service, "active", action="resume", **ids)
            elif action in ("moveOut", "moveIn"):
                inventory.move(s, service, plan.parameters.get("siteId"), phase=action, **ids)
            elif action == "delete":
                inventory.change_state(s, service, "terminated", action="delete", **ids)
                inventory.release_resources(s, service, actor=ACTOR, **ids)
            plan.completed_at = now
            set_plan_state(s, plan, "completed")
        else:
            if action == "add":
                terminate(s, service, action="compensate", **ids)
            elif action == "modify":
                inventory.modify_characteristics(
                    s, service, dict(plan.parameters.get(ordering.UNDO_KEY) or {}), action="compensate", **ids
                )
            elif action == "suspend":
                inventory.change_state(s, service, "active", action="resume", **ids)
            elif action == "resume":
                inventory.change_state(s, service, "inactive", action="suspend", **ids)
            elif action == "moveIn":  # back off the new site: the service's site is the old one again
                inventory.move(
                    s, service, plan.parameters.get(ordering.MOVE_FROM), phase="undo-moveIn", **ids
                )
            elif action == "moveOut":  # active at the old site again
                inventory.move(s, service, plan.parameters.get("siteId"), phase="undo-moveOut", **ids)
            set_plan_state(s, plan, "cancelled")
            plan.skip_reason = (
                "undone: order aborted" if action != "add" else "activation undone: order aborted"
            )
        s.commit()
        return plan.state


def _assign(s: Session, plan: PlanItem) -> str:
    """Resource work: assign a reservation the order carries to the plan item's service (one transaction)."""
    from turnup.kernel.errors import TurnupError

    if plan.state in ("completed", "cancelled"):
        return plan.state
    plan_item_id = plan.id
    try:
        service = inventory.get_service(s, plan.service_id)
        inventory.assign_reservation(
            s,
            service,
            dict(plan.parameters["reservation"]),
            order_id=plan.order_id,
            actor=ACTOR,
            lines=plan.parameters.get("lines"),
            fulfilment_method=plan.parameters.get("fulfilmentMethod"),
        )
    except TurnupError as exc:
        s.rollback()
        _record_failure(plan_item_id, exc.message)
        raise StepFailedForGood(exc.message) from None
    now = clock.now()
    plan.attempts += 1
    plan.started_at = plan.started_at or now
    plan.completed_at = now
    set_plan_state(s, plan, "completed")
    s.commit()
    return plan.state


def _site_resources(s: Session, plan: PlanItem, mode: str) -> str:
    """A move's site-dependent resources (one transaction, idempotent): ``assign`` gives the service what the
    order held at the new site; ``release`` gives back the old site's. Undoing a completed ``assign`` (move
    aborted or cancelled) gives the new site's back; a ``release`` is not undone (it runs last)."""
    from turnup.kernel.errors import TurnupError

    plan_item_id, now = plan.id, clock.now()
    if mode == "undo":
        if plan.action != "assign" or plan.state != "completed":
            return plan.state
        service = inventory.get_service(s, plan.service_id)
        rid = plan.parameters["reservation"]["id"]
        mine = [e for e in service.resources or [] if e.get("reservationId") == rid]
        inventory.release_move_resources(s, service, mine, order_id=plan.order_id, actor=ACTOR)
        set_plan_state(s, plan, "cancelled")
        plan.skip_reason = "undone: order aborted"
        plan.updated_at = now
        s.commit()
        return plan.state
    if plan.state in ("completed", "cancelled"):
        return plan.state
    try:
        service = inventory.get_service(s, plan.service_id)
        if plan.action == "assign":
            inventory.assign_move_resources(
                s, service, str(plan.parameters["reservation"]["id"]), order_id=plan.order_id, actor=ACTOR
            )
        else:
            inventory.release_move_resources(
                s, service, list(plan.parameters.get("release") or []), order_id=plan.order_id, actor=ACTOR
            )
    except TurnupError as exc:
        s.rollback()
        _record_failure(plan_item_id, exc.message)
        raise StepFailedForGood(exc.message) from None
    plan.attempts += 1
    plan.started_at = plan.started_at or now
    plan.completed_at = now
    set_plan_state(s, plan, "completed")
    s.commit()
    return plan.state


def _cancelling(s: Session, order_id: str) -> bool:
    return s.scalar(select(ProductOrder.state).where(ProductOrder.id == order_id)) == CANCELLING


def _call_with_timeout(
    adapter_name: str, operation: str, request: AdapterRequest, timeout: float
) -> AdapterResult:
    return call_with_timeout(adapters(), adapter_name, operation, request, timeout)


def _record_failure(plan_item_id: str, error: str) -> None:
    with orchestration.step_session() as s:
        plan = s.get(PlanItem, plan_item_id, with_for_update=True)
        if plan is not None:
            now = clock.now()
            plan.attempts += 1
            plan.last_error = error[:2000]
            plan.started_at = plan.started_at or now
            if plan.state == "acknowledged":
                set_plan_state(s, plan, "inProgress")
            plan.updated_at = now
            s.commit()


# --- durable waits for outside events -----------------------------------------------------------------------
def begin_wait(order_id: str, plan_item_id: str) -> str:
    """A field/shipping plan item starts waiting for its event (plan item inProgress)."""
    with orchestration.step_session() as s:
        plan = s.get(PlanItem, plan_item_id, with_for_update=True)
        if plan is None or plan.order_id != order_id:
            raise StepFailedForGood(f"plan item {plan_item_id} of order {order_id} not found")
        if plan.state != "completed" and _cancelling(s, order_id):
            return CANCELLING
        if plan.state == "acknowledged":
            plan.started_at = plan.started_at or clock.now()
            set_plan_state(s, plan, "inProgress")
        s.commit()
        return plan.state


def hand_over(order_id: str, plan_item_id: str, reference: str | None) -> int:
    """After a field/shipping/pickup item's event: hand over the stock it delivers that is still in the
    warehouse (``services.hand_over_stock``). ``report_event`` already does this when the order's
    resources are assigned by then; an event reported earlier (the workflow had not yet run the
    resource-assignment items) leaves the stock to this step, which runs after them. Idempotent: each
    allocation line is handed over at most once. Returns the number of lines handed over here."""
    with orchestration.step_session() as s:
        plan = s.get(PlanItem, plan_item_id)
        if plan is None or plan.order_id != order_id or plan.kind not in ordering.HANDOVER:
            return 0
        order = ordering.get_order(s, order_id)
        moved = ordering.hand_over_stock(s, order, plan, reference, ACTOR)
        s.commit()
        return len(moved)


def raise_jeopardy(order_id: str, plan_item_id: str, count: int, waited_seconds: float) -> None:
    """The awaited event is late: publish ProductOrderJeopardyEvent (the order keeps its state)."""
    with orchestration.step_session() as s:
        order = ordering.get_order(s, order_id)
        plan = s.get(PlanItem, plan_item_id)
        assert plan is not None
        alert = {
            "id": f"{plan_item_id}-{count}",
            "@type": "JeopardyAlert",
            "name": f"{plan.kind} late",
            "jeopardyType": "hazard",
            "alertDate": clock.now().isoformat(),
            "message": f"{plan.adapter_action} not reported within {waited_seconds:g}s (jeopardy {count})",
            "planItemId": plan_item_id,
            "awaitedEvent": plan.adapter_action,
            "count": count,
        }
        publish(
            s,
            api=API,
            event_type="ProductOrderJeopardyEvent",
            resource_type="productOrder",
            resource=render_order(order) | {"jeopardyAlert": [alert]},
        )
        audit.record(
            s,
            actor=ACTOR,
            action="productOrder.jeopardy",
            resource_type="productOrder",
            resource_id=order_id,
            details=alert,
        )
        s.commit()


# --- fallout ------------------------------------------------------------------------------------------------
def open_fallout(
    order_id: str, plan_item_id: str, workflow_id: str, step: str, error: str, attempts: int
) -> str:
    """Record a step that failed for good in the fallout queue and hold the order."""
    with orchestration.step_session() as s:
        existing = s.scalars(
            select(FalloutEntry).where(
                FalloutEntry.plan_item_id == plan_item_id,
                FalloutEntry.step == step,
                FalloutEntry.state == "open",
            )
        ).first()
        if existing is not None:
            return existing.id
        order = ordering.get_order(s, order_id, lock=True)
        entry = FalloutEntry(
            id=new_id(),
            order_id=order_id,
            plan_item_id=plan_item_id,
            workflow_id=workflow_id,
            step=step,
            error=error[:4000],
            attempts=attempts,
            state="open",
            opened_at=clock.now(),
        )
        s.add(entry)
        plan = s.get(PlanItem, plan_item_id)
        if plan is not None and step in ("activate", "wait"):
            set_plan_state(s, plan, "held")
        if order.state == "inProgress":
            ordering.transition(s, order, "held", ACTOR, f"fallout {entry.id}: {step} failed: {error[:300]}")
        audit.record(
            s,
            actor=ACTOR,
            action="fallout.open",
            resource_type="falloutEntry",
            resource_id=entry.id,
            details={"orderId": order_id, "planItemId": plan_item_id, "step": step},
        )
        s.commit()
        return entry.id


# --- finish -------------------------------------------------------------------------------------------------
def finish_order(order_id: str, aborted: bool) -> str:
    """Set the final order and item states: completed, partial or failed."""
    with orchestration.step_session() as s:
        order = ordering.get_order(s, order_id, lock=True)
        if order.state in ordering.FINAL or order.state == CANCELLING:
            return order.state  # a cancellation accepted after the last step: the workflow compensates
        plan = ordering.plan_items(s, order_id)
        if any(p.state not in ("completed", "cancelled") for p in plan):
            settle_resources(s, plan, order_id)
        for p in plan:
            if p.state not in ("completed", "cancelled"):
                set_plan_state(s, p, "failed" if p.state == "held" else "cancelled")
                p.updated_at = clock.now()
                service = inventory.get_service(s, p.service_id)
                if service.state == "designed":
                    terminate(s, service, order_id=order_id, order_item_id=p.order_item_id, action="abort")
        items: list[ProductOrderItem] = list(order.items)
        for item in items:
            mine = [p for p in plan if p.order_item_id == item.id]
            item.state = "completed" if mine and all(p.state == "completed" for p in mine) else "failed"
        if aborted:
            final = "failed"
        elif all(i.state == "completed" for i in items):
            final = "completed"
        elif any(i.state == "completed" for i in items):
            final = "partial"
        else:
            final = "failed"
        if order.state != "inProgress":  # held/pending: resume first (TMF622 has no held -> completed)
            ordering.transition(
                s,
                order,
                "inProgress" if not aborted else "failed",
                ACTOR,
                "aborted from the fallout queue" if aborted else None,
            )
        if order.state != final:
            ordering.transition(s, order, final, ACTOR)
        s.commit()
        return final


# --- cancellation -------------------------------------------------------------------------------------------
def finish_cancellation(order_id: str) -> str:
    """End a cancelled order (after compensation): plan items not done are cancelled, designed services
    terminated, resources of the services this order created and then terminated are released, the
    order's held reservations released, items and order ``cancelled``."""
    with orchestration.step_session() as s:
        order = ordering.get_order(s, order_id, lock=True)
        if order.state in ordering.FINAL:
            return order.state
        now = clock.now()
        plan = ordering.plan_items(s, order_id)
        settle_resources(s, plan, order_id)
        for p in plan:
            if p.state != "cancelled" and not (p.state == "completed" and p.action != "add"):
                set_plan_state(s, p, "cancelled")
                p.skip_reason = p.skip_reason or "order cancelled"
                p.updated_at = now
            if p.kind != "serviceActivation" or p.action != "add":
                continue
            service = inventory.get_service(s, p.service_id)
            if service.state in ("designed", "reserved"):
                terminate(s, service, action="cancel", order_id=order_id, order_item_id=p.order_item_id)
        ordering.release_reservations(s, order, ACTOR)
        for item in order.items:
            item.state = "cancelled"
        ordering.transition(s, order, "cancelled", ACTOR, order.state_reason)
        s.commit()
        return order.state
