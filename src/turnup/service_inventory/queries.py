"""Listing services for operators' tools (the CLI): filters and pagination over the inventory."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.service_inventory.orm import Service


def find_services(
    session: Session,
    *,
    state: str | None = None,
    customer_id: str | None = None,
    offering_id: str | None = None,
    site_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Service]:
    """Services newest first (by creation, then id), optionally of one state / customer / offering / site."""
    stmt = select(Service).order_by(Service.created_at.desc(), Service.id)
    if state:
        stmt = stmt.where(Service.state == state)
    if customer_id:
        stmt = stmt.where(Service.customer_id == customer_id)
    if offering_id:
        stmt = stmt.where(Service.offering_id == offering_id)
    if site_id:
        stmt = stmt.where(Service.site_id == site_id)
    return list(session.scalars(stmt.limit(limit).offset(offset)))
