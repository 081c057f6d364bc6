"""The order workflow's steps. Each is idempotent: run again after a crash, it finds its work done.

Every step opens its own short Turnup transaction(s). Adapter calls carry the idempotency key
``<plan item id>:<operation>``, so an adapter that already applied the effect answers without repeating it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from turnup.kernel import audit, clock
from turnup.kernel.ids import new_id
from turnup.ordering import services as ordering
from turnup.ordering.orm import PlanItem, ProductOrder, ProductOrderItem
from turnup.orchestration import runtime as orchestration
from turnup.provisioning.adapters import (
    AdapterAnswerMalformed, AdapterContext, AdapterRegistry, AdapterRequest, UnknownAdapter,
)
from turnup.provisioning.orm import FalloutEntry
from turnup.service_inventory import services as inventory

ACTOR = "orchestrator"


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
        return min(self.base_seconds * 2 ** (failed_attempts - 1), self.cap_seconds)

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(max_attempts=int(os.environ.get("TURNUP_STEP_MAX_ATTEMPTS", "5")),
                   base_seconds=float(os.environ.get("TURNUP_STEP_BACKOFF_SECONDS", "1.0")),
                   cap_seconds=float(os.environ.get("TURNUP_STEP_BACKOFF_CAP_SECONDS", "60")))


_registry: AdapterRegistry | None = None


def adapters() -> AdapterRegistry:
    global _registry
    factory = orchestration.runtime.factory
    if _registry is None or _registry.context.sessions is not factory:
        assert factory is not None, "orchestrator not launched"
        _registry = AdapterRegistry(AdapterContext(sessions=factory, settings={}))
    return _registry


# --- start ----------------------------------------------------------------------------------------------------
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
        items = [p.id for p in _topological(ordering.plan_items(s, order_id))]
        s.commit()
        return {"proceed": True, "state": order.state, "items": items}


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


# --- activate / deactivate ------------------------------------------------------------------------------------
def activate_item(order_id: str, plan_item_id: str) -> str:
    """Activate one service through its adapter and record it active in the service inventory."""
    return _operate(order_id, plan_item_id, "activate")


def deactivate_item(order_id: str, plan_item_id: str) -> str:
    """Compensation: deactivate a service this order activated, and record it terminated."""
    return _operate(order_id, plan_item_id, "deactivate")


def _operate(order_id: str, plan_item_id: str, operation: str) -> str:
    with orchestration.step_session() as s:
        plan = s.get(PlanItem, plan_item_id)
        if plan is None or plan.order_id != order_id:
            raise StepFailedForGood(f"plan item {plan_item_id} of order {order_id} not found")
        service = inventory.get_service(s, plan.service_id)
        if operation == "activate" and (plan.state == "completed" or plan.state == "cancelled"):
            return plan.state  # done before (or skipped by staff)
        if operation == "deactivate" and service.state == "terminated":
            return "terminated"
        request = AdapterRequest(idempotency_key=f"{plan.id}:{operation}", service_id=service.id,
                                 action=plan.adapter_action, parameters=dict(plan.parameters),
                                 order_id=order_id)
        adapter_name = plan.adapter
        s.rollback()  # no database transaction is held while the adapter works
    try:
        result = adapters().call(adapter_name, operation, request)
    except (AdapterAnswerMalformed, UnknownAdapter) as exc:
        _record_failure(plan_item_id, str(exc))
        raise StepFailedForGood(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 (any adapter failure is retried by the workflow)
        _record_failure(plan_item_id, f"{type(exc).__name__}: {exc}")
        raise StepFailed(f"{type(exc).__name__}: {exc}") from None
    with orchestration.step_session() as s:
        plan = s.get(PlanItem, plan_item_id, with_for_update=True)
        assert plan is not None
        service = inventory.get_service(s, plan.service_id)
        now = clock.now()
        if operation == "activate":
            if service.state != "active":
                inventory.change_state(s, service, "active", order_id=order_id,
                                       order_item_id=plan.order_item_id, action="add",
                                       network_ref=result.network_ref)
            plan.state = "completed"
            plan.completed_at = now
        else:
            inventory.change_state(s, service, "terminated", order_id=order_id,
                                   order_item_id=plan.order_item_id, action="compensate")
            plan.state = "cancelled"
            plan.skip_reason = "activation undone: order aborted"
        plan.attempts += 1
        plan.started_at = plan.started_at or now
        plan.updated_at = now
        s.commit()
        return plan.state


def _record_failure(plan_item_id: str, error: str) -> None:
    with orchestration.step_session() as s:
        plan = s.get(PlanItem, plan_item_id, with_for_update=True)
        if plan is not None:
            now = clock.now()
            plan.attempts += 1
            plan.last_error = error[:2000]
            plan.started_at = plan.started_at or now
            if plan.state == "acknowledged":
                plan.state = "inProgress"
            plan.updated_at = now
            s.commit()


# --- fallout --------------------------------------------------------------------------------------------------
def open_fallout(order_id: str, plan_item_id: str, workflow_id: str, step: str, error: str,
                 attempts: int) -> str:
    """Record a step that failed for good in the fallout queue and hold the order."""
    with orchestration.step_session() as s:
        existing = s.scalars(select(FalloutEntry).where(
            FalloutEntry.plan_item_id == plan_item_id, FalloutEntry.step == step,
            FalloutEntry.state == "open")).first()
        if existing is not None:
            return existing.id
        order = ordering.get_order(s, order_id, lock=True)
        entry = FalloutEntry(id=new_id(), order_id=order_id, plan_item_id=plan_item_id, workflow_id=workflow_id,
                             step=step, error=error[:4000], attempts=attempts, state="open",
                             opened_at=clock.now())
        s.add(entry)
        plan = s.get(PlanItem, plan_item_id)
        if plan is not None and step == "activate":
            plan.state = "held"
        if order.state == "inProgress":
            ordering.transition(s, order, "held", ACTOR, f"fallout {entry.id}: {step} failed: {error[:300]}")
        audit.record(s, actor=ACTOR, action="fallout.open", resource_type="falloutEntry", resource_id=entry.id,
                     details={"orderId": order_id, "planItemId": plan_item_id, "step": step})
        s.commit()
        return entry.id


# --- finish ---------------------------------------------------------------------------------------------------
def finish_order(order_id: str, aborted: bool) -> str:
    """Set the final order and item states: completed, partial or failed."""
    with orchestration.step_session() as s:
        order = ordering.get_order(s, order_id, lock=True)
        if order.state in ordering.FINAL:
            return order.state
        plan = ordering.plan_items(s, order_id)
        for p in plan:
            if p.state not in ("completed", "cancelled"):
                p.state = "failed" if p.state == "held" else "cancelled"
                p.updated_at = clock.now()
                service = inventory.get_service(s, p.service_id)
                if service.state == "designed":
                    inventory.change_state(s, service, "terminated", order_id=order_id,
                                           order_item_id=p.order_item_id, action="abort")
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
            ordering.transition(s, order, "inProgress" if not aborted else "failed", ACTOR,
                                "aborted from the fallout queue" if aborted else None)
        if order.state != final:
            ordering.transition(s, order, final, ACTOR)
        s.commit()
        return final


