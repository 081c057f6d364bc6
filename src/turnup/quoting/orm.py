"""Quote tables: quotes, their items, version snapshots, approval rules (data) and approval steps."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from turnup.kernel.db import Base, JSONDoc, Money, UTCDateTime
from turnup.kernel.ids import new_id

Percent = Numeric(7, 4, asdecimal=True)


class Quote(Base):
    __tablename__ = "quote"
    __table_args__ = (
        CheckConstraint(
            "state IN ('inProgress', 'pending', 'approved', 'cancelled', 'accepted', 'rejected')",
            name="state",
        ),
        CheckConstraint("contract_term_months >= 1", name="term"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    state_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    contract_term_months: Mapped[int] = mapped_column(Integer, default=12)
    quote_date: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    priced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # totals (None until priced)
    recurring_total: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    one_time_total: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    usage_total: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    recurring_list_total: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    one_time_list_total: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    contract_value: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    margin_percent: Mapped[Decimal | None] = mapped_column(Percent, nullable=True)
    # inventory holds: one stock reservation and one logical reservation per quote
    stock_reservation_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    logical_reservation_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    holds_state: Mapped[str | None] = mapped_column(String(20), nullable=True)  # held|released|committed
    # approval
    approval_status: Mapped[str | None] = mapped_column(
        String(20), nullable=True
    )  # notRequired|required|approved|rejected
    # export compliance
    compliance_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    compliance_case_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    compliance_reasons: Mapped[list[str] | None] = mapped_column(JSONDoc, nullable=True)
    screening: Mapped[str | None] = mapped_column(String(20), nullable=True)  # clear|held|unavailable
    # outcome
    agreement_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    items: Mapped[list[QuoteItem]] = relationship(
        order_by="QuoteItem.position", cascade="all, delete-orphan", lazy="selectin"
    )
    approvals: Mapped[list[QuoteApproval]] = relationship(
        order_by="(QuoteApproval.quote_version, QuoteApproval.step)",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class QuoteItem(Base):
    __tablename__ = "quote_item"
    __table_args__ = (
        UniqueConstraint("quote_id", "item_ref"),
        CheckConstraint("quantity >= 1", name="quantity"),
        CheckConstraint("discount_percent >= 0 AND discount_percent <= 100", name="discount"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    quote_id: Mapped[str] = mapped_column(ForeignKey("quote.id", ondelete="CASCADE"), index=True)
    item_ref: Mapped[str] = mapped_column(String(50))
    position: Mapped[int] = mapped_column(Integer)
    offering_id: Mapped[str] = mapped_column(String(32), index=True)
    offering_name: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id", ondelete="RESTRICT"), index=True)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    characteristics: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    discount_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal(0))
    pricing: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)  # components, totals
    holds: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc, nullable=True)  # what is held


class QuoteVersion(Base):
    """A snapshot of the quote document each time its content or pricing changed."""

    __tablename__ = "quote_version"
    __table_args__ = (UniqueConstraint("quote_id", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    quote_id: Mapped[str] = mapped_column(ForeignKey("quote.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApprovalRule(Base):
    """Configured as data: when its conditions all hold, a quote needs its approval chain.

    ``conditions``: ``discountPercentOver``, ``dealValueOver``, ``marginPercentBelow``, ``offerings``
    (names), ``segments`` (customer segments). ``chain``: ordered approver roles. ``maxDiscountPercent``:
    the largest line discount this rule can approve (a discount above every applicable ceiling is refused).
    """

    __tablename__ = "quote_approval_rule"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    chain: Mapped[list[str]] = mapped_column(JSONDoc)
    max_discount_percent: Mapped[Decimal | None] = mapped_column(Percent, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QuoteApproval(Base):
    """One step of a quote version's approval chain, decided in order."""

    __tablename__ = "quote_approval"
    __table_args__ = (
        UniqueConstraint("quote_id", "quote_version", "step"),
        CheckConstraint("state IN ('pending', 'approved', 'rejected', 'superseded')", name="state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    quote_id: Mapped[str] = mapped_column(ForeignKey("quote.id", ondelete="CASCADE"), index=True)
    quote_version: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSONDoc)
    rules: Mapped[list[str]] = mapped_column(JSONDoc)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
