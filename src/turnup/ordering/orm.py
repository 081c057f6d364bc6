"""Product orders (TMF622), their items, the plan they decompose into (TMF641-style service order items),
and the fallout queue of their workflows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from turnup.kernel.db import Base, JSONDoc, UTCDateTime
from turnup.kernel.ids import new_id


class ProductOrder(Base):
    __tablename__ = "product_order"
    __table_args__ = (  # an externalId names one order per customer
        Index(
            "uq_product_order_customer_external_id",
            "customer_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
            sqlite_where=text("external_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    state: Mapped[str] = mapped_column(String(30), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=4)
    requested_completion_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    order_date: Mapped[datetime] = mapped_column(UTCDateTime)
    completion_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    workflow_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    quote_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    agreement_ids: Mapped[list[str] | None] = mapped_column(JSONDoc, nullable=True)
    reservation_refs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    items: Mapped[list[ProductOrderItem]] = relationship(
        order_by="ProductOrderItem.position", lazy="selectin", viewonly=True
    )


class ProductOrderItem(Base):
    __tablename__ = "product_order_item"
    __table_args__ = (UniqueConstraint("order_id", "item_ref"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("product_order.id", ondelete="CASCADE"), index=True)
    item_ref: Mapped[str] = mapped_column(String(50))  # the id given by the caller ("1", "2", …)
    position: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # add (modify/suspend/resume/delete: not yet)
    state: Mapped[str] = mapped_column(String(30))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    offering_id: Mapped[str] = mapped_column(String(32), index=True)
    offering_name: Mapped[str] = mapped_column(String(200))
    # a priced change (modify): the item's price before and after and the difference (TMF622 itemPrice)
    pricing: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)


class PlanItem(Base):
    """One step of an order's plan: a service order item activating one service through one adapter.

    ``depends_on`` lists the plan items that must complete first. ``key`` is the idempotency key given to
    the adapter (``<plan item id>:<action>``).
    """

    __tablename__ = "order_plan_item"
    __table_args__ = (UniqueConstraint("order_id", "position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("product_order.id", ondelete="CASCADE"), index=True)
    order_item_id: Mapped[str] = mapped_column(
        ForeignKey("product_order_item.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))  # serviceActivation
    action: Mapped[str] = mapped_column(String(20))  # add
    state: Mapped[str] = mapped_column(String(30), index=True)
    service_id: Mapped[str] = mapped_column(String(32), index=True)
    service_name: Mapped[str] = mapped_column(String(200))
    specification_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    adapter: Mapped[str] = mapped_column(String(100))
    adapter_action: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    depends_on: Mapped[list[str]] = mapped_column(JSONDoc)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    skip_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # the order item this step serves (read-only; rendered as the caller's item id)
    order_item: Mapped[ProductOrderItem] = relationship(viewonly=True)


class FalloutEntry(Base):
    """A workflow step that failed for good and waits for a person: retry, skip (with a reason) or abort."""

    __tablename__ = "fallout_entry"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(String(32), index=True)
    plan_item_id: Mapped[str] = mapped_column(String(32), index=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(100))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), index=True)  # open | retried | skipped | aborted
    resolution_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
