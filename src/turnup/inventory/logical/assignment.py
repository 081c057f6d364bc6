"""Commands other features use to assign logical resources to a service and give them back.

A service (service inventory) lists what it carries; the rows themselves (blocks, numbers, reservations)
belong to logical inventory and change only here. Every command runs in the caller's transaction and
never commits.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from turnup.inventory.logical import chain
from turnup.inventory.logical import reservations as logical
from turnup.inventory.logical.numbers import get_class
from turnup.inventory.logical.orm import LogicalSpace, ResourceReservation, TelephoneNumber
from turnup.inventory.logical.render import INVENTORY_API, render_block, render_number
from turnup.kernel import clock
from turnup.kernel.errors import Conflict
from turnup.kernel.outbox import publish


def release_block(session: Session, block_id: str, service_id: str) -> dict[str, Any]:
    """A block (IP prefix, VLAN, ASN, identifier) allocated to ``service_id`` goes into its pool's quarantine
    (or straight back to free when the pool has none); ``ResourceStateChangeEvent`` published.

    Returns ``{"id", "result": "quarantine" | "free" | "notHeld", "until"?}``.
    """
    row = chain.lock_block(session, block_id)
    if row is None or row.state != "allocated" or (row.service_id not in (None, service_id)):
        return {"id": block_id, "result": "notHeld"}
    space = session.get(LogicalSpace, row.space_id)
    assert space is not None
    document = render_block(row, space)
    until = chain.release(session, space, row)
    document.update(
        lifecycleState="quarantine" if until else "free",
        usageState="idle",
        quarantineUntil=until and until.isoformat(),
        resourceStatus="standby" if until else "available",
    )
    publish(
        session,
        api=INVENTORY_API,
        event_type="ResourceStateChangeEvent",
        resource_type="resource",
        resource=document,
    )
    return {
        "id": block_id,
        "result": "quarantine" if until else "free",
        "until": until.isoformat() if until else None,
    }


def age_number(session: Session, number_id: str) -> dict[str, Any]:
    """An assigned telephone number starts aging for its number class's period (``ResourceStateChangeEvent``).

    Returns ``{"id", "result": "aging" | "notHeld", "until"?}``.
    """
    number = session.get(TelephoneNumber, number_id, with_for_update=True)
    if number is None or number.state != "assigned":
        return {"id": number_id, "result": "notHeld"}
    aging_days = get_class(session, number.number_class).aging_days  # (before any change: autoflush)
    now = clock.now()
    number.state = "aging"
    number.until = now + timedelta(days=aging_days)
    number.service_id = None
    number.reservation_id = None
    number.updated_at = now
    session.flush()
    publish(
        session,
        api=INVENTORY_API,
        event_type="ResourceStateChangeEvent",
        resource_type="resource",
        resource=render_number(number),
    )
    return {"id": number_id, "result": "aging", "until": number.until.isoformat()}


def release_reservation_if_held(session: Session, reservation_id: str, actor: str) -> bool:
    """Release a resource reservation that is still ``reserved``; False (nothing done) otherwise."""
    held = session.get(ResourceReservation, reservation_id)
    if held is None or held.state != "reserved":
        return False
    logical.release(session, reservation_id, actor, commit_now=False)
    return True


def assign_reservation_to_service(
    session: Session,
    reservation_id: str,
    *,
    service_id: str,
    owner: str,
    actor: str,
    lines: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Assign what a resource reservation holds (or only its items ``lines``) to ``service_id``.

    A live hold is committed to the service (to ``owner`` when only some lines are the service's: the other
    lines go to other services of the owner); one already committed to ``owner`` (e.g. ``order:<id>``, by
    quote acceptance) has its numbers and blocks re-assigned to the service. Returns one ``service.resources``
    entry per number (``telephoneNumber``) and block (``logicalResource``). Idempotent. A reservation that is
    missing, released, expired or committed to something else is a ``Conflict`` naming it.
    """
    rid = reservation_id
    held = session.get(ResourceReservation, rid, with_for_update=True, populate_existing=True)
    if held is None:
        raise Conflict(f"resourceReservation {rid} not found", reason="Reservation lost")
    chosen = [i for i in held.items if lines is None or i.line_no in lines]
    if lines is not None and len(chosen) != len(set(lines)):
        missing = sorted(set(lines) - {i.line_no for i in held.items})
        raise Conflict(f"resourceReservation {rid}: no line {missing[0]}", reason="Reservation lost")
    if held.state == "reserved":
        logical.commit(
            session, rid, actor, service_id=service_id if lines is None else owner, commit_now=False
        )
    if held.state == "committed" and lines is not None and held.service_id in (owner, service_id):
        now = clock.now()
        for item in chosen:
            if item.number_id:
                number = session.get(TelephoneNumber, item.number_id, with_for_update=True)
                if number is not None and number.service_id == owner:
                    number.service_id, number.updated_at = service_id, now
            elif item.block_id:
                session.execute(
                    update(chain.T)
                    .where(chain.T.c.id == item.block_id, chain.T.c.service_id == owner)
                    .values(service_id=service_id)
                )
    elif held.state == "committed" and held.service_id in (owner, service_id) and lines is None:
        now = clock.now()
        for item in held.items:
            if item.number_id:
                number = session.get(TelephoneNumber, item.number_id, with_for_update=True)
                if number is not None and number.service_id == owner:
                    number.service_id, number.updated_at = service_id, now
            elif item.block_id:
                session.execute(
                    update(chain.T)
                    .where(chain.T.c.id == item.block_id, chain.T.c.service_id == owner)
                    .values(service_id=service_id)
                )
        held.service_id, held.updated_at = service_id, now
    else:
        raise Conflict(
            f"resourceReservation {rid} is {held.state}"
            + (f" for {held.service_id}" if held.service_id else ""),
            reason="Reservation lost",
        )
    entries: list[dict[str, Any]] = []
    for item in chosen:
        if item.number_id:
            entries.append(
                {
                    "resourceType": "telephoneNumber",
                    "id": item.number_id,
                    "value": item.value,
                    "reservationId": rid,
                }
            )
        elif item.block_id:
            entries.append(
                {
                    "resourceType": "logicalResource",
                    "id": item.block_id,
                    "value": item.value,
                    "kind": item.resource_type,
                    "reservationId": rid,
                }
            )
    return entries
