"""Product order use cases: accept (validate + decompose + enqueue the workflow), cancel, state changes.

Order states follow TMF622. ``transition`` is the only way a state changes; an illegal change is a 409.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from turnup import service_inventory as inventory
from turnup.accounts import live_customer
from turnup.inventory import logical, physical
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound, TurnupError
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish
from turnup.orchestration import runtime as orchestration
from turnup.ordering.decompose import Plan, decompose
from turnup.ordering.model import (
    DEFAULT_EVENTS,
    FINAL,
    HANDOVER,
    MAX_BUNDLE_DEPTH,
    MOVE_FROM,
    MOVE_HOLD_DAYS,
    OPERATIONS,
    ORDER_WORKFLOW,
    RESOURCE_KIND,
    SITE_RESOURCES_KIND,
    TRANSITIONS,
    UNDO_KEY,
    WAIT_KINDS,
)
from turnup.ordering.orm import FalloutEntry, PlanItem, ProductOrder, ProductOrderItem
from turnup.ordering.references import QuoteFacts, check_references
from turnup.ordering.render import API, SERVICE_ORDER_API, render_order, render_service_order
from turnup.ordering.schemas import ProductOrderCreate
from turnup.ordering.settlement import ACTOR, settle_resources, terminate
from turnup.service_inventory import Service

__all__ = [  # the rules live in ``model``; steps and other modules of this feature read them from here
    "DEFAULT_EVENTS",
    "FINAL",
    "HANDOVER",
    "MAX_BUNDLE_DEPTH",
    "MOVE_FROM",
    "OPERATIONS",
    "ORDER_WORKFLOW",
    "RESOURCE_KIND",
    "SITE_RESOURCES_KIND",
    "TRANSITIONS",
    "UNDO_KEY",
    "WAIT_KINDS",
    "cancel_order",
    "create_order",
    "get_order",
    "hand_over_stock",
    "plan_items",
    "release_reservations",
    "report_event",
    "set_plan_state",
    "transition",
]


def get_order(session: Session, order_id: str, *, lock: bool = False) -> ProductOrder:
    order = session.get(ProductOrder, order_id, with_for_update=lock or None)
    if order is None:
        raise NotFound(f"productOrder {order_id!r} not found")
    return order


def transition(
    session: Session, order: ProductOrder, new_state: str, actor: str, reason: str | None = None
) -> None:
    """Change an order's state (TMF622 rules), audit it and publish ProductOrderStateChangeEvent."""
    if new_state not in TRANSITIONS[order.state]:
        raise Conflict(
            f"state: a {order.state} productOrder cannot become {new_state}",
            reason="Illegal state transition",
        )
    old = order.state
    now = clock.now()
    order.state = new_state
    order.state_reason = reason
    order.updated_at = now
    if new_state in FINAL:
        order.completion_date = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="productOrder.state",
        resource_type="productOrder",
        resource_id=order.id,
        details={"from": old, "to": new_state},
        comment=reason,
    )
    publish(
        session,
        api=API,
        event_type="ProductOrderStateChangeEvent",
        resource_type="productOrder",
        resource=render_order(order),
    )


def set_plan_state(session: Session, plan: PlanItem, new_state: str) -> None:
    """Change a plan item's (TMF641 service order item's) state and publish ServiceOrderStateChangeEvent."""
    if plan.state == new_state:
        return
    plan.state = new_state
    plan.updated_at = clock.now()
    session.flush()
    publish(
        session,
        api=SERVICE_ORDER_API,
        event_type="ServiceOrderStateChangeEvent",
        resource_type="serviceOrder",
        resource=render_service_order(plan),
    )


