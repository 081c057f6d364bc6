"""Product order use cases: accept (validate + decompose + enqueue the workflow), cancel, state changes.

Order states follow TMF622. ``transition`` is the only way a state changes; an illegal change is a 409.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.accounts.orm import Customer
from turnup.catalog.orm import ProductOffering
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish
from turnup.ordering.orm import PlanItem, ProductOrder, ProductOrderItem
from turnup.ordering.render import API, SERVICE_ORDER_API, render_order, render_service_order
from turnup.ordering.schemas import ProductOrderCreate
from turnup.orchestration import runtime as orchestration
from turnup.provisioning.adapters import available_adapters
from turnup.service_inventory import services as inventory
from turnup.service_inventory.orm import Service

TRANSITIONS: dict[str, set[str]] = {
    "acknowledged": {"inProgress", "rejected", "cancelled"},
    "inProgress": {"completed", "partial", "failed", "held", "pending"},
    "held": {"inProgress", "failed", "cancelled"},
    "pending": {"inProgress", "failed", "cancelled"},
    "completed": set(),
    "partial": set(),
    "failed": set(),
    "cancelled": set(),
    "rejected": set(),
}
FINAL = {s for s, nxt in TRANSITIONS.items() if not nxt}
MAX_BUNDLE_DEPTH = 3
# plan item action -> adapter operation
OPERATIONS = {"add": "activate", "modify": "modify", "suspend": "suspend", "resume": "resume",
              "delete": "deactivate"}
# plan item kinds that wait for an outside event instead of calling an adapter, and their default event
WAIT_KINDS = ("fieldVisit", "shipment")
DEFAULT_EVENTS = {"fieldVisit": "technicianCompleted", "shipment": "shipmentDelivered"}
UNDO_KEY = "_undo"  # plan parameters key holding what a modify replaced (not sent to the adapter)


def _lock_services(session: Session, data: ProductOrderCreate) -> dict[str, Service]:
    """Lock the services the order's modify/delete items name, in primary-key order.

    The lock serialises orders on one service: the second of two concurrent orders waits here until the
    first commits, then sees its plan item and is refused (see ``_change``).
    """
    ids = sorted({i.product.id for i in data.productOrderItem if i.product is not None and i.action != "add"})
    found: dict[str, Service] = {}
    for service_id in ids:
        service = session.get(Service, service_id, with_for_update=True, populate_existing=True)
        if service is not None:
            found[service_id] = service
    return found


def _change(session: Session, item: Any, where: str, customer_id: str, service: Service | None
            ) -> dict[str, Any]:
    """Validate a modify/delete item against the service it names; return the plan action and parameters.

    Rules: ``delete`` (disconnect) needs an active or suspended (``inactive``) service; ``modify`` with
    ``product.status: suspended`` (suspend) needs an active one, with ``product.status: active`` (resume) a
    suspended one; ``modify`` with ``productCharacteristic`` needs an active one. A service that is the
    subject of an order not yet final (any action, including the add that created it) cannot be named by
    another order: 409 naming the open order (refused, not queued).
    """
    if item.product is None:
        raise InvalidInput(f"{where}.product: required for action {item.action!r} (the product to change)")
    if item.quantity != 1:
        raise InvalidInput(f"{where}.quantity: must be 1 for action {item.action!r}")
    if service is None:
        raise InvalidInput(f"{where}.product.id: unknown product/service {item.product.id!r}")
    if service.customer_id != customer_id:
        raise InvalidInput(f"{where}.product.id: service {service.id!r} belongs to another customer")
    if item.productOffering is not None and item.productOffering.id != service.offering_id:
        raise InvalidInput(f"{where}.productOffering.id: service {service.id!r} realises offering "
                           f"{service.offering_id!r}, not {item.productOffering.id!r}")
    open_order = session.scalar(
        select(PlanItem.order_id).join(ProductOrder, ProductOrder.id == PlanItem.order_id)
        .where(PlanItem.service_id == service.id, ProductOrder.state.not_in(sorted(FINAL))).limit(1))
    if open_order is not None:
        raise Conflict(f"{where}.product.id: service {service.id} is already the subject of productOrder "
                       f"{open_order}, which is not finished; one order at a time per service",
                       reason="Service has an order in progress")
    status, chars = item.product.status, item.product.productCharacteristic
    if item.action == "delete":
        if status is not None or chars:
            raise InvalidInput(f"{where}.product: a delete item takes no status or productCharacteristic")
        _need_state(service, ("active", "inactive"), "disconnected", where)
        return {"action": "delete", "parameters": dict(service.characteristics)}
    if status is not None and chars:
        raise InvalidInput(f"{where}.product: change the status or the characteristics, not both in one item")
    if status == "suspended":
        _need_state(service, ("active",), "suspended", where)
        return {"action": "suspend", "parameters": dict(service.characteristics)}
    if status == "active":
        _need_state(service, ("inactive",), "resumed", where)
        return {"action": "resume", "parameters": dict(service.characteristics)}
    if not chars:
        raise InvalidInput(f"{where}.product: nothing to modify (give productCharacteristic or status)")
    names = [c.name for c in chars]
    if len(set(names)) != len(names):
        raise InvalidInput(f"{where}.product.productCharacteristic: names must be unique")
    _need_state(service, ("active",), "modified", where)
    changes = {c.name: c.value for c in chars}
    return {"action": "modify", "parameters": {
        **changes, UNDO_KEY: {k: service.characteristics.get(k) for k in changes}}}


def _need_state(service: Service, states: tuple[str, ...], verb: str, where: str) -> None:
    if service.state not in states:
        raise Conflict(f"{where}.product.id: service {service.id} is {service.state}; only "
                       f"{' or '.join(states)} services can be {verb}", reason="Illegal service state")


def database_url(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=False)


def get_order(session: Session, order_id: str, *, lock: bool = False) -> ProductOrder:
    order = session.get(ProductOrder, order_id, with_for_update=lock or None)
    if order is None:
        raise NotFound(f"productOrder {order_id!r} not found")
    return order


def transition(session: Session, order: ProductOrder, new_state: str, actor: str,
               reason: str | None = None) -> None:
    """Change an order's state (TMF622 rules), audit it and publish ProductOrderStateChangeEvent."""
    if new_state not in TRANSITIONS[order.state]:
        raise Conflict(f"state: a {order.state} productOrder cannot become {new_state}",
                       reason="Illegal state transition")
    old = order.state
    now = clock.now()
    order.state = new_state
    order.state_reason = reason
    order.updated_at = now
    if new_state in FINAL:
        order.completion_date = now
    session.flush()
    audit.record(session, actor=actor, action="productOrder.state", resource_type="productOrder",
                 resource_id=order.id, details={"from": old, "to": new_state}, comment=reason)
    publish(session, api=API, event_type="ProductOrderStateChangeEvent", resource_type="productOrder",
            resource=render_order(order))


