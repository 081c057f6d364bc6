"""One reservation API for every logical resource (a ``resourceReservation`` in TMF style).

The Python API the quote feature calls::

    reservation = reserve(session, [ReserveLine("ipPrefix", {"poolId": p, "prefixLength": 29}),
                                    ReserveLine("vlan", {"poolId": v}),
                                    ReserveLine("telephoneNumber", {"country": "GB", "pattern": "*2000"})],
                          expires_at, actor, commit=False)   # combine with stock in one transaction
    extend(session, reservation.id, later, actor)
    commit(session, reservation.id, actor, service_id="svc-1")  # reserved -> allocated / assigned
    release(session, reservation.id, actor)                     # reserved -> free / available

``reserve`` is all-or-nothing: every line is taken in the caller's transaction; if any line fails, none is
kept (the session, or with ``commit=False`` a savepoint, is rolled back) and the error names the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.orm import Session

from turnup.inventory.logical import chain, numbers
from turnup.inventory.logical.codec import WIDTH, unhex
from turnup.inventory.logical.orm import (
    ResourceReservation,
    ResourceReservationItem,
    TelephoneNumber,
)
from turnup.inventory.logical.render import POOL_API, block_value, render_reservation
from turnup.inventory.logical.schemas import ReservationCreate, ReservationItemIn, ReservationUpdate
from turnup.inventory.logical.services import get_pool, plan_allocation
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

KIND_TYPES = {
    "ipPrefix": ("ipv4", "ipv6"),
    "ipAddress": ("ipv4", "ipv6"),
    "vlan": ("vlan",),
    "asn": ("asn",),
    "identifier": ("identifier",),
}
T = chain.T


@dataclass
class ReserveLine:
    kind: str  # ipPrefix | ipAddress | vlan | asn | identifier | telephoneNumber
    params: dict[str, Any] = field(default_factory=dict)


def _item(line: ReserveLine | ReservationItemIn | dict[str, Any], index: int) -> ReservationItemIn:
    if isinstance(line, ReservationItemIn):
        return line
    raw = {"resourceType": line.kind, **line.params} if isinstance(line, ReserveLine) else line
    try:
        return ReservationItemIn(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"reservationItem[{index}].{loc}: {first['msg']}") from None


def get_reservation(session: Session, reservation_id: str, lock: bool = False) -> ResourceReservation:
    found = session.get(ResourceReservation, reservation_id, with_for_update=lock or None)
    if found is None:
        raise NotFound(f"resourceReservation {reservation_id!r} not found")
    return found


def _check_expiry(expires_at: datetime, field: str = "validFor.endDateTime") -> None:
    if expires_at.tzinfo is None:
        raise InvalidInput(f"{field}: needs a timezone offset")
    if expires_at <= clock.now():
        raise InvalidInput(f"{field}: must be in the future")


def reserve(
    session: Session,
    lines: Sequence[ReserveLine | ReservationItemIn | dict[str, Any]],
    expires_at: datetime,
    actor: str,
    *,
    description: str | None = None,
    related_party: str | None = None,
    commit: bool = True,
) -> ResourceReservation:
    """Reserve every line until ``expires_at``, or nothing at all."""
    items = [_item(line, i) for i, line in enumerate(lines)]
    if not items:
        raise InvalidInput("reservationItem: at least one line is required")
    _check_expiry(expires_at)
    savepoint = None if commit else session.begin_nested()
    try:
        reservation = _reserve_lines(session, items, expires_at, actor, description, related_party)
    except Exception:
        if savepoint is not None:
            savepoint.rollback()
        else:
            session.rollback()
        raise
    if savepoint is not None:
        savepoint.commit()
    else:
        session.commit()
    return reservation


def _reserve_lines(
    session: Session,
    items: list[ReservationItemIn],
    expires_at: datetime,
    actor: str,
    description: str | None,
    related_party: str | None,
) -> ResourceReservation:
    now = clock.now()
    rid = new_id()
    reservation = ResourceReservation(
        id=rid,
        state="reserved",
        expires_at=expires_at,
        description=description,
        related_party=related_party,
        created_at=now,
        updated_at=now,
    )
    session.add(reservation)
    session.flush()
    for i, item in enumerate(items):
        f = f"reservationItem[{i}]"
        if item.resourceType == "telephoneNumber":
            number = numbers.reserve_number(session, item, rid, expires_at, f)
            reservation.items.append(
                ResourceReservationItem(
                    id=new_id(),
                    line_no=i,
                    resource_type=item.resourceType,
                    number_id=number.id,
                    value="+" + number.digits,
                )
            )
            continue
        if not item.poolId:
            raise InvalidInput(f"{f}.poolId: required for a {item.resourceType}")
        space = get_pool(session, item.poolId, f"{f}.poolId")
        if space.resource_type not in KIND_TYPES[item.resourceType]:
            raise InvalidInput(
                f"{f}.poolId: pool {space.name!r} holds {space.resource_type}, not {item.resourceType}"
            )
        if item.resourceType == "ipPrefix" and item.prefix is None and item.prefixLength is None:
            raise InvalidInput(f"{f}.prefixLength: required for an ipPrefix")
        if item.resourceType == "ipAddress":
            width = WIDTH[space.resource_type]
            if item.prefixLength not in (None, width) or (
                item.prefix and "/" in item.prefix and not item.prefix.endswith(f"/{width}")
            ):
                raise InvalidInput(f"{f}.prefixLength: an ipAddress is a single /{width}")
        r, target, label, what = plan_allocation(space, item, f + ".")
        taken = chain.take(
            session,
            space,
            r,
            policy=item.allocationPolicy or space.policy,
            target=target,
            state="reserved",
            until=expires_at,
            reservation_id=rid,
            label=label,
            what=what,
        )
        reservation.items.append(
            ResourceReservationItem(
                id=new_id(),
                line_no=i,
                resource_type=item.resourceType,
                space_id=space.id,
                block_id=taken.id,
                value=block_value(space, taken.lo, taken.k),
            )
        )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="resourceReservation.create",
        resource_type="resourceReservation",
        resource_id=rid,
        details={"lines": len(items), "expiresAt": expires_at.isoformat()},
    )
    publish(
        session,
        api=POOL_API,
        event_type="ResourceReservationCreateEvent",
        resource_type="resourceReservation",
        resource=render_reservation(reservation),
    )
    return reservation


def _live(session: Session, reservation_id: str) -> ResourceReservation:
    reservation = get_reservation(session, reservation_id, lock=True)
    if reservation.state != "reserved":
        raise Conflict(
            f"reservationState: reservation is {reservation.state}", reason="Illegal state transition"
        )
    if reservation.expires_at <= clock.now():
        raise Conflict(
            "reservationState: reservation has expired; its resources were released",
            reason="Reservation expired",
        )
    return reservation


def _held_rows(
    session: Session, reservation: ResourceReservation
) -> list[tuple[ResourceReservationItem, Any]]:
    """Lock every line's resource in line order and check it is still held by this reservation."""
    held = []
    for item in reservation.items:
        if item.number_id:
            row: Any = session.get(
                TelephoneNumber, item.number_id, with_for_update=True, populate_existing=True
            )
            ok = row is not None and row.state == "reserved" and row.reservation_id == reservation.id
        else:
            row = chain.lock_block(session, item.block_id or "")
            ok = row is not None and row.state == "reserved" and row.reservation_id == reservation.id
        if not ok:
            raise Conflict(
                f"reservationItem[{item.line_no}]: {item.value} is no longer held by this reservation",
                reason="Reservation expired",
            )
        held.append((item, row))
    return held