def create_order(
    session: Session,
    data: ProductOrderCreate,
    actor: str,
    *,
    commit: bool = True,
    accepting_quote: QuoteFacts | None = None,
) -> ProductOrder:
    """Accept a hand-made order: validate everything, decompose it into a plan, enqueue its workflow.

    All in one transaction: the order, its items, the plan, the designed services, the events and the
    DBOS workflow row commit together or not at all. The quote and reservations the body cites are checked
    first (``turnup.ordering.references``); ``accepting_quote`` is the quote whose acceptance, in this same
    transaction, creates the order. An ``externalId`` is unique per customer (409 naming it).
    """
    url = orchestration.prepare(session)  # system tables exist before this transaction takes any lock
    customers = [p for p in data.relatedParty if p.role == "customer"]
    if len(customers) != 1:
        raise InvalidInput("relatedParty: exactly one party with role 'customer' is required")
    customer = live_customer(session, customers[0].id, "relatedParty[0].id", unknown=InvalidInput)
    check_references(session, data, customer.id, accepting=accepting_quote)
    _check_external_id(session, customer.id, data.externalId)
    plan = decompose(session, data, customer.id)
    assignments = _assignments(data, plan) if plan.adds else []
    now = clock.now()
    order = ProductOrder(
        id=new_id(),
        state="acknowledged",
        customer_id=customer.id,
        external_id=data.externalId,
        description=data.description,
        priority=data.priority,
        requested_completion_date=data.requestedCompletionDate,
        order_date=now,
        created_at=now,
        updated_at=now,
        quote_id=data.quote[0].id if data.quote else None,
        agreement_ids=[a.id for a in data.agreement] or None,
        reservation_refs=[{"id": r.id, "@referredType": r.referredType} for r in data.reservation] or None,
    )
    session.add(order)
    try:
        session.flush()
    except IntegrityError as exc:  # the same externalId inserted concurrently (the unique index decides)
        problem = str(exc.orig)  # PostgreSQL names the index, SQLite the columns
        if data.externalId is None or not any(
            name in problem for name in ("uq_product_order_customer_external_id", "product_order.external_id")
        ):
            raise
        raise _duplicate_external_id(customer.id, data.externalId) from exc
    writer = _PlanWriter(session, order, now)
    writer.position = len(assignments)  # resource assignment items come first (positions 0..n-1), see below
    for n, planned in enumerate(plan.items):
        order_item = ProductOrderItem(
            id=new_id(),
            order_id=order.id,
            item_ref=planned.ref,
            position=n,
            action=planned.action,
            state="acknowledged",
            quantity=planned.quantity,
            offering_id=planned.offering_id,
            offering_name=planned.offering_name,
            pricing=planned.pricing,
        )
        session.add(order_item)
        session.flush()
        if planned.service is not None:
            writer.change(order_item, planned.service, planned.steps)
        else:
            writer.add(order_item, planned.steps)
    writer.resource_items(assignments)
    order.workflow_id = orchestration.enqueue_in_transaction(
        session, url, ORDER_WORKFLOW, f"order-{order.id}", order.id
    )
    audit.record(
        session,
        actor=actor,
        action="productOrder.create",
        resource_type="productOrder",
        resource_id=order.id,
        details={"items": len(data.productOrderItem), "planItems": writer.position},
    )
    session.expire(order, ["items"])
    publish(
        session,
        api=API,
        event_type="ProductOrderCreateEvent",
        resource_type="productOrder",
        resource=render_order(order),
    )
    if commit:
        session.commit()
    return order


def _duplicate_external_id(customer_id: str, external_id: str) -> Conflict:
    return Conflict(
        f"externalId: customer {customer_id!r} already has a productOrder with externalId {external_id!r}",
        reason="Duplicate externalId",
    )


def _check_external_id(session: Session, customer_id: str, external_id: str | None) -> None:
    """An externalId names one order per customer."""
    if external_id is None:
        return
    taken = session.scalar(
        select(ProductOrder.id).where(
            ProductOrder.customer_id == customer_id, ProductOrder.external_id == external_id
        )
    )
    if taken is not None:
        raise _duplicate_external_id(customer_id, external_id)


@dataclass(frozen=True)
class _Assignment:
    """One resource assignment plan item: these lines of a reservation the order carries (all of it when
    ``lines`` is None) go to the service delivering ``component`` (item ref, unit, specification id; None:
    the order's first new service), stock with its fulfilment method."""

    reservation: dict[str, Any]  # {"id", "@referredType"}
    component: tuple[str, int, str] | None
    lines: tuple[int, ...] | None
    fulfilment_method: str | None