def set_plan_state(session: Session, plan: PlanItem, new_state: str) -> None:
    """Change a plan item's (TMF641 service order item's) state and publish ServiceOrderStateChangeEvent."""
    if plan.state == new_state:
        return
    plan.state = new_state
    plan.updated_at = clock.now()
    session.flush()
    publish(session, api=SERVICE_ORDER_API, event_type="ServiceOrderStateChangeEvent",
            resource_type="serviceOrder", resource=render_service_order(plan))


def _provisioning(offering: ProductOffering, where: str, depth: int = 0) -> list[dict[str, Any]]:
    """The provisioning steps an offering needs: its specifications' entries, then its bundle members'."""
    if depth > MAX_BUNDLE_DEPTH:
        raise InvalidInput(f"{where}: bundle nesting deeper than {MAX_BUNDLE_DEPTH}")
    steps: list[dict[str, Any]] = []
    for link in offering.spec_links:
        spec = link.specification
        for entry in (spec.delivery_requirements or {}).get("provisioning") or []:
            kind = entry.get("kind") or "serviceActivation"
            if kind in WAIT_KINDS:
                steps.append({"kind": kind, "specification_id": spec.id, "service_name": f"{spec.name} {kind}",
                              "adapter": None, "event": entry.get("event") or DEFAULT_EVENTS[kind],
                              "action": None, "parameters": {
                                  "event": entry.get("event") or DEFAULT_EVENTS[kind],
                                  "jeopardySeconds": float(entry.get("jeopardySeconds") or 86400),
                                  "onTimeout": entry.get("onTimeout") or "wait",
                                  "maxJeopardies": int(entry.get("maxJeopardies") or 3)}})
                continue
            steps.append({"kind": "serviceActivation", "specification_id": spec.id, "service_name": spec.name,
                          "adapter": entry.get("adapter"), "action": entry.get("action") or "activate",
                          "parameters": dict(entry.get("parameters") or {})})
    for member in offering.bundle_links:
        steps.extend(_provisioning(member.member, where, depth + 1))
    return steps