def extend(
    session: Session, reservation_id: str, expires_at: datetime, actor: str, commit_now: bool = True
) -> ResourceReservation:
    _check_expiry(expires_at)
    reservation = _live(session, reservation_id)
    for item, row in _held_rows(session, reservation):
        if item.number_id:
            row.until = expires_at
        else:
            session.execute(update(T).where(T.c.id == row.id).values(until=expires_at))
    old = reservation.expires_at
    reservation.expires_at = expires_at
    reservation.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="resourceReservation.extend",
        resource_type="resourceReservation",
        resource_id=reservation.id,
        details={"from": old.isoformat(), "to": expires_at.isoformat()},
    )
    publish(
        session,
        api=POOL_API,
        event_type="ResourceReservationAttributeValueChangeEvent",
        resource_type="resourceReservation",
        resource=render_reservation(reservation),
    )
    if commit_now:
        session.commit()
    return reservation


def commit(
    session: Session, reservation_id: str, actor: str, service_id: str | None = None, commit_now: bool = True
) -> ResourceReservation:
    """Turn every reserved line into an allocation (IP/VLAN/ASN/identifier) or an assignment (number)."""
    reservation = _live(session, reservation_id)
    now = clock.now()
    for item, row in _held_rows(session, reservation):
        if item.number_id:
            row.state, row.until, row.service_id, row.updated_at = "assigned", None, service_id, now
        else:
            session.execute(
                update(T)
                .where(T.c.id == row.id)
                .values(state="allocated", until=None, service_id=service_id, allocated_at=now)
            )
    reservation.state = "committed"
    reservation.service_id = service_id
    reservation.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="resourceReservation.commit",
        resource_type="resourceReservation",
        resource_id=reservation.id,
        details={"serviceId": service_id},
    )
    publish(
        session,
        api=POOL_API,
        event_type="ResourceReservationStateChangeEvent",
        resource_type="resourceReservation",
        resource=render_reservation(reservation),
    )
    if commit_now:
        session.commit()
    return reservation