def _assignments(data: ProductOrderCreate, plan: Plan) -> list[_Assignment]:
    """Which lines of each reservation the order carries go to which component's service (checked before
    anything is written). A line targets an order item's unit and a specification; a specification the unit
    activates no service for (e.g. a shipment-only member) goes to the unit's first service."""
    adds = {p.ref: p for p in plan.items if p.service is None}
    found: dict[tuple[int, tuple[str, int, str] | None, str | None], list[int]] = {}
    refs: list[dict[str, Any]] = []
    for r, ref in enumerate(data.reservation):
        refs.append({"id": ref.id, "@referredType": ref.referredType})
        if not ref.line:
            found.setdefault((r, None, None), [])
        for n, target in enumerate(ref.line):
            where = f"reservation[{r}].line[{n}]"
            item = adds.get(target.productOrderItem)
            if item is None:
                raise InvalidInput(
                    f"{where}.productOrderItem: {target.productOrderItem!r} is not an 'add' item "
                    "of this order"
                )
            if target.unit > item.quantity:
                raise InvalidInput(f"{where}.unit: item {item.ref!r} has {item.quantity} unit(s)")
            specs = [st["specification_id"] for st in item.steps if st["kind"] not in WAIT_KINDS]
            spec = target.specification if target.specification in specs else specs[0]
            method = target.fulfilmentMethod if ref.referredType == "ReserveProductStock" else None
            lines = found.setdefault((r, (item.ref, target.unit, spec), method), [])
            if target.line not in lines:
                lines.append(target.line)
    return [
        _Assignment(
            reservation=refs[r],
            component=component,
            lines=tuple(sorted(lines)) if component is not None else None,
            fulfilment_method=method,
        )
        for (r, component, method), lines in found.items()
    ]


