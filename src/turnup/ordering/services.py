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
from turnup.ordering.render import API, render_order
from turnup.ordering.schemas import ProductOrderCreate
from turnup.orchestration import runtime as orchestration
from turnup.provisioning.adapters import available_adapters
from turnup.service_inventory import services as inventory

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


def _provisioning(offering: ProductOffering, where: str, depth: int = 0) -> list[dict[str, Any]]:
    """The provisioning steps an offering needs: its specifications' entries, then its bundle members'."""
    if depth > MAX_BUNDLE_DEPTH:
        raise InvalidInput(f"{where}: bundle nesting deeper than {MAX_BUNDLE_DEPTH}")
    steps: list[dict[str, Any]] = []
    for link in offering.spec_links:
        spec = link.specification
        for entry in (spec.delivery_requirements or {}).get("provisioning") or []:
            steps.append({"specification_id": spec.id, "service_name": spec.name,
                          "adapter": entry.get("adapter"), "action": entry.get("action") or "activate",
                          "parameters": dict(entry.get("parameters") or {})})
    for member in offering.bundle_links:
        steps.extend(_provisioning(member.member, where, depth + 1))
    return steps


def create_order(session: Session, data: ProductOrderCreate, actor: str) -> ProductOrder:
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
    installed = set(available_adapters())
    resolved: list[tuple[ProductOffering, list[dict[str, Any]]]] = []
    for n, item in enumerate(data.productOrderItem):
        where = f"productOrderItem[{n}]"
        if item.action != "add":
            raise InvalidInput(f"{where}.action: only 'add' orders are supported so far, got {item.action!r}")
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
            if step["adapter"] not in installed:
                raise InvalidInput(f"{where}.productOffering: {offering.name!r} needs provisioning adapter "
                                   f"{step['adapter']!r}, which is not installed")
        resolved.append((offering, steps))

    now = clock.now()
    order = ProductOrder(id=new_id(), state="acknowledged", customer_id=customer.id,
                         external_id=data.externalId, description=data.description, priority=data.priority,
                         requested_completion_date=data.requestedCompletionDate, order_date=now,
                         created_at=now, updated_at=now)
    session.add(order)
    session.flush()
    position = 0
    for n, (item, (offering, steps)) in enumerate(zip(data.productOrderItem, resolved, strict=True)):
        order_item = ProductOrderItem(id=new_id(), order_id=order.id, item_ref=item.id, position=n,
                                      action=item.action, state="acknowledged", quantity=item.quantity,
                                      offering_id=offering.id, offering_name=offering.name)
        session.add(order_item)
        session.flush()
        for _unit in range(item.quantity):
            previous: str | None = None
            for step in steps:
                plan_id, service_id = new_id(), new_id()
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
                    depends_on=[previous] if previous else [], attempts=0, created_at=now, updated_at=now))
                previous = plan_id
                position += 1
    session.flush()
    order.workflow_id = orchestration.enqueue_order_workflow(session, url, order.id)
    audit.record(session, actor=actor, action="productOrder.create", resource_type="productOrder",
                 resource_id=order.id, details={"items": len(data.productOrderItem), "planItems": position})
    session.expire(order, ["items"])
    publish(session, api=API, event_type="ProductOrderCreateEvent", resource_type="productOrder",
            resource=render_order(order))
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
        plan.state = "cancelled"
        service = inventory.get_service(session, plan.service_id)
        inventory.change_state(session, service, "terminated", order_id=order.id,
                               order_item_id=plan.order_item_id, action="cancel")
    session.commit()
    return order


def plan_items(session: Session, order_id: str) -> list[PlanItem]:
    return list(session.scalars(select(PlanItem).where(PlanItem.order_id == order_id)
                                .order_by(PlanItem.position)))
