"""Usage records (TMF635) with their rating, and usage's own record of each service's activity."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from turnup.kernel.db import Base, JSONDoc, Money, UTCDateTime

Quantity = Numeric(18, 6, asdecimal=True)


class UsageRecord(Base):
    """One usage record as the sender sent it (``id`` is the sender's), with its rating.

    ``status`` is the TMF635 status: ``rated`` (billable), ``billed`` (taken by a bill run: ``bill_ref``),
    ``guided`` (held for review: ``review_state = 'open'``, ``review_reason``), ``rejected`` (written off).
    The tier position of a record is cumulative per (service, usage type, month): ``period`` (``YYYY-MM`` of
    ``usage_date`` in UTC) groups it (``turnup.usage.rating``)."""

    __tablename__ = "usage_record"
    __table_args__ = (
        CheckConstraint("status IN ('guided', 'rated', 'billed', 'rejected')", name="status"),
        CheckConstraint("quantity >= 0", name="quantity"),
        CheckConstraint(
            "review_state IS NULL OR review_state IN ('open', 'resolved', 'writtenOff')", name="review_state"
        ),
        CheckConstraint("(status = 'billed') = (bill_ref IS NOT NULL)", name="billed_has_bill_ref"),
        Index("ix_usage_record_group", "service_id", "usage_type", "period"),
        Index("ix_usage_record_unbilled", "status", "usage_date"),
    )

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    usage_date: Mapped[datetime] = mapped_column(UTCDateTime)
    period: Mapped[str] = mapped_column(String(7))
    usage_type: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    service_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    billing_account_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    price_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    price_source: Mapped[str | None] = mapped_column(String(20), nullable=True)  # agreed | catalog
    tiers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc, nullable=True)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_state: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    review_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    review_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(500), nullable=True)
    bill_ref: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    billed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UsageService(Base):
    """What usage knows of a service, from the delivery events (``usage.service_periods``): its customer,
    billing account (the customer's, when the service was first seen) and offering (the agreed usage
    prices of its quote are found through the ordering face at rating time)."""

    __tablename__ = "usage_service"

    service_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    billing_account_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    offering_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class UsageServiceChange(Base):
    """One delivery event of a service as usage saw it: from ``at`` on, the service is in ``state``
    (``active``, ``inactive`` = suspended, ``terminated``). Keyed by the event's id (redelivery adds
    nothing)."""

    __tablename__ = "usage_service_change"
    __table_args__ = (Index("ix_usage_service_change_service_at", "service_id", "at"),)

    event_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, … per service, in the order received
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(20))