class _PlanWriter:
    """Stores an order's plan items (and designs the services its ``add`` items create)."""

    def __init__(self, session: Session, order: ProductOrder, now: datetime) -> None:
        self.session, self.order, self.now = session, order, now
        self.position = 0
        self.add_services: list[str] = []  # services the order creates, in plan order
        self.unit_heads: list[str] = []  # the first plan item of each unit an add item delivers
        # (item ref, unit, specification id) -> the service delivering that component, and its order item
        self.components: dict[tuple[str, int, str], str] = {}
        self.service_items: dict[str, str] = {}

    def _item(self, order_item: ProductOrderItem, **values: Any) -> PlanItem:
        plan = PlanItem(
            order_id=self.order.id,
            order_item_id=order_item.id,
            position=self.position,
            state="acknowledged",
            attempts=0,
            created_at=self.now,
            updated_at=self.now,
            **values,
        )
        self.session.add(plan)
        self.position += 1
        return plan

    def change(self, order_item: ProductOrderItem, service: Service, changes: list[dict[str, Any]]) -> None:
        """One change of an existing service, each step after the last. A move is moveOut (old site), then
        moveIn (new site), with around them the new site's resources (held now, assigned first), the field
        visit its offering needs, and the old site's resources given back last."""
        before: str | None = None
        for change in changes:
            kind = change.get("kind") or "serviceActivation"
            parameters = dict(change["parameters"])
            if kind == SITE_RESOURCES_KIND and change["action"] == "assign":
                parameters["reservation"] = self._hold_for_move(service, change)
            activation = kind == "serviceActivation"
            plan = self._item(
                order_item,
                id=new_id(),
                kind=kind,
                action=change["action"],
                service_id=service.id,
                service_name=service.name if activation else f"{service.name} {kind} {change['action']}",
                specification_id=service.specification_id,
                adapter=service.adapter if activation else "",
                adapter_action=(
                    OPERATIONS[change["action"]] if activation else change.get("event") or change["action"]
                ),
                parameters=parameters,
                depends_on=[before] if before else [],
            )
            before = plan.id

    def _hold_for_move(self, service: Service, change: dict[str, Any]) -> dict[str, Any]:
        """Hold the new site's resources for a move in the order's transaction (assigned by its plan item);
        a refusal is a 409 naming the resource and the site."""
        needs: list[logical.SiteResourceNeed] = change["needs"]
        try:
            held = logical.hold_resources(
                self.session,
                [n.line for n in needs],
                self.now + timedelta(days=MOVE_HOLD_DAYS),
                ACTOR,
                description=f"move of service {service.id} (order {self.order.id})",
                related_party=self.order.customer_id,
            )
        except TurnupError as exc:
            found = re.search(r"reservationItem\[(\d+)\]", exc.message)
            what = needs[int(found.group(1)) if found and int(found.group(1)) < len(needs) else 0].what
            raise Conflict(
                f"{change['where']}.product.place[0].id: service {service.id} cannot move to site "
                f"{change['site_name']!r}: no replacement for {what} is available there ({exc.message})",
                reason="Resource unavailable",
            ) from None
        return {"id": held.id, "@referredType": "ResourceReservation"}

    def add(self, order_item: ProductOrderItem, steps: list[dict[str, Any]]) -> None:
        """Each unit of an add item: its services designed, one plan item per step, each after the last."""
        for unit in range(1, order_item.quantity + 1):
            previous: str | None = None
            unit_services = {
                idx: new_id() for idx, step in enumerate(steps) if step["kind"] not in WAIT_KINDS
            }
            for idx in sorted(unit_services):
                key = (order_item.item_ref, unit, steps[idx]["specification_id"])
                self.components.setdefault(key, unit_services[idx])
                self.service_items[unit_services[idx]] = order_item.id
            for idx, step in enumerate(steps):
                plan_id = new_id()
                if step["kind"] in WAIT_KINDS:
                    # field work / shipping: no adapter; the step waits for an outside event about the
                    # service of the unit's next activation (else the previous one). ``parameters`` hold the
                    # awaited event and the jeopardy rule.
                    later = [unit_services[i] for i in sorted(unit_services) if i > idx]
                    service_id = later[0] if later else unit_services[max(unit_services)]
                    values = {"kind": step["kind"], "adapter": "", "adapter_action": step["event"]}
                else:
                    service_id = unit_services[idx]
                    self.add_services.append(service_id)
                    inventory.design_service(
                        self.session,
                        service_id=service_id,
                        name=step["service_name"],
                        customer_id=self.order.customer_id,
                        offering_id=order_item.offering_id,
                        offering_name=order_item.offering_name,
                        specification_id=step["specification_id"],
                        adapter=step["adapter"],
                        characteristics=step["parameters"],
                        order_id=self.order.id,
                        order_item_id=order_item.id,
                        site_id=step["site_id"],
                    )
                    values = {
                        "kind": "serviceActivation",
                        "adapter": step["adapter"],
                        "adapter_action": step["action"],
                    }
                self._item(
                    order_item,
                    id=plan_id,
                    action="add",
                    service_id=service_id,
                    service_name=step["service_name"],
                    specification_id=step["specification_id"],
                    parameters=step["parameters"],
                    depends_on=[previous] if previous else [],
                    **values,
                )
                if previous is None:
                    self.unit_heads.append(plan_id)
                previous = plan_id
        self.session.flush()

    def resource_items(self, assignments: list[_Assignment]) -> None:
        """Resource work: the lines of each reservation the order carries (from its quote) are assigned to
        the service of the component that needs them (without line targets: the whole reservation to the
        order's first new service), before any activation (every unit's first step depends on these)."""
        self.session.flush()
        if not assignments:
            return
        heads = [self.session.get(PlanItem, h) for h in self.unit_heads]
        items = []
        for n, a in enumerate(assignments):
            service_id = self.components[a.component] if a.component else self.add_services[0]
            parameters: dict[str, Any] = {"reservation": a.reservation}
            name = f"assign {a.reservation['@referredType']} {a.reservation['id']}"
            if a.lines is not None:
                parameters["lines"] = list(a.lines)
                name += f" lines {','.join(str(x) for x in a.lines)}"
            if a.fulfilment_method:
                parameters["fulfilmentMethod"] = a.fulfilment_method
            items.append(
                PlanItem(
                    id=new_id(),
                    order_id=self.order.id,
                    order_item_id=self.service_items[service_id],
                    position=n,
                    kind=RESOURCE_KIND,
                    action="add",
                    state="acknowledged",
                    service_id=service_id,
                    service_name=name[:200],
                    specification_id=a.component[2] if a.component else None,
                    adapter="",
                    adapter_action="assign",
                    parameters=parameters,
                    depends_on=[],
                    attempts=0,
                    created_at=self.now,
                    updated_at=self.now,
                )
            )
        self.session.add_all(items)
        for head in heads:
            assert head is not None
            head.depends_on = [*head.depends_on, *(r.id for r in items)]
        self.session.flush()