def create_order(session: Session, data: ProductOrderCreate, actor: str, *, commit: bool = True) -> ProductOrder:
    """Accept a hand-made order: validate everything, decompose it into a plan, enqueue its workflow.

    All in one transaction: the order, its items, the plan, the designed services, the events and the
    DBOS workflow row commit together or not at all.
    """
    url = orchestration.prepare(session)  # system tables exist before this transaction takes any lock
    customers = [p for p in data.relatedParty if p.role == "customer"]
    if len(customers) != 1:
        raise InvalidInput("relatedParty: exactly one party with role 'customer' is required")
    customer = session.get(Customer, customers[0].id)
    if customer is None:
        raise InvalidInput(f"relatedParty[0].id: unknown customer {customers[0].id!r}")
    if customer.status == "closed":
        raise Conflict(f"relatedParty[0].id: customer {customer.id!r} is closed")
    refs = [i.id for i in data.productOrderItem]
    if len(set(refs)) != len(refs):
        raise InvalidInput("productOrderItem: item ids must be unique within the order")
    named = [i.product.id for i in data.productOrderItem if i.product is not None]
    if len(set(named)) != len(named):
        raise InvalidInput("productOrderItem: one item per product; the same product is named twice")
    installed = set(available_adapters())
    services_by_id = _lock_services(session, data)
    resolved: list[tuple[ProductOffering | Service, list[dict[str, Any]]]] = []
    for n, item in enumerate(data.productOrderItem):
        where = f"productOrderItem[{n}]"
        if item.action in ("modify", "delete"):
            service = services_by_id.get(item.product.id) if item.product else None
            resolved.append((service, [_change(session, item, where, customer.id, service)]))  # type: ignore[arg-type]
            continue
        if item.action != "add":
            raise InvalidInput(f"{where}.action: {item.action!r} items are not supported (add, modify, delete)")
        if item.productOffering is None:
            raise InvalidInput(f"{where}.productOffering: required for action 'add'")
        if item.product is not None:
            raise InvalidInput(f"{where}.product: an 'add' item creates a new product; do not name one")
        offering = session.get(ProductOffering, item.productOffering.id)
        if offering is None:
            raise InvalidInput(f"{where}.productOffering.id: unknown product offering "
                               f"{item.productOffering.id!r}")
        if item.productOffering.name is not None and item.productOffering.name != offering.name:
            raise InvalidInput(f"{where}.productOffering.name: {item.productOffering.name!r} does not match "
                               f"offering {offering.id!r} ({offering.name!r})")
        if offering.lifecycle_status != "active" or not offering.is_sellable:
            raise InvalidInput(f"{where}.productOffering: {offering.name!r} is {offering.lifecycle_status}"
                               f"{'' if offering.is_sellable else ' and not sellable'}; it cannot be ordered")
        steps = _provisioning(offering, where)
        if not steps:
            raise InvalidInput(f"{where}.productOffering: {offering.name!r} has no provisioning steps; "
                               "orders without network activation are not supported yet")
        for step in steps:
            if step["kind"] in WAIT_KINDS:
                continue
            if step["adapter"] not in installed:
                raise InvalidInput(f"{where}.productOffering: {offering.name!r} needs provisioning adapter "
                                   f"{step['adapter']!r}, which is not installed")
        if all(step["kind"] in WAIT_KINDS for step in steps):
            raise InvalidInput(f"{where}.productOffering: {offering.name!r} has field or shipping steps but no "
                               "service to activate")
        resolved.append((offering, steps))

    now = clock.now()
    order = ProductOrder(id=new_id(), state="acknowledged", customer_id=customer.id,
                         external_id=data.externalId, description=data.description, priority=data.priority,
                         requested_completion_date=data.requestedCompletionDate, order_date=now,
                         created_at=now, updated_at=now,
                         quote_id=data.quote[0].id if data.quote else None,
                         agreement_ids=[a.id for a in data.agreement] or None,
                         reservation_refs=[{"id": r.id, "@referredType": r.referredType}
                                           for r in data.reservation] or None)
    session.add(order)
    session.flush()
    position = 0
    for n, (item, (target, steps)) in enumerate(zip(data.productOrderItem, resolved, strict=True)):
        if isinstance(target, Service):
            change = steps[0]
            order_item = ProductOrderItem(id=new_id(), order_id=order.id, item_ref=item.id, position=n,
                                          action=item.action, state="acknowledged", quantity=1,
                                          offering_id=target.offering_id, offering_name=target.offering_name)
            session.add(order_item)
            session.flush()
            session.add(PlanItem(
                id=new_id(), order_id=order.id, order_item_id=order_item.id, position=position,
                kind="serviceActivation", action=change["action"], state="acknowledged", service_id=target.id,
                service_name=target.name, specification_id=target.specification_id, adapter=target.adapter,
                adapter_action=OPERATIONS[change["action"]], parameters=change["parameters"], depends_on=[],
                attempts=0, created_at=now, updated_at=now))
            position += 1
            continue
        offering = target
        order_item = ProductOrderItem(id=new_id(), order_id=order.id, item_ref=item.id, position=n,
                                      action=item.action, state="acknowledged", quantity=item.quantity,
                                      offering_id=offering.id, offering_name=offering.name)
        session.add(order_item)
        session.flush()
        for _unit in range(item.quantity):
            previous: str | None = None
            unit_services: dict[int, str] = {}
            for idx, step in enumerate(steps):
                if step["kind"] not in WAIT_KINDS:
                    unit_services[idx] = new_id()
            first_service = next(iter(unit_services.values()))
            for idx, step in enumerate(steps):
                plan_id = new_id()
                if step["kind"] in WAIT_KINDS:
                    # field work / shipping: no adapter; the step waits for an outside event about the
                    # unit's (first) service. ``parameters`` hold the awaited event and the jeopardy rule.
                    session.add(PlanItem(
                        id=plan_id, order_id=order.id, order_item_id=order_item.id, position=position,
                        kind=step["kind"], action="add", state="acknowledged", service_id=first_service,
                        service_name=step["service_name"], specification_id=step["specification_id"],
                        adapter="", adapter_action=step["event"], parameters=step["parameters"],
                        depends_on=[previous] if previous else [], attempts=0, created_at=now,
                        updated_at=now))
                else:
                    service_id = unit_services[idx]
                    inventory.design_service(
                        session, service_id=service_id, name=step["service_name"], customer_id=customer.id,
                        offering_id=offering.id, offering_name=offering.name,
                        specification_id=step["specification_id"], adapter=step["adapter"],
                        characteristics=step["parameters"], order_id=order.id, order_item_id=order_item.id)
                    session.add(PlanItem(
                        id=plan_id, order_id=order.id, order_item_id=order_item.id, position=position,
                        kind="serviceActivation", action="add", state="acknowledged", service_id=service_id,
                        service_name=step["service_name"], specification_id=step["specification_id"],
                        adapter=step["adapter"], adapter_action=step["action"], parameters=step["parameters"],
                        depends_on=[previous] if previous else [], attempts=0, created_at=now,
                        updated_at=now))
                previous = plan_id
                position += 1
    session.flush()
    order.workflow_id = orchestration.enqueue_order_workflow(session, url, order.id)
    audit.record(session, actor=actor, action="productOrder.create", resource_type="productOrder",
                 resource_id=order.id, details={"items": len(data.productOrderItem), "planItems": position})
    session.expire(order, ["items"])
    publish(session, api=API, event_type="ProductOrderCreateEvent", resource_type="productOrder",
            resource=render_order(order))
    if commit:
        session.commit()
    return order


