"""What an order that does not complete leaves behind is settled: the services it created end, and the
resources its reservations hold are given back (no leak when an order is cancelled, aborted or fails)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from turnup import service_inventory as inventory
from turnup.inventory import logical
from turnup.kernel.errors import TurnupError
from turnup.ordering.model import RESOURCE_KIND, SITE_RESOURCES_KIND
from turnup.ordering.orm import PlanItem
from turnup.service_inventory import Service

ACTOR = "orchestrator"


def terminate(s: Session, service: Service, *, action: str, order_id: str, order_item_id: str) -> None:
    """A service this order created ends (compensation, abort, cancellation): terminated, and the resources
    assigned to it (from the order's reservations) released — no leak when an order does not complete."""
    if service.state != "terminated":
        inventory.change_state(
            s, service, "terminated", action=action, order_id=order_id, order_item_id=order_item_id
        )
        if service.resources:
            inventory.release_resources(
                s, service, actor=ACTOR, order_id=order_id, order_item_id=order_item_id
            )


def settle_resources(s: Session, plan: list[PlanItem], order_id: str) -> None:
    """At an order's end without completion: reservations not yet assigned are assigned to their service
    (so terminating it releases them); a reservation that cannot be is left as it is (recorded). A move's
    new-site hold not yet assigned is released."""
    for p in plan:
        unassigned = p.state not in ("completed", "cancelled")
        if p.kind == SITE_RESOURCES_KIND and p.action == "assign" and unassigned:
            # a move that never got to its new site: the new site's hold is given back
            logical.release_reservation_if_held(s, str(p.parameters["reservation"]["id"]), ACTOR)
            continue
        if p.kind != RESOURCE_KIND or p.state in ("completed", "cancelled"):
            continue
        service = inventory.get_service(s, p.service_id)
        savepoint = s.begin_nested()
        try:
            inventory.assign_reservation(
                s,
                service,
                dict(p.parameters["reservation"]),
                order_id=order_id,
                actor=ACTOR,
                lines=p.parameters.get("lines"),
                fulfilment_method=p.parameters.get("fulfilmentMethod"),
            )
            savepoint.commit()
            if service.state == "terminated":
                inventory.release_resources(
                    s, service, actor=ACTOR, order_id=order_id, order_item_id=p.order_item_id
                )
        except TurnupError as exc:
            savepoint.rollback()
            p.last_error = exc.message
