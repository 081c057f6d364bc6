"""Billing's own tables: billing accounts, the services they carry, recurring rates, charges
(TMF678 appliedCustomerBillingRate), bill runs, customer bills and their lines, and the tax rate table."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from turnup.kernel.db import Base, Money, UTCDateTime
from turnup.kernel.ids import new_id

CHARGE_TYPES = ("recurring", "oneTime", "credit", "usage")


class BillingAccount(Base):
    """A billing account (TMF666): who is billed, when (bill cycle day), in what currency, on what terms."""

    __tablename__ = "billing_account"
    __table_args__ = (
        CheckConstraint("bill_cycle_day >= 1 AND bill_cycle_day <= 28", name="bill_cycle_day"),
        CheckConstraint("payment_terms_days >= 0", name="payment_terms_days"),
        CheckConstraint("state IN ('active', 'suspended', 'closed')", name="state"),
    )

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    bill_cycle_day: Mapped[int] = mapped_column(Integer, index=True)
    payment_terms_days: Mapped[int] = mapped_column(Integer)
    bill_to_contact_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BilledService(Base):
    """Which billing account a delivered service belongs to, and whether it is billed now."""

    __tablename__ = "billing_service"

    service_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    billing_account_id: Mapped[str] = mapped_column(ForeignKey("billing_account.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(20))  # active | suspended | terminated
    activated_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # the latest delivery event applied (its time and id): an older one, or the same one again, is ignored
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_event_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecurringRate(Base):
    """A recurring price running on a service from ``starts_on`` until ``ends_on`` (None: still running).
    A suspension, a modification or a termination ends it; a resumption or a modification starts a new one.
    ``key`` (service, component, start) makes opening it exactly-once."""

    __tablename__ = "billing_recurring_rate"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(250), unique=True)
    service_id: Mapped[str] = mapped_column(String(32), index=True)
    billing_account_id: Mapped[str] = mapped_column(ForeignKey("billing_account.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    order_item_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    offering_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    component: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)  # per full bill period
    tax_category: Mapped[str] = mapped_column(String(50))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Charge(Base):
    """An applied customer billing rate (TMF678): one amount owed (or credited) for a service, a price
    component and a period. Immutable once written; corrections are credits. ``key`` is its exactly-once
    identity (what caused it); ``bill_id`` is set when a bill run bills it."""

    __tablename__ = "billing_charge"
    __table_args__ = (
        CheckConstraint("charge_type IN ('recurring', 'oneTime', 'credit', 'usage')", name="charge_type"),
        CheckConstraint("(charge_type = 'credit') = (amount < 0) OR amount = 0", name="amount_sign"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(250), unique=True)
    charge_type: Mapped[str] = mapped_column(String(20), index=True)
    billing_account_id: Mapped[str] = mapped_column(ForeignKey("billing_account.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    service_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    order_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    order_item_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    offering_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    rate_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    component: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)
    tax_category: Mapped[str] = mapped_column(String(50))
    period_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    period_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    source: Mapped[str] = mapped_column(String(100))
    bill_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class BillRun(Base):
    """One bill run per bill cycle day and period; ``closed`` periods are not billed again."""

    __tablename__ = "billing_bill_run"
    __table_args__ = (UniqueConstraint("cycle_day", "period_start"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    cycle_day: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20))  # open | closed
    runs: Mapped[int] = mapped_column(Integer)
    last_run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_run_by: Mapped[str] = mapped_column(String(200))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class CustomerBill(Base):
    """A customer bill (TMF678) of one billing account for one bill period."""

    __tablename__ = "billing_customer_bill"
    __table_args__ = (UniqueConstraint("billing_account_id", "period_start"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    bill_no: Mapped[str] = mapped_column(String(60), unique=True)
    billing_account_id: Mapped[str] = mapped_column(ForeignKey("billing_account.id"), index=True)
    bill_run_id: Mapped[str] = mapped_column(ForeignKey("billing_bill_run.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(20))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    bill_date: Mapped[date] = mapped_column(Date)
    payment_due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    amount_excluding_tax: Mapped[Decimal] = mapped_column(Money)
    tax_amount: Mapped[Decimal] = mapped_column(Money)
    amount_due: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BillLine(Base):
    """One charge on one bill: the unique ``charge_id`` is what makes billing a charge twice impossible."""

    __tablename__ = "billing_bill_line"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    bill_id: Mapped[str] = mapped_column(ForeignKey("billing_customer_bill.id"), index=True)
    charge_id: Mapped[str] = mapped_column(ForeignKey("billing_charge.id"), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    charge_type: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(300))
    service_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    period_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    period_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    tax_category: Mapped[str] = mapped_column(String(50))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    tax_amount: Mapped[Decimal] = mapped_column(Money)


class TaxRate(Base):
    """The tax rate table: a rate (0.2000 = 20%) per customer country and product tax category."""

    __tablename__ = "billing_tax_rate"
    __table_args__ = (CheckConstraint("rate >= 0 AND rate < 1", name="rate"),)

    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    tax_category: Mapped[str] = mapped_column(String(50), primary_key=True)
    rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
