"""Product catalog (TMF620): categories, product specifications, offerings, offering prices.

Nested blocks (delivery requirements, tiers, discount rules, revenue recognition, reporting attributes,
channels) are JSON documents whose shape is enforced by ``turnup.catalog.schemas``; money inside them is
stored as decimal strings, never floats. Links between entities are association rows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from turnup.kernel.db import Base, JSONDoc, Money, UTCDateTime
from turnup.kernel.ids import new_id

LIFECYCLE_CHECK = "lifecycle_status IN ('inDesign', 'active', 'retired')"


class Category(Base):
    __tablename__ = "catalog_category"
    __table_args__ = (CheckConstraint(LIFECYCLE_CHECK, name="lifecycle"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("catalog_category.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    is_root: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[str] = mapped_column(String(20))
    lifecycle_status: Mapped[str] = mapped_column(String(20), index=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProductSpecification(Base):
    __tablename__ = "catalog_product_specification"
    __table_args__ = (
        CheckConstraint(LIFECYCLE_CHECK, name="lifecycle"),
        UniqueConstraint("name", "version", name="uq_catalog_product_specification_name_version"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    brand: Mapped[str | None] = mapped_column(String(100), nullable=True)
    product_number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    version: Mapped[str] = mapped_column(String(20))
    lifecycle_status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivery_requirements: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    # TMF620 productSpecCharacteristic: what a product of this specification may carry (name, valueType,
    # allowed values / ranges); ``None`` (older rows) means none defined
    characteristics: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc, nullable=True)
    revenue_recognition: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    reporting_attributes: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    eccn: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    channels: Mapped[list[str]] = mapped_column(JSONDoc)
    superseded_by_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProductOfferingPrice(Base):
    __tablename__ = "catalog_product_offering_price"
    __table_args__ = (
        CheckConstraint(LIFECYCLE_CHECK, name="lifecycle"),
        CheckConstraint("price_type IN ('recurring', 'oneTime', 'usage')", name="price_type"),
        CheckConstraint("amount >= 0", name="amount"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[str] = mapped_column(String(20))
    lifecycle_status: Mapped[str] = mapped_column(String(20), index=True)
    price_type: Mapped[str] = mapped_column(String(20), index=True)
    recurring_period_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    recurring_period_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)
    unit_of_measure: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    tiers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc, nullable=True)
    # TMF620 prodSpecCharValueUse: the price applies only to products whose characteristics take these values
    char_value_use: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc, nullable=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProductOffering(Base):
    __tablename__ = "catalog_product_offering"
    __table_args__ = (
        CheckConstraint(LIFECYCLE_CHECK, name="lifecycle"),
        UniqueConstraint("name", "version", name="uq_catalog_product_offering_name_version"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[str] = mapped_column(String(20))
    lifecycle_status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    is_bundle: Mapped[bool] = mapped_column(Boolean, default=False)
    is_sellable: Mapped[bool] = mapped_column(Boolean, default=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    channels: Mapped[list[str]] = mapped_column(JSONDoc)
    revenue_recognition: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    reporting_attributes: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    eccn: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    discount_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    superseded_by_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    spec_links: Mapped[list[OfferingSpecification]] = relationship(
        order_by="OfferingSpecification.position", cascade="all, delete-orphan", lazy="selectin"
    )
    price_links: Mapped[list[OfferingPrice]] = relationship(
        order_by="OfferingPrice.position", cascade="all, delete-orphan", lazy="selectin"
    )
    category_links: Mapped[list[OfferingCategory]] = relationship(
        order_by="OfferingCategory.position", cascade="all, delete-orphan", lazy="selectin"
    )
    bundle_links: Mapped[list[BundledOffering]] = relationship(
        order_by="BundledOffering.position",
        cascade="all, delete-orphan",
        lazy="selectin",
        foreign_keys="BundledOffering.bundle_id",
    )


class OfferingSpecification(Base):
    __tablename__ = "catalog_offering_specification"

    offering_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_product_offering.id", ondelete="CASCADE"), primary_key=True
    )
    specification_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_product_specification.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)

    specification: Mapped[ProductSpecification] = relationship(lazy="joined")


class OfferingPrice(Base):
    __tablename__ = "catalog_offering_price"

    offering_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_product_offering.id", ondelete="CASCADE"), primary_key=True
    )
    price_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_product_offering_price.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)

    price: Mapped[ProductOfferingPrice] = relationship(lazy="joined")


class OfferingCategory(Base):
    __tablename__ = "catalog_offering_category"

    offering_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_product_offering.id", ondelete="CASCADE"), primary_key=True
    )
    category_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_category.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)

    category: Mapped[Category] = relationship(lazy="joined")


class BundledOffering(Base):
    __tablename__ = "catalog_bundled_offering"

    bundle_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_product_offering.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_product_offering.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)

    member: Mapped[ProductOffering] = relationship(foreign_keys=[member_id], lazy="joined")


CATALOG_TABLES = (
    Category,
    ProductSpecification,
    ProductOfferingPrice,
    ProductOffering,
    OfferingSpecification,
    OfferingPrice,
    OfferingCategory,
    BundledOffering,
)