def cancel_order(session: Session, order_id: str, reason: str | None, actor: str) -> ProductOrder:
    """TMF622 cancelProductOrder.

    - ``acknowledged`` (its workflow has not started): cancelled at once, designed services terminated, the
      order's held reservations released.
    - ``inProgress`` / ``held`` / ``pending``: the order becomes ``pendingCancellation`` and the workflow is
      told durably, in the same transaction: the activate/wait steps check the order state before doing
      anything, a waiting field/shipping step gets a ``cancel`` message on its event topic, an open fallout
      entry is resolved ``cancelled`` and its waiting workflow gets ``{"action": "cancel"}``. The workflow
      then undoes what the order did (adapter deactivate, services terminated), releases the order's
      resources and ends ``cancelled`` (``steps.finish_cancellation``).
    - final orders (completed, failed, partial, cancelled, rejected) and orders already being cancelled: 409.
    """
    url = orchestration.prepare(session)
    order = get_order(session, order_id, lock=True)
    if order.state == "acknowledged":
        transition(session, order, "cancelled", actor, reason or "cancelled by request")
        for item in order.items:
            item.state = "cancelled"
        plan = plan_items(session, order.id)
        settle_resources(session, plan, order.id)  # reservations the quote committed: assign, release
        for p in plan:
            set_plan_state(session, p, "cancelled")
            service = inventory.get_service(session, p.service_id)
            if service.state == "designed":
                terminate(session, service, order_id=order.id, order_item_id=p.order_item_id, action="cancel")
        release_reservations(session, order, actor)
        session.commit()
        return order
    if "pendingCancellation" not in TRANSITIONS[order.state] or order.workflow_id is None:
        raise Conflict(
            f"state: a {order.state} productOrder cannot be cancelled", reason="Illegal state transition"
        )
    now = clock.now()
    transition(session, order, "pendingCancellation", actor, reason or "cancelled by request")
    for waiting in plan_items(session, order.id):
        if waiting.kind in WAIT_KINDS and waiting.state in ("acknowledged", "inProgress", "held"):
            orchestration.send_in_transaction(
                session,
                url,
                order.workflow_id,
                {"cancel": True},
                f"event:{waiting.id}",
                idempotency_key=f"cancel:{waiting.id}",
            )
    for entry in session.scalars(
        select(FalloutEntry)
        .where(FalloutEntry.order_id == order.id, FalloutEntry.state == "open")
        .with_for_update()
    ):
        entry.state, entry.resolved_by, entry.resolved_at = "cancelled", actor, now
        entry.resolution_reason = "order cancelled"
        orchestration.send_in_transaction(
            session,
            url,
            entry.workflow_id,
            {"action": "cancel"},
            f"fallout:{entry.id}",
            idempotency_key=f"cancel:{entry.id}",
        )
    session.commit()
    return order


def release_reservations(session: Session, order: ProductOrder, actor: str) -> list[dict[str, Any]]:
    """Release the reservations the order carries (from its quote) that are still held; never commits.

    ``ResourceReservation`` (logical: numbers, prefixes, VLANs…) and ``ReserveProductStock`` (physical stock)
    references; a reservation already committed, released or expired is left alone.
    """
    outcome: list[dict[str, Any]] = []
    for ref in order.reservation_refs or []:
        rid, kind = str(ref.get("id")), ref.get("@referredType")
        if (kind == "ResourceReservation" and logical.release_reservation_if_held(session, rid, actor)) or (
            kind == "ReserveProductStock" and physical.release_stock_if_held(session, rid, actor)
        ):
            outcome.append({"id": rid, "result": "released"})
    return outcome


def plan_items(session: Session, order_id: str) -> list[PlanItem]:
    return list(
        session.scalars(select(PlanItem).where(PlanItem.order_id == order_id).order_by(PlanItem.position))
    )


def _physical_allocations(service: Service) -> list[dict[str, Any]]:
    return [
        dict(e)
        for e in service.resources or []
        if e.get("resourceType") == "physicalAllocation" and e.get("id")
    ]


def hand_over_stock(
    session: Session, order: ProductOrder, plan: PlanItem, reference: str | None, actor: str
) -> list[dict[str, Any]]:
    """The plan item that delivers hardware completed (field visit: technician-fitted items; shipment:
    shipped items; pickup: picked-up items): hand the matching allocated stock over to the customer's site
    (``physical.hand_over_allocation``), in the caller's transaction.

    Which allocations: the ``physicalAllocation`` entries of the plan item's service (else, when it has
    none, of the services this order creates: today an order's stock is assigned to its first service).
    An entry naming a ``fulfilmentMethod`` is handed over whole when the method is this item's and skipped
    otherwise; an entry without one gives the lines of the SKUs the plan item's ``items`` list (up to their
    quantities), or everything when the item lists none. The units are those the allocation holds."""
    method = HANDOVER[plan.kind]
    service = inventory.get_service(session, plan.service_id)
    entries = _physical_allocations(service)
    if not entries:
        created = [p.service_id for p in plan_items(session, order.id) if p.action == "add"]
        for service_id in dict.fromkeys(created):
            if service_id != service.id:
                entries.extend(_physical_allocations(inventory.get_service(session, service_id)))
    items = [i for i in plan.parameters.get("items") or [] if isinstance(i, dict) and i.get("sku")]
    want: dict[str, int] | None = None
    if items:
        want = {}
        for i in items:
            want[str(i["sku"])] = want.get(str(i["sku"]), 0) + int(i.get("quantity") or 1)
    moved: list[dict[str, Any]] = []
    for entry in entries:
        entry_method = entry.get("fulfilmentMethod")
        if entry_method is not None and entry_method != method:
            continue
        moved.extend(
            physical.hand_over_allocation(
                session,
                str(entry["id"]),
                method=method,
                want=None if entry_method is not None else want,
                site_id=service.site_id,
                customer_id=order.customer_id,
                reference=reference,
                actor=actor,
            )
        )
    return moved


