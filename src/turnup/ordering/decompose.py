"""Decomposition: from the items of a product order to its plan.

``decompose`` checks every item against the catalog and the service inventory and says what each one
needs: an ``add`` item the provisioning steps of its offering (its specifications' entries, derived
shipment, pickup, field visit and project milestone waits, then its bundle members'), a
``modify``/``delete`` item the change(s) to the service it names (a move is two: ``moveOut`` at the old
site, ``moveIn`` at the new).
It writes nothing; ``services.create_order`` stores the order and the plan this returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import catalog
from turnup import service_inventory as inventory
from turnup.accounts import find_site
from turnup.catalog import OfferingTerms
from turnup.inventory import logical
from turnup.kernel import clock
from turnup.kernel.errors import Conflict, InvalidInput
from turnup.ordering.model import (
    DEFAULT_EVENTS,
    FINAL,
    HANDOVER,
    MAX_BUNDLE_DEPTH,
    MOVE_FROM,
    SITE_RESOURCES_KIND,
    UNDO_KEY,
    WAIT_KINDS,
)
from turnup.ordering.orm import PlanItem, ProductOrder
from turnup.ordering.queries import ordered_product
from turnup.ordering.schemas import ProductOrderCreate
from turnup.provisioning import available_adapters
from turnup.service_inventory import Service


@dataclass
class PlannedItem:
    """One order item, checked: what it acts on and the steps it needs."""

    ref: str  # the caller's item id ("1", "2", …)
    action: str  # add | modify | delete
    quantity: int
    offering_id: str
    offering_name: str
    service: Service | None  # the existing service a modify/delete names (None for add)
    steps: list[dict[str, Any]] = field(default_factory=list)  # add: provisioning steps; else plan changes
    pricing: dict[str, Any] | None = None  # a modify of characteristics: the price before, after, difference


@dataclass
class Plan:
    """What an order decomposes into, item by item (in the order's item order)."""

    items: list[PlannedItem]

    @property
    def adds(self) -> bool:
        return any(i.service is None for i in self.items)


def decompose(session: Session, data: ProductOrderCreate, customer_id: str) -> Plan:
    """Check every item of the order and return its plan (``InvalidInput``/``Conflict`` naming the item).

    Locks the services the order changes (primary-key order) so two orders on one service serialise.
    """
    refs = [i.id for i in data.productOrderItem]
    if len(set(refs)) != len(refs):
        raise InvalidInput("productOrderItem: item ids must be unique within the order")
    named = [i.product.id for i in data.productOrderItem if i.product is not None and i.product.id]
    if len(set(named)) != len(named):
        raise InvalidInput("productOrderItem: one item per product; the same product is named twice")
    installed = set(available_adapters())
    services_by_id = _lock_services(session, data)
    planned: list[PlannedItem] = []
    for n, item in enumerate(data.productOrderItem):
        where = f"productOrderItem[{n}]"
        if item.action in ("modify", "delete"):
            service = services_by_id.get(item.product.id) if item.product and item.product.id else None
            change = _change(session, item, where, customer_id, service)
            assert service is not None  # _change refuses an unknown service
            steps = change if isinstance(change, list) else [change]
            planned.append(
                PlannedItem(
                    ref=item.id,
                    action=item.action,
                    quantity=1,
                    offering_id=service.offering_id,
                    offering_name=service.offering_name,
                    service=service,
                    steps=steps,
                    pricing=_change_price(session, service, steps[0], where)
                    if steps[0]["action"] == "modify"
                    else None,
                )
            )
            continue
        offering, steps = _add(session, item, where, customer_id, installed)
        planned.append(
            PlannedItem(
                ref=item.id,
                action=item.action,
                quantity=item.quantity,
                offering_id=offering.id,
                offering_name=offering.name,
                service=None,
                steps=steps,
            )
        )
    return Plan(items=planned)


def _add(
    session: Session, item: Any, where: str, customer_id: str, installed: set[str]
) -> tuple[OfferingTerms, list[dict[str, Any]]]:
    """Check an ``add`` item; return its offering and provisioning steps (each with the item's site)."""
    if item.action != "add":
        raise InvalidInput(f"{where}.action: {item.action!r} items are not supported (add, modify, delete)")
    if item.productOffering is None:
        raise InvalidInput(f"{where}.productOffering: required for action 'add'")
    if item.product is not None and (
        item.product.id or item.product.status or item.product.productCharacteristic
    ):
        raise InvalidInput(
            f"{where}.product: an 'add' item creates a new product; do not name one "
            "(only product.place, the installation site, may be given)"
        )
    offering = catalog.offering_terms(session, item.productOffering.id)
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
    steps = provisioning_steps(offering, where)
    if not steps:
        raise InvalidInput(
            f"{where}.productOffering: {offering.name!r} has no provisioning steps; "
            "orders without network activation are not supported yet"
        )
    for step in steps:
        if step["kind"] not in WAIT_KINDS and step["adapter"] not in installed:
            raise InvalidInput(
                f"{where}.productOffering: {offering.name!r} needs provisioning adapter "
                f"{step['adapter']!r}, which is not installed"
            )
    if all(step["kind"] in WAIT_KINDS for step in steps):
        raise InvalidInput(
            f"{where}.productOffering: {offering.name!r} has field or shipping steps but no "
            "service to activate"
        )
    site_id = _site(session, item, where, customer_id)
    return offering, [dict(step, site_id=site_id) for step in steps]


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
        service = inventory.lock_service(session, service_id)
        if service is None:
            # a TMF637 product id: the change applies to the service realising it (one-service products)
            product = ordered_product(session, service_id)
            if product is not None and len(product.service_ids) == 1:
                service = inventory.lock_service(session, product.service_ids[0])
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
        return _move(session, service, new_site, where)
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
    _check_characteristics(session, service, changes, where)
    return {
        "action": "modify",
        "parameters": {**changes, UNDO_KEY: {k: service.characteristics.get(k) for k in changes}},
    }


def _move(session: Session, service: Service, new_site: str | None, where: str) -> list[dict[str, Any]]:
    """A move's plan: the new site's resources (IP prefixes from its pool, a number in its area, for those
    the service carries) assigned first, off the old site (``moveOut``), the field visit its offering needs,
    on the new site (``moveIn``), then the old site's resources given back. Refused (409 naming the resource
    and the site) when no pool serves the new site; the holds themselves are taken with the order."""
    site = find_site(session, new_site) if new_site else None
    assert site is not None  # _site checked it
    place = logical.SitePlace(site.name, site.city, site.region, site.country)
    try:
        needs = logical.site_resource_needs(session, list(service.resources or []), place)
    except Conflict as exc:
        raise Conflict(
            f"{where}.product.place[0].id: service {service.id} cannot move to site {site.name!r}: "
            f"{exc.message}",
            reason=exc.reason,
        ) from None
    steps: list[dict[str, Any]] = []
    if needs:
        steps.append(
            {
                "kind": SITE_RESOURCES_KIND,
                "action": "assign",
                "needs": needs,
                "where": where,
                "site_name": site.name,
                "parameters": {"siteId": new_site, "resources": [n.what for n in needs]},
            }
        )
    steps.append(
        {"action": "moveOut", "parameters": dict(service.characteristics) | {"siteId": service.site_id}}
    )
    offering = catalog.offering_terms(session, service.offering_id)
    for visit in provisioning_steps(offering, where) if offering is not None else []:
        if visit["kind"] == "fieldVisit" and visit["specification_id"] in (service.specification_id, None):
            steps.append(
                {
                    "kind": "fieldVisit",
                    "action": "move",
                    "event": visit["event"],
                    "parameters": dict(visit["parameters"]) | {"siteId": new_site, "workType": "move"},
                }
            )
            break
    steps.append(
        {
            "action": "moveIn",
            "parameters": dict(service.characteristics) | {"siteId": new_site, MOVE_FROM: service.site_id},
        }
    )
    if needs:
        steps.append(
            {
                "kind": SITE_RESOURCES_KIND,
                "action": "release",
                "parameters": {"siteId": service.site_id, "release": [n.entry for n in needs]},
            }
        )
    return steps


def _check_characteristics(session: Session, service: Service, changes: dict[str, Any], where: str) -> None:
    """A modify's characteristics against the offering's definitions: a name neither defined by its
    specifications nor carried by the service is refused, and so is a value of the wrong type, outside the
    allowed values or ranges, or of a characteristic that is not configurable (400 naming it)."""
    offering = catalog.offering_terms(session, service.offering_id)
    if offering is None:
        return
    known = set(service.characteristics or {})
    for name, value in changes.items():
        problem = catalog.characteristic_problem(offering, name, value, known)
        if problem:
            raise InvalidInput(
                f"{where}.product.productCharacteristic[{name}]: {problem}",
                reason="Characteristic value not allowed",
            )


def _totals(priced: catalog.OfferingPrice) -> dict[str, Any]:
    return {
        "recurring": catalog.money_text(priced.totals.recurring),
        "oneTime": catalog.money_text(priced.totals.one_time),
        "itemPrice": priced.documents,
    }


def _change_price(
    session: Session, service: Service, change: dict[str, Any], where: str
) -> dict[str, Any] | None:
    """What a modify does to the item's price: the offering priced (one unit, catalog list prices and
    automatic discounts, the rules quotes use: ``turnup.catalog.price_offering``) with the service's
    characteristics before and after the change, and the difference. None when the offering has no price."""
    offering = catalog.offering_terms(session, service.offering_id)
    if offering is None:
        return None
    defaults = catalog.default_characteristics(offering)
    before = defaults | dict(service.characteristics or {})
    after = before | {k: v for k, v in change["parameters"].items() if not k.startswith("_")}
    now = clock.now()
    try:
        old, new = (
            catalog.price_offering(
                offering,
                quantity=1,
                characteristics=chars,
                requested_discount=Decimal(0),
                term_months=0,
                now=now,
                where=where,
            )
            for chars in (before, after)
        )
    except InvalidInput:
        return None  # no live price (an offering sold without one): nothing to show
    if old.currency != new.currency:
        return None
    return {
        "currency": new.currency,
        "before": _totals(old),
        "after": _totals(new),
        "difference": {
            "recurring": catalog.money_text(new.totals.recurring - old.totals.recurring),
            "oneTime": catalog.money_text(new.totals.one_time - old.totals.one_time),
        },
    }


def _site(session: Session, item: Any, where: str, customer_id: str) -> str | None:
    """The installation site an item names (``product.place[0].id``): a geographic site of the customer."""
    if item.product is None or not item.product.place:
        return None
    site = find_site(session, item.product.place[0].id)
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


def provisioning_steps(offering: OfferingTerms, where: str, depth: int = 0) -> list[dict[str, Any]]:
    """The provisioning steps an offering needs: its specifications' entries, then its bundle members'."""
    if depth > MAX_BUNDLE_DEPTH:
        raise InvalidInput(f"{where}: bundle nesting deeper than {MAX_BUNDLE_DEPTH}")
    steps: list[dict[str, Any]] = []
    for spec in offering.specifications:
        requirements = spec.delivery_requirements
        entries = list(requirements.get("provisioning") or [])
        explicit = {e.get("kind") for e in entries}
        # the catalog's own delivery requirements: items shipped to the customer -> a shipment wait; a field
        # visit (technician-fulfilled items come with it) -> a field visit wait; both before activation
        # items picked up by the customer -> a pickup wait; each of these waits carries the items it hands
        # over (``items``), which move to the customer's site when its event is reported
        delivered = {
            method: [
                {"sku": p.get("sku"), "quantity": p.get("quantity")}
                for p in requirements.get("physical") or []
                if p.get("fulfilmentMethod") == method
            ]
            for method in ("ship", "pickup", "technician")
        }
        derived: list[dict[str, Any]] = []
        if delivered["ship"] and "shipment" not in explicit:
            derived.append({"kind": "shipment", "items": delivered["ship"]})
        if delivered["pickup"] and "pickup" not in explicit:
            derived.append({"kind": "pickup", "items": delivered["pickup"]})
        if requirements.get("fieldVisit") and "fieldVisit" not in explicit:
            visit = dict(requirements["fieldVisit"])
            if delivered["technician"]:
                visit["items"] = delivered["technician"]
            derived.append({"kind": "fieldVisit", **visit})
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
            method = HANDOVER.get(kind)
            if method and delivered[method] and "items" not in entry:  # an explicit wait: the spec's items
                entry = {**entry, "items": delivered[method]}
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
    for member in offering.members:
        steps.extend(provisioning_steps(member, where, depth + 1))
    return steps
