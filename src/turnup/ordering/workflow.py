"""The order workflow (DBOS), registered when this module is imported (``turnup.wiring.wire``). It only
decides what happens next; every read, write and adapter call is a step.

    validate (acknowledged -> inProgress, returns the plan in dependency order)
    for each plan item: activate/modify/suspend/resume/deactivate (adapter + service inventory), retried
        with durable backoff and a per-call timeout; field/shipping/pickup items wait durably for an outside
        event (jeopardy events when late, fallout after too many), then hand over the stock they deliver
        (``order.handOver``: what ``report_event`` could not yet, when the event came before the resources
        were assigned);
        failing for good -> fallout entry, order held, durable wait for staff: retry | skip | abort
    abort -> compensate: deactivate what this order activated, in reverse order
    cancelProductOrder (order pendingCancellation; steps see it, waits get a message) -> compensate, then
        order.cancelled (release what is left, order cancelled)
    finish (completed | partial | failed)

Checkpoints per order: 2 + one per plan item when nothing fails.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOS

from turnup.ordering import steps
from turnup.ordering.services import ORDER_WORKFLOW
from turnup.ordering.steps import RetryPolicy, StepFailedForGood

FALLOUT_TOPIC = "fallout:{}"
EVENT_TOPIC = "event:{}"  # outside events (technicianCompleted, shipmentDelivered…) for one plan item


@DBOS.step(name="order.validate")
def validate_step(order_id: str) -> dict[str, Any]:
    """Also reads the retry policy, so it is checkpointed and a replay makes the same retry decisions."""
    p = RetryPolicy.from_env()
    return steps.start_order(order_id) | {"policy": [p.max_attempts, p.base_seconds, p.cap_seconds]}


@DBOS.step(name="order.activate")
def activate_step(order_id: str, plan_item_id: str) -> str:
    return steps.activate_item(order_id, plan_item_id)


@DBOS.step(name="order.deactivate")
def deactivate_step(order_id: str, plan_item_id: str) -> str:
    return steps.deactivate_item(order_id, plan_item_id)


@DBOS.step(name="order.await")
def begin_wait_step(order_id: str, plan_item_id: str) -> str:
    return steps.begin_wait(order_id, plan_item_id)


@DBOS.step(name="order.handOver")
def hand_over_step(order_id: str, plan_item_id: str, reference: str | None) -> int:
    return steps.hand_over(order_id, plan_item_id, reference)


@DBOS.step(name="order.jeopardy")
def jeopardy_step(order_id: str, plan_item_id: str, count: int, waited: float) -> None:
    steps.raise_jeopardy(order_id, plan_item_id, count, waited)


@DBOS.step(name="order.openFallout")
def open_fallout_step(
    order_id: str, plan_item_id: str, workflow_id: str, step: str, error: str, attempts: int
) -> str:
    return steps.open_fallout(order_id, plan_item_id, workflow_id, step, error, attempts)


@DBOS.step(name="order.cancelled")
def cancelled_step(order_id: str) -> str:
    return steps.finish_cancellation(order_id)


@DBOS.step(name="order.finish")
def finish_step(order_id: str, aborted: bool) -> str:
    return steps.finish_order(order_id, aborted)


def _decide(
    order_id: str, plan_item_id: str, step: str, error: str, attempts: int, policy: RetryPolicy
) -> str:
    """Open a fallout entry and wait (durably) for staff: retry | skip | abort."""
    workflow_id = DBOS.workflow_id or ""
    fallout_id = open_fallout_step(order_id, plan_item_id, workflow_id, step, error, attempts)
    decision: dict[str, Any] | None = None
    while decision is None:
        decision = DBOS.recv(FALLOUT_TOPIC.format(fallout_id), timeout_seconds=policy.fallout_wait_seconds)
    return str(decision.get("action"))


def _wait(order_id: str, plan_item_id: str, spec: dict[str, Any], policy: RetryPolicy) -> str:
    """Wait durably for the outside event a field/shipping item needs (``POST …/productOrder/{id}/event``).

    Every ``jeopardySeconds`` without it: a ProductOrderJeopardyEvent. With ``onTimeout: fallout``, or after
    ``maxJeopardies`` alerts, the item goes to the fallout queue (order held): retry = keep waiting (the
    jeopardy count restarts), skip = go on without it, abort = compensate. Returns done | skipped | aborted.
    """
    if begin_wait_step(order_id, plan_item_id) == steps.CANCELLING:
        return "cancelled"
    timeout = float(spec.get("jeopardySeconds") or 86400)
    max_jeopardies = int(spec.get("maxJeopardies") or 3)
    jeopardies = 0
    while True:
        message = DBOS.recv(EVENT_TOPIC.format(plan_item_id), timeout_seconds=timeout)
        if message is not None:
            if message.get("cancel"):
                return "cancelled"
            # a step added after workflows were already running: DBOS.patch is False for a workflow that
            # recorded its next step under the earlier code (it then goes on without it, as it did)
            if DBOS.patch("order-hand-over-after-wait"):
                hand_over_step(order_id, plan_item_id, message.get("reference"))
            return "done"
        jeopardies += 1
        jeopardy_step(order_id, plan_item_id, jeopardies, timeout * jeopardies)
        if spec.get("onTimeout") == "fallout" or jeopardies >= max_jeopardies:
            action = _decide(
                order_id,
                plan_item_id,
                "wait",
                f"{spec.get('event')} not reported after {jeopardies} jeopardy alert(s)",
                jeopardies,
                policy,
            )
            if action == "retry":
                jeopardies = 0
                continue
            return {"skip": "skipped", "cancel": "cancelled"}.get(action, "aborted")


def _run(order_id: str, plan_item_id: str, operation: str, policy: RetryPolicy) -> str:
    """Run one plan item operation until done, skipped or aborted. Returns done | skipped | aborted."""
    step = activate_step if operation == "activate" else deactivate_step
    attempt = 0
    while True:
        attempt += 1
        try:
            if step(order_id, plan_item_id) == steps.CANCELLING:
                return "cancelled"
            return "done"
        except Exception as exc:
            if not isinstance(exc, StepFailedForGood) and attempt < policy.max_attempts:
                DBOS.sleep(policy.backoff(attempt))
                continue
            action = _decide(order_id, plan_item_id, operation, str(exc), attempt, policy)
            if action == "retry":
                attempt = 0
                continue
            if action in ("skip", "cancel"):
                return "skipped" if action == "skip" else "cancelled"
            return "aborted"


@DBOS.workflow(name=ORDER_WORKFLOW)
def order_workflow(order_id: str) -> str:
    start = validate_step(order_id)
    if not start["proceed"]:
        return str(start["state"])
    attempts, base, cap = start["policy"]
    policy = RetryPolicy(max_attempts=int(attempts), base_seconds=float(base), cap_seconds=float(cap))
    activated: list[str] = []
    waits: dict[str, dict[str, Any]] = start.get("waits") or {}
    for plan_item_id in start["items"]:
        if plan_item_id in waits:
            outcome = _wait(order_id, plan_item_id, waits[plan_item_id], policy)
        else:
            outcome = _run(order_id, plan_item_id, "activate", policy)
        if outcome == "done":
            activated.append(plan_item_id)
        elif outcome in ("aborted", "cancelled"):
            _compensate(order_id, activated, policy)
            if outcome == "cancelled":
                return cancelled_step(order_id)
            final = finish_step(order_id, True)
            # a cancellation accepted while the abort was compensating ends the order cancelled
            return cancelled_step(order_id) if final == steps.CANCELLING else final
    final = finish_step(order_id, False)
    if final == steps.CANCELLING:  # cancelProductOrder accepted after the last step ran
        _compensate(order_id, activated, policy)
        return cancelled_step(order_id)
    return final


def _compensate(order_id: str, activated: list[str], policy: RetryPolicy) -> None:
    """Undo what this order did, in reverse (a failing undo goes to fallout too)."""
    for done in reversed(activated):
        _run(order_id, done, "deactivate", policy)
