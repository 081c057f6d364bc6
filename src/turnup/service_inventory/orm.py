"""Service instances (TMF638) and the orders that touched them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from turnup.kernel.db import Base, JSONDoc, UTCDateTime
from turnup.kernel.ids import new_id

SERVICE_STATES = ("designed", "reserved", "active", "inactive", "terminated")


class Service(Base):
    __tablename__ = "service_instance"
    __table_args__ = (
        CheckConstraint(
            "state IN ('designed', 'reserved', 'active', 'inactive', 'terminated')", name="state"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), index=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    site_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    offering_id: Mapped[str] = mapped_column(String(32), index=True)
    offering_name: Mapped[str] = mapped_column(String(200))
    specification_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    adapter: Mapped[str] = mapped_column(String(100))
    characteristics: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    resources: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    network_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    activation_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    termination_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    history: Mapped[list[ServiceOrderHistory]] = relationship(
        order_by="ServiceOrderHistory.at", lazy="selectin", viewonly=True
    )


class ServiceOrderHistory(Base):
    """Each order (item) that changed a service, and the state it left the service in."""

    __tablename__ = "service_order_history"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("service_instance.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[str] = mapped_column(String(32), index=True)
    order_item_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
