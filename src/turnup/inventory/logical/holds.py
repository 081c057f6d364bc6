"""Logical resource holds as other features see them: pools to choose from, a command that holds resources
inside the caller's transaction, and the state of a hold, all as plain read models (no ORM rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.inventory.logical import reservations
from turnup.inventory.logical.orm import LogicalSpace, ResourceReservation
from turnup.inventory.logical.reservations import ReserveLine


@dataclass(frozen=True)
class PoolInfo:
    id: str
    name: str
    resource_type: str
    role: str
    prefix: str | None
    purpose: str | None
    site: str | None


@dataclass(frozen=True)
class HeldResource:
    line_no: int  # index of the request line it came from
    value: str


@dataclass(frozen=True)
class ResourceHold:
    id: str
    items: tuple[HeldResource, ...]


@dataclass(frozen=True)
class ResourceHoldState:
    state: str  # reserved | committed | released
    expires_at: datetime
    related_party: str | None = None  # whom it is held for (a customer id), when known


def resource_pools(session: Session, resource_type: str) -> list[PoolInfo]:
    """Every pool or subnet of ``resource_type`` (ipv4, ipv6, vlan, asn, identifier) in id order."""
    rows = session.scalars(
        select(LogicalSpace)
        .where(LogicalSpace.resource_type == resource_type, LogicalSpace.role.in_(("pool", "subnet")))
        .order_by(LogicalSpace.id)
    )
    return [PoolInfo(s.id, s.name, s.resource_type, s.role, s.prefix, s.purpose, s.site) for s in rows]


def hold_resources(
    session: Session,
    lines: Sequence[ReserveLine],
    expires_at: datetime,
    actor: str,
    *,
    description: str | None = None,
    related_party: str | None = None,
) -> ResourceHold:
    """Reserve every line until ``expires_at`` or nothing; no commit (the caller's transaction decides)."""
    reservation = reservations.reserve(
        session,
        list(lines),
        expires_at,
        actor,
        description=description,
        related_party=related_party,
        commit=False,
    )
    items = sorted(reservation.items, key=lambda i: i.line_no)
    return ResourceHold(reservation.id, tuple(HeldResource(i.line_no, i.value) for i in items))


def commit_resource_hold(
    session: Session, reservation_id: str, actor: str, *, service_id: str | None
) -> None:
    """Turn every reserved line of the hold into an allocation for ``service_id``; no commit."""
    reservations.commit(session, reservation_id, actor, service_id=service_id, commit_now=False)


def resource_hold_state(session: Session, reservation_id: str) -> ResourceHoldState | None:
    """The hold's current state and expiry as stored now, or None when there is no such hold."""
    row = session.get(ResourceReservation, reservation_id, populate_existing=True)
    return ResourceHoldState(row.state, row.expires_at, row.related_party) if row is not None else None
