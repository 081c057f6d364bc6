"""Product order use cases: accept (validate + decompose + enqueue the workflow), cancel, state changes.

Order states follow TMF622. ``transition`` is the only way a state changes; an illegal change is a 409.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.accounts.services import live_customer
from turnup.catalog.orm import ProductOffering
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish
from turnup.orchestration import runtime as orchestration
from turnup.ordering.orm import PlanItem, ProductOrder, ProductOrderItem
from turnup.ordering.render import API, SERVICE_ORDER_API, render_order, render_service_order
from turnup.ordering.schemas import ProductOrderCreate
from turnup.product_inventory import services as products
from turnup.provisioning.adapters import available_adapters
from turnup.service_inventory import services as inventory
from turnup.service_inventory.orm import Service

TRANSITIONS: dict[str, set[str]] = {
    "acknowledged": {"inProgress", "rejected", "cancelled"},
    "inProgress": {"completed", "partial", "failed", "held", "pending", "pendingCancellation"},
    "held": {"inProgress", "failed", "cancelled", "pendingCancellation"},
    "pending": {"inProgress", "failed", "cancelled", "pendingCancellation"},
    # TMF622 cancel flow: the cancellation is assessed synchronously (the request is refused or accepted);
    # accepted, the order is pendingCancellation until its workflow has stopped and compensated
    "pendingCancellation": {"cancelled"},
    "completed": set(),
    "partial": set(),
    "failed": set(),
    "cancelled": set(),
    "rejected": set(),
}
FINAL = {s for s, nxt in TRANSITIONS.items() if not nxt}
MAX_BUNDLE_DEPTH = 3
# plan item action -> adapter operation
OPERATIONS = {
    "add": "activate",
    "modify": "modify",
    "suspend": "suspend",
    "resume": "resume",
    "delete": "deactivate",
    "moveOut": "deactivate",
    "moveIn": "activate",
}
MOVE_FROM = "_fromSite"  # moveIn parameters key: the site the service leaves (restored if the move is undone)
# plan item kinds that wait for an outside event instead of calling an adapter, and their default event
WAIT_KINDS = ("fieldVisit", "shipment", "projectMilestone")
RESOURCE_KIND = "resourceAssignment"  # plan item assigning a reservation the order carries to its service
DEFAULT_EVENTS = {
    "fieldVisit": "technicianCompleted",
    "shipment": "shipmentDelivered",
    "projectMilestone": "milestoneAccepted",
}
UNDO_KEY = "_undo"  # plan parameters key holding what a modify replaced (not sent to the adapter)


def _lock_services(session: Session, data: ProductOrderCreate) -> dict[str, Service]:
    """Lock the services the order's modify/delete items name, in primary-key order.

    The lock serialises orders on one service: the second of two concurrent orders waits here until the
    first commits, then sees its plan item and is refused (see ``_change``).
    """
    ids = sorted(
        {
            i.product.id
            for i in data.productOrderItem
            if i.product is not None and i.product.id and i.action != "add"
        }
    )
    found: dict[str, Service] = {}
    for service_id in ids:
        service = session.get(Service, service_id, with_for_update=True, populate_existing=True)
        if service is None:
            # a TMF637 product id: the change applies to the service realising it (one-service products)
            product = products.get_product(session, service_id)
            if product is not None and len(product.services) == 1:
                service = session.get(
                    Service, product.services[0].id, with_for_update=True, populate_existing=True
                )
        if service is not None:
            found[service_id] = service
    return found


def _change(
    session: Session, item: Any, where: str, customer_id: str, service: Service | None
) -> dict[str, Any] | list[dict[str, Any]]:
    """Validate a modify/delete item against the service it names; return the plan action and parameters.

    Rules: ``delete`` (disconnect) needs an active or suspended (``inactive``) service; ``modify`` with
    ``product.status: suspended`` (suspend) needs an active one, with ``product.status: active`` (resume) a
    suspended one; ``modify`` with ``productCharacteristic`` needs an active one. A service that is the
    subject of an order not yet final (any action, including the add that created it) cannot be named by
    another order: 409 naming the open order (refused, not queued).
    """
    if item.product is None:
        raise InvalidInput(f"{where}.product: required for action {item.action!r} (the product to change)")
    if item.product.id is None:
        raise InvalidInput(f"{where}.product.id: required for action {item.action!r} (the product to change)")
    if item.quantity != 1:
        raise InvalidInput(f"{where}.quantity: must be 1 for action {item.action!r}")
    if service is None:
        raise InvalidInput(f"{where}.product.id: unknown product/service {item.product.id!r}")
    if service.customer_id != customer_id:
        raise InvalidInput(f"{where}.product.id: service {service.id!r} belongs to another customer")
    if item.productOffering is not None and item.productOffering.id != service.offering_id:
        raise InvalidInput(
            f"{where}.productOffering.id: service {service.id!r} realises offering "
            f"{service.offering_id!r}, not {item.productOffering.id!r}"
        )
    open_order = session.scalar(
        select(PlanItem.order_id)
        .join(ProductOrder, ProductOrder.id == PlanItem.order_id)
        .where(PlanItem.service_id == service.id, ProductOrder.state.not_in(sorted(FINAL)))
        .limit(1)
    )
    if open_order is not None:
        raise Conflict(
            f"{where}.product.id: service {service.id} is already the subject of productOrder "
            f"{open_order}, which is not finished; one order at a time per service",
            reason="Service has an order in progress",
        )
    status, chars = item.product.status, item.product.productCharacteristic
    if item.product.place:
        # move (new site): deactivate at the old site, activate at the new one, the service's site updated
        if item.action != "modify" or status is not None or chars:
            raise InvalidInput(f"{where}.product.place: a move is a 'modify' item with only product.place")
        new_site = _site(session, item, where, customer_id)
        if new_site == service.site_id:
            raise InvalidInput(
                f"{where}.product.place[0].id: service {service.id} is already at site {new_site}"
            )
        _need_state(service, ("active",), "moved", where)
        return [
            {"action": "moveOut", "parameters": dict(service.characteristics) | {"siteId": service.site_id}},
            {
                "action": "moveIn",
                "parameters": dict(service.characteristics)
                | {"siteId": new_site, MOVE_FROM: service.site_id},
            },
        ]
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
    return {
        "action": "modify",
        "parameters": {**changes, UNDO_KEY: {k: service.characteristics.get(k) for k in changes}},
    }


def _site(session: Session, item: Any, where: str, customer_id: str) -> str | None:
    """The installation site an item names (``product.place[0].id``): a geographic site of the customer."""
    from turnup.accounts.orm import Site

    if item.product is None or not item.product.place:
        return None
    site = session.get(Site, item.product.place[0].id)
    if site is None:
        raise InvalidInput(
            f"{where}.product.place[0].id: unknown geographic site {item.product.place[0].id!r}"
        )
    if site.customer_id != customer_id:
        raise InvalidInput(f"{where}.product.place[0].id: site {site.id!r} belongs to another customer")
    return site.id


def _need_state(service: Service, states: tuple[str, ...], verb: str, where: str) -> None:
    if service.state not in states:
        raise Conflict(
            f"{where}.product.id: service {service.id} is {service.state}; only "
            f"{' or '.join(states)} services can be {verb}",
            reason="Illegal service state",
        )


def database_url(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=False)


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


def _provisioning(offering: ProductOffering, where: str, depth: int = 0) -> list[dict[str, Any]]:
    """The provisioning steps an offering needs: its specifications' entries, then its bundle members'."""
    if depth > MAX_BUNDLE_DEPTH:
        raise InvalidInput(f"{where}: bundle nesting deeper than {MAX_BUNDLE_DEPTH}")
    steps: list[dict[str, Any]] = []
    for link in offering.spec_links:
        spec = link.specification
        requirements = spec.delivery_requirements or {}
        entries = list(requirements.get("provisioning") or [])
        explicit = {e.get("kind") for e in entries}
        # the catalog's own delivery requirements: items shipped to the customer -> a shipment wait; a field
        # visit (technician-fulfilled items come with it) -> a field visit wait; both before activation
        shipped = [
            {"sku": p.get("sku"), "quantity": p.get("quantity")}
            for p in requirements.get("physical") or []
            if p.get("fulfilmentMethod") == "ship"
        ]
        derived: list[dict[str, Any]] = []
        if shipped and "shipment" not in explicit:
            derived.append({"kind": "shipment", "items": shipped})
        if requirements.get("fieldVisit") and "fieldVisit" not in explicit:
            derived.append({"kind": "fieldVisit", **requirements["fieldVisit"]})
        project = requirements.get("implementationProject")
        if project and "projectMilestone" not in explicit:  # each milestone waits for its acceptance
            derived.extend(
                {
                    "kind": "projectMilestone",
                    "project": project.get("name"),
                    "milestone": m.get("name"),
                    "offsetDays": m.get("offsetDays"),
                    "revenuePercent": m.get("revenuePercent"),
                }
                for m in project.get("milestones") or []
            )
        for entry in derived + entries:
            kind = entry.get("kind") or "serviceActivation"
            if kind in WAIT_KINDS:
                details = {
                    k: v
                    for k, v in entry.items()
                    if k
                    in (
                        "items",
                        "workType",
                        "skills",
                        "durationMinutes",
                        "project",
                        "milestone",
                        "offsetDays",
                        "revenuePercent",
                    )
                }
                label = (
                    f"{spec.name} {entry['milestone']}"
                    if kind == "projectMilestone"
                    else f"{spec.name} {kind}"
                )
                steps.append(
                    {
                        "kind": kind,
                        "specification_id": spec.id,
                        "service_name": label,
                        "adapter": None,
                        "event": entry.get("event") or DEFAULT_EVENTS[kind],
                        "action": None,
                        "parameters": {
                            "event": entry.get("event") or DEFAULT_EVENTS[kind],
                            "jeopardySeconds": float(entry.get("jeopardySeconds") or 86400),
                            "onTimeout": entry.get("onTimeout") or "wait",
                            "maxJeopardies": int(entry.get("maxJeopardies") or 3),
                            **details,
                        },
                    }
                )
                continue
            steps.append(
                {
                    "kind": "serviceActivation",
                    "specification_id": spec.id,
                    "service_name": spec.name,
                    "adapter": entry.get("adapter"),
                    "action": entry.get("action") or "activate",
                    "parameters": dict(entry.get("parameters") or {}),
                }
            )
    for member in offering.bundle_links:
        steps.extend(_provisioning(member.member, where, depth + 1))
    return steps


def create_order(
    session: Session, data: ProductOrderCreate, actor: str, *, commit: bool = True
) -> ProductOrder:
    """Accept a hand-made order: validate everything, decompose it into a plan, enqueue its workflow.

    All in one transaction: the order, its items, the plan, the designed services, the events and the
    DBOS workflow row commit together or not at all.
    """
    url = orchestration.prepare(session)  # system tables exist before this transaction takes any lock
    customers = [p for p in data.relatedParty if p.role == "customer"]
    if len(customers) != 1:
        raise InvalidInput("relatedParty: exactly one party with role 'customer' is required")
    customer = live_customer(session, customers[0].id, "relatedParty[0].id", unknown=InvalidInput)
    refs = [i.id for i in data.productOrderItem]
    if len(set(refs)) != len(refs):
        raise InvalidInput("productOrderItem: item ids must be unique within the order")
    named = [i.product.id for i in data.productOrderItem if i.product is not None and i.product.id]
    if len(set(named)) != len(named):
        raise InvalidInput("productOrderItem: one item per product; the same product is named twice")
    installed = set(available_adapters())
    services_by_id = _lock_services(session, data)
    resolved: list[tuple[ProductOffering | Service, list[dict[str, Any]]]] = []
    for n, item in enumerate(data.productOrderItem):
        where = f"productOrderItem[{n}]"
        if item.action in ("modify", "delete"):
            service = services_by_id.get(item.product.id) if item.product else None
            change = _change(session, item, where, customer.id, service)  # type: ignore[arg-type]
            resolved.append((service, change if isinstance(change, list) else [change]))
            continue
        if item.action != "add":
            raise InvalidInput(
                f"{where}.action: {item.action!r} items are not supported (add, modify, delete)"
            )
        if item.productOffering is None:
            raise InvalidInput(f"{where}.productOffering: required for action 'add'")
        if item.product is not None and (
            item.product.id or item.product.status or item.product.productCharacteristic
        ):
            raise InvalidInput(
                f"{where}.product: an 'add' item creates a new product; do not name one "
                "(only product.place, the installation site, may be given)"
            )
        offering = session.get(ProductOffering, item.productOffering.id)
        if offering is None:
            raise InvalidInput(
                f"{where}.productOffering.id: unknown product offering {item.productOffering.id!r}"
            )
        if item.productOffering.name is not None and item.productOffering.name != offering.name:
            raise InvalidInput(
                f"{where}.productOffering.name: {item.productOffering.name!r} does not match "
                f"offering {offering.id!r} ({offering.name!r})"
            )
        if offering.lifecycle_status != "active" or not offering.is_sellable:
            raise InvalidInput(
                f"{where}.productOffering: {offering.name!r} is {offering.lifecycle_status}"
                f"{'' if offering.is_sellable else ' and not sellable'}; it cannot be ordered"
            )
        steps = _provisioning(offering, where)
        if not steps:
            raise InvalidInput(
                f"{where}.productOffering: {offering.name!r} has no provisioning steps; "
                "orders without network activation are not supported yet"
            )
        for step in steps:
            if step["kind"] in WAIT_KINDS:
                continue
            if step["adapter"] not in installed:
                raise InvalidInput(
                    f"{where}.productOffering: {offering.name!r} needs provisioning adapter "
                    f"{step['adapter']!r}, which is not installed"
                )
        if all(step["kind"] in WAIT_KINDS for step in steps):
            raise InvalidInput(
                f"{where}.productOffering: {offering.name!r} has field or shipping steps but no "
                "service to activate"
            )
        site_id = _site(session, item, where, customer.id)
        resolved.append((offering, [dict(step, site_id=site_id) for step in steps]))

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
    session.flush()
    adds = any(not isinstance(target, Service) for target, _ in resolved)
    carried = list(order.reservation_refs or []) if adds else []
    position = len(carried)  # resource assignment items come first (positions 0..n-1), see below
    add_services: list[str] = []
    unit_heads: list[str] = []
    for n, (item, (target, steps)) in enumerate(zip(data.productOrderItem, resolved, strict=True)):
        if isinstance(target, Service):
            order_item = ProductOrderItem(
                id=new_id(),
                order_id=order.id,
                item_ref=item.id,
                position=n,
                action=item.action,
                state="acknowledged",
                quantity=1,
                offering_id=target.offering_id,
                offering_name=target.offering_name,
            )
            session.add(order_item)
            session.flush()
            before: str | None = None
            for change in steps:  # one change; a move is two: moveOut (old site), then moveIn (new site)
                change_id = new_id()
                session.add(
                    PlanItem(
                        id=change_id,
                        order_id=order.id,
                        order_item_id=order_item.id,
                        position=position,
                        kind="serviceActivation",
                        action=change["action"],
                        state="acknowledged",
                        service_id=target.id,
                        service_name=target.name,
                        specification_id=target.specification_id,
                        adapter=target.adapter,
                        adapter_action=OPERATIONS[change["action"]],
                        parameters=change["parameters"],
                        depends_on=[before] if before else [],
                        attempts=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                before = change_id
                position += 1
            continue
        offering = target
        order_item = ProductOrderItem(
            id=new_id(),
            order_id=order.id,
            item_ref=item.id,
            position=n,
            action=item.action,
            state="acknowledged",
            quantity=item.quantity,
            offering_id=offering.id,
            offering_name=offering.name,
        )
        session.add(order_item)
        session.flush()
        for _unit in range(item.quantity):
            previous: str | None = None
            unit_services: dict[int, str] = {}
            for idx, step in enumerate(steps):
                if step["kind"] not in WAIT_KINDS:
                    unit_services[idx] = new_id()
            for idx, step in enumerate(steps):
                plan_id = new_id()
                if step["kind"] in WAIT_KINDS:
                    # field work / shipping: no adapter; the step waits for an outside event about the
                    # service of the unit's next activation (else the previous one). ``parameters`` hold the
                    # awaited event and the jeopardy rule.
                    later = [unit_services[i] for i in sorted(unit_services) if i > idx]
                    first_service = later[0] if later else unit_services[max(unit_services)]
                    session.add(
                        PlanItem(
                            id=plan_id,
                            order_id=order.id,
                            order_item_id=order_item.id,
                            position=position,
                            kind=step["kind"],
                            action="add",
                            state="acknowledged",
                            service_id=first_service,
                            service_name=step["service_name"],
                            specification_id=step["specification_id"],
                            adapter="",
                            adapter_action=step["event"],
                            parameters=step["parameters"],
                            depends_on=[previous] if previous else [],
                            attempts=0,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                else:
                    service_id = unit_services[idx]
                    add_services.append(service_id)
                    inventory.design_service(
                        session,
                        service_id=service_id,
                        name=step["service_name"],
                        customer_id=customer.id,
                        offering_id=offering.id,
                        offering_name=offering.name,
                        specification_id=step["specification_id"],
                        adapter=step["adapter"],
                        characteristics=step["parameters"],
                        order_id=order.id,
                        order_item_id=order_item.id,
                        site_id=step["site_id"],
                    )
                    session.add(
                        PlanItem(
                            id=plan_id,
                            order_id=order.id,
                            order_item_id=order_item.id,
                            position=position,
                            kind="serviceActivation",
                            action="add",
                            state="acknowledged",
                            service_id=service_id,
                            service_name=step["service_name"],
                            specification_id=step["specification_id"],
                            adapter=step["adapter"],
                            adapter_action=step["action"],
                            parameters=step["parameters"],
                            depends_on=[previous] if previous else [],
                            attempts=0,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                if previous is None:
                    unit_heads.append(plan_id)
                previous = plan_id
                position += 1
        session.flush()
        products.announce_created(session, order_item)  # TMF637: the product this item creates
    # resource work: each reservation the order carries (from its quote) is assigned to the order's first
    # new service before any activation (every unit's first step depends on these items)
    session.flush()
    heads = [session.get(PlanItem, h) for h in unit_heads]
    resource_items = []
    for n, ref in enumerate(carried):
        resource_items.append(
            PlanItem(
                id=new_id(),
                order_id=order.id,
                order_item_id=heads[0].order_item_id,
                position=n,  # type: ignore[union-attr]
                kind=RESOURCE_KIND,
                action="add",
                state="acknowledged",
                service_id=add_services[0],
                service_name=f"assign {ref['@referredType']} {ref['id']}",
                specification_id=None,
                adapter="",
                adapter_action="assign",
                parameters={"reservation": ref},
                depends_on=[],
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
    session.add_all(resource_items)
    for head in heads:
        assert head is not None
        head.depends_on = [*head.depends_on, *(r.id for r in resource_items)]
    session.flush()
    order.workflow_id = orchestration.enqueue_order_workflow(session, url, order.id)
    audit.record(
        session,
        actor=actor,
        action="productOrder.create",
        resource_type="productOrder",
        resource_id=order.id,
        details={"items": len(data.productOrderItem), "planItems": position},
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
    from turnup.provisioning.orm import FalloutEntry

    url = orchestration.prepare(session)
    order = get_order(session, order_id, lock=True)
    if order.state == "acknowledged":
        from turnup.provisioning import steps

        transition(session, order, "cancelled", actor, reason or "cancelled by request")
        for item in order.items:
            item.state = "cancelled"
        plan = plan_items(session, order.id)
        steps.settle_resources(session, plan, order.id)  # reservations the quote committed: assign, release
        for p in plan:
            set_plan_state(session, p, "cancelled")
            service = inventory.get_service(session, p.service_id)
            if service.state == "designed":
                steps.terminate(
                    session, service, order_id=order.id, order_item_id=p.order_item_id, action="cancel"
                )
        release_reservations(session, order, actor)
        session.commit()
        return order
    if "pendingCancellation" not in TRANSITIONS[order.state] or order.workflow_id is None:
        raise Conflict(
            f"state: a {order.state} productOrder cannot be cancelled", reason="Illegal state transition"
        )
    now = clock.now()
    transition(session, order, "pendingCancellation", actor, reason or "cancelled by request")
    for plan in plan_items(session, order.id):
        if plan.kind in WAIT_KINDS and plan.state in ("acknowledged", "inProgress", "held"):
            orchestration.send_in_transaction(
                session,
                url,
                order.workflow_id,
                {"cancel": True},
                f"event:{plan.id}",
                idempotency_key=f"cancel:{plan.id}",
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
    from turnup.inventory.logical import reservations as logical
    from turnup.inventory.logical.orm import ResourceReservation
    from turnup.inventory.physical import reservations as physical
    from turnup.inventory.physical.orm import Reservation as StockReservation

    outcome: list[dict[str, Any]] = []
    for ref in order.reservation_refs or []:
        rid, kind = ref.get("id"), ref.get("@referredType")
        if kind == "ResourceReservation":
            held = session.get(ResourceReservation, rid)
            if held is not None and held.state == "reserved":
                logical.release(session, rid, actor, commit_now=False)
                outcome.append({"id": rid, "result": "released"})
        elif kind == "ReserveProductStock":
            stock = session.get(StockReservation, rid)
            if stock is not None and stock.status == "held":
                physical.release_reservation(session, rid, actor, commit=False)
                outcome.append({"id": rid, "result": "released"})
    return outcome


def plan_items(session: Session, order_id: str) -> list[PlanItem]:
    return list(
        session.scalars(select(PlanItem).where(PlanItem.order_id == order_id).order_by(PlanItem.position))
    )


def report_event(session: Session, order_id: str, data: Any, actor: str) -> PlanItem:
    """An outside event completes the field/shipping plan item waiting for it.

    In one transaction: the plan item is completed, a ProductOrderMilestoneEvent is published, an open
    fallout entry of that wait (order held after too many jeopardy alerts) is resolved as retried, and the
    message reaches the waiting workflow. An event nobody waits for is a 409; an unknown order 404.
    """
    from turnup.provisioning.orm import FalloutEntry

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
        details=milestone,
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
        {"event": data.eventType, "at": now.isoformat()},
        f"event:{plan.id}",
        idempotency_key=f"event:{plan.id}",
    )
    session.commit()
    return plan