def report_event(session: Session, order_id: str, data: Any, actor: str) -> PlanItem:
    """An outside event completes the field/shipping/pickup plan item waiting for it.

    In one transaction: the plan item is completed, the stock it delivers is handed over to the
    customer's site (``hand_over_stock``), a ProductOrderMilestoneEvent is published, an open
    fallout entry of that wait (order held after too many jeopardy alerts) is resolved as retried, and the
    message reaches the waiting workflow. An event nobody waits for is a 409; an unknown order 404.
    """
    url = orchestration.prepare(session)
    order = get_order(session, order_id, lock=True)
    if order.state in FINAL or order.state == "pendingCancellation" or order.workflow_id is None:
        raise Conflict(
            f"state: productOrder {order.id} is {order.state}; it awaits no events",
            reason="Illegal state transition",
        )
    waiting = [
        p
        for p in plan_items(session, order.id)
        if p.kind in WAIT_KINDS
        and p.adapter_action == data.eventType
        and p.state in ("acknowledged", "inProgress", "held")
        and (data.planItemId is None or p.id == data.planItemId)
    ]
    if not waiting:
        expected = sorted(
            {
                p.adapter_action
                for p in plan_items(session, order.id)
                if p.kind in WAIT_KINDS and p.state in ("acknowledged", "inProgress", "held")
            }
        )
        raise Conflict(
            f"eventType: no step of productOrder {order.id} awaits {data.eventType!r}"
            + (f" (awaiting: {', '.join(expected)})" if expected else " (none awaits an event)"),
            reason="Event not awaited",
        )
    plan = waiting[0]
    now = clock.now()
    entry = session.scalars(
        select(FalloutEntry)
        .where(
            FalloutEntry.plan_item_id == plan.id, FalloutEntry.step == "wait", FalloutEntry.state == "open"
        )
        .with_for_update()
    ).first()
    if entry is not None:
        entry.state, entry.resolved_by, entry.resolved_at = "retried", actor, now
        entry.resolution_reason = f"{data.eventType} reported"
        if order.state == "held":
            transition(session, order, "inProgress", actor, f"{data.eventType} reported")
        orchestration.send_in_transaction(
            session,
            url,
            entry.workflow_id,
            {"action": "retry"},
            f"fallout:{entry.id}",
            idempotency_key=f"fallout:{entry.id}",
        )
    plan.started_at = plan.started_at or now
    plan.completed_at = now
    set_plan_state(session, plan, "completed")
    handed_over = (
        hand_over_stock(session, order, plan, data.reference, actor) if plan.kind in HANDOVER else []
    )
    milestone = {
        "id": plan.id,
        "name": data.eventType,
        "status": "completed",
        "milestoneDate": now.isoformat(),
        "reference": data.reference,
        "description": data.note,
        "planItemId": plan.id,
    }
    audit.record(
        session,
        actor=actor,
        action="productOrder.event",
        resource_type="productOrder",
        resource_id=order.id,
        details=milestone | ({"handedOver": handed_over} if handed_over else {}),
    )
    publish(
        session,
        api=API,
        event_type="ProductOrderMilestoneEvent",
        resource_type="productOrder",
        resource=render_order(order) | {"milestone": [milestone]},
    )
    orchestration.send_in_transaction(
        session,
        url,
        order.workflow_id,
        {"event": data.eventType, "at": now.isoformat(), "reference": data.reference},
        f"event:{plan.id}",
        idempotency_key=f"event:{plan.id}",
    )
    session.commit()
    return plan