def cancel_order(session: Session, order_id: str, reason: str | None, actor: str) -> ProductOrder:
    """Cancel an order that has not started (``acknowledged``). In-progress cancellation: not yet (409)."""
    order = get_order(session, order_id, lock=True)
    if order.state != "acknowledged":
        raise Conflict(f"state: a {order.state} productOrder cannot be cancelled (only acknowledged orders "
                       "can be, so far; abort a held order through its fallout entry)",
                       reason="Illegal state transition")
    transition(session, order, "cancelled", actor, reason or "cancelled by request")
    for item in order.items:
        item.state = "cancelled"
    for plan in plan_items(session, order.id):
        set_plan_state(session, plan, "cancelled")
        service = inventory.get_service(session, plan.service_id)
        inventory.change_state(session, service, "terminated", order_id=order.id,
                               order_item_id=plan.order_item_id, action="cancel")
    session.commit()
    return order


def plan_items(session: Session, order_id: str) -> list[PlanItem]:
    return list(session.scalars(select(PlanItem).where(PlanItem.order_id == order_id)
                                .order_by(PlanItem.position)))


def report_event(session: Session, order_id: str, data: Any, actor: str) -> PlanItem:
    """An outside event completes the field/shipping plan item waiting for it.

    In one transaction: the plan item is completed, a ProductOrderMilestoneEvent is published, an open
    fallout entry of that wait (order held after too many jeopardy alerts) is resolved as retried, and the
    message reaches the waiting workflow. An event nobody waits for is a 409; an unknown order 404.
    """
    from turnup.provisioning.orm import FalloutEntry

    url = orchestration.prepare(session)
    order = get_order(session, order_id, lock=True)
    if order.state in FINAL or order.workflow_id is None:
        raise Conflict(f"state: productOrder {order.id} is {order.state}; it awaits no events",
                       reason="Illegal state transition")
    waiting = [p for p in plan_items(session, order.id)
               if p.kind in WAIT_KINDS and p.adapter_action == data.eventType
               and p.state in ("acknowledged", "inProgress", "held")
               and (data.planItemId is None or p.id == data.planItemId)]
    if not waiting:
        expected = sorted({p.adapter_action for p in plan_items(session, order.id)
                           if p.kind in WAIT_KINDS and p.state in ("acknowledged", "inProgress", "held")})
        raise Conflict(f"eventType: no step of productOrder {order.id} awaits {data.eventType!r}"
                       + (f" (awaiting: {', '.join(expected)})" if expected else " (none awaits an event)"),
                       reason="Event not awaited")
    plan = waiting[0]
    now = clock.now()
    entry = session.scalars(select(FalloutEntry).where(
        FalloutEntry.plan_item_id == plan.id, FalloutEntry.step == "wait", FalloutEntry.state == "open")
        .with_for_update()).first()
    if entry is not None:
        entry.state, entry.resolved_by, entry.resolved_at = "retried", actor, now
        entry.resolution_reason = f"{data.eventType} reported"
        if order.state == "held":
            transition(session, order, "inProgress", actor, f"{data.eventType} reported")
        orchestration.send_in_transaction(session, url, entry.workflow_id, {"action": "retry"},
                                          f"fallout:{entry.id}", idempotency_key=f"fallout:{entry.id}")
    plan.started_at = plan.started_at or now
    plan.completed_at = now
    set_plan_state(session, plan, "completed")
    milestone = {"id": plan.id, "name": data.eventType, "status": "completed", "milestoneDate": now.isoformat(),
                 "reference": data.reference, "description": data.note, "planItemId": plan.id}
    audit.record(session, actor=actor, action="productOrder.event", resource_type="productOrder",
                 resource_id=order.id, details=milestone)
    publish(session, api=API, event_type="ProductOrderMilestoneEvent", resource_type="productOrder",
            resource=render_order(order) | {"milestone": [milestone]})
    orchestration.send_in_transaction(session, url, order.workflow_id, {"event": data.eventType, "at": now.isoformat()},
                                      f"event:{plan.id}", idempotency_key=f"event:{plan.id}")
    session.commit()
    return plan