def release(
    session: Session, reservation_id: str, actor: str, commit_now: bool = True
) -> ResourceReservation:
    """Give back whatever the reservation still holds (never used, so no quarantine or aging)."""
    reservation = get_reservation(session, reservation_id, lock=True)
    if reservation.state != "reserved":
        raise Conflict(
            f"reservationState: reservation is {reservation.state}", reason="Illegal state transition"
        )
    now = clock.now()
    for item in reservation.items:
        if item.number_id:
            number = session.get(
                TelephoneNumber, item.number_id, with_for_update=True, populate_existing=True
            )
            if number is not None and number.state == "reserved" and number.reservation_id == reservation.id:
                number.state, number.until, number.reservation_id, number.updated_at = (
                    "available",
                    None,
                    None,
                    now,
                )
        else:
            row = chain.lock_block(session, item.block_id or "")
            if row is not None and row.state == "reserved" and row.reservation_id == reservation.id:
                chain.free_block(session, row.space_id, row.id, unhex(row.lo), row.k)
    reservation.state = "released"
    reservation.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="resourceReservation.release",
        resource_type="resourceReservation",
        resource_id=reservation.id,
    )
    publish(
        session,
        api=POOL_API,
        event_type="ResourceReservationStateChangeEvent",
        resource_type="resourceReservation",
        resource=render_reservation(reservation),
    )
    if commit_now:
        session.commit()
    return reservation


# ------------------------------------------------------------------------------- API adapters (TMF)


def create_from_api(session: Session, data: ReservationCreate, actor: str) -> ResourceReservation:
    return reserve(
        session,
        data.reservationItem,
        data.validFor.endDateTime,
        actor,
        description=data.description,
        related_party=data.relatedParty,
    )


def update_from_api(
    session: Session, reservation_id: str, data: ReservationUpdate, actor: str
) -> ResourceReservation:
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        return get_reservation(session, reservation_id)
    if data.validFor is not None and data.reservationState is not None:
        raise InvalidInput("validFor: extend and change state in separate requests")
    if data.validFor is not None:
        return extend(session, reservation_id, data.validFor.endDateTime, actor)
    if data.reservationState == "committed":
        return commit(session, reservation_id, actor, service_id=data.serviceId)
    if data.reservationState == "released":
        return release(session, reservation_id, actor)
    raise InvalidInput("reservationState: give committed or released (or validFor to extend)")
