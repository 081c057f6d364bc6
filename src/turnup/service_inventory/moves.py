"""A service's site-dependent resources when it moves (order steps; never commits).

- ``assign_move_resources``: what a hold taken for the move's new site holds (IP prefixes, numbers) is
  assigned to the service (the hold committed to it) and listed in ``service.resources``. Idempotent.
- ``release_move_resources``: resources of the old site the service no longer needs are given back (blocks
  to their pool's quarantine, numbers aging, ``logical.release_block`` / ``logical.age_number``) and taken
  off ``service.resources``. Idempotent (a resource already given back is left as it is).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from turnup.inventory import logical
from turnup.kernel import audit, clock
from turnup.service_inventory.orm import Service
from turnup.service_inventory.services import add_resource_entries


def _key(entry: dict[str, Any]) -> tuple[Any, Any]:
    return entry.get("resourceType"), entry.get("id")


def assign_move_resources(
    session: Session, service: Service, reservation_id: str, *, order_id: str, actor: str
) -> list[dict[str, Any]]:
    """Assign the move's new-site hold to ``service``; return its ``service.resources`` entries."""
    entries = logical.assign_reservation_to_service(
        session, reservation_id, service_id=service.id, owner=f"order:{order_id}", actor=actor
    )
    new = add_resource_entries(session, service, entries)
    if new:
        audit.record(
            session,
            actor=actor,
            action="service.assignMoveResources",
            resource_type="service",
            resource_id=service.id,
            details={"orderId": order_id, "reservationId": reservation_id, "resources": new},
        )
    return entries


def release_move_resources(
    session: Session, service: Service, entries: list[dict[str, Any]], *, order_id: str, actor: str
) -> list[dict[str, Any]]:
    """Give back ``entries`` (IP prefixes, telephone numbers) the service carries and take them off it."""
    wanted = {_key(e) for e in entries}
    carried = [e for e in service.resources or [] if _key(e) in wanted]
    outcome: list[dict[str, Any]] = []
    for entry in carried:
        if entry.get("resourceType") == "telephoneNumber":
            outcome.append(logical.age_number(session, str(entry["id"])))
        elif entry.get("resourceType") == "logicalResource":
            outcome.append(logical.release_block(session, str(entry["id"]), service.id))
    if carried:
        service.resources = [e for e in service.resources or [] if _key(e) not in wanted]
        service.updated_at = clock.now()
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="service.releaseMoveResources",
            resource_type="service",
            resource_id=service.id,
            details={"orderId": order_id, "resources": outcome},
        )
    return outcome
