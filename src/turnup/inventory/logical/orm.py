"""Logical inventory tables.

- ``logical_space``: a range of IP addresses, VLAN ids, ASNs or sequence numbers: a routing-domain root,
  an IP aggregate, a pool, a subnet, a VLAN/ASN pool or an identifier pool.
- ``logical_block``: the space's *chain*: aligned power-of-two blocks that partition ``[lo, hi)``, each
  linking to the next through ``hi`` (see docs/adr/0002-ipam-allocation.md). The database enforces the
  partition: unique ``(space, lo)``, unique ``(space, hi)``, ``hi > lo`` and a deferred foreign key from
  ``(space, hi)`` to ``(space, lo)`` ending at one ``end`` sentinel. Together these admit no overlap.
- telephone numbers, number classes (aging), thousands-blocks.
- resource reservations (the one reservation API for every logical resource).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from turnup.inventory.logical.codec import hexkey
from turnup.kernel.db import Base, UTCDateTime
from turnup.kernel.ids import new_id

# Fixed-width hex keys and digit strings compare bytewise: "C" collation on PostgreSQL, BINARY on SQLite.
HexKey = String(33).with_variant(String(33, collation="C"), "postgresql")
Digits = String(20).with_variant(String(20, collation="C"), "postgresql")

RESOURCE_TYPES = ("ipv4", "ipv6", "vlan", "asn", "identifier")
ROLES = ("root", "aggregate", "pool", "subnet")
BLOCK_STATES = ("free", "reserved", "allocated", "quarantine", "container", "system", "end")
NUMBER_STATES = (
    "available",
    "reserved",
    "assigned",
    "aging",
    "port_in_pending",
    "ported_out",
    "disconnected",
)
RESERVATION_STATES = ("reserved", "committed", "released")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LogicalSpace(Base):
    __tablename__ = "logical_space"
    __table_args__ = (
        CheckConstraint(_in("resource_type", RESOURCE_TYPES), name="resource_type"),
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint("policy IN ('best-fit', 'first-fit')", name="policy"),
        CheckConstraint("quarantine_seconds >= 0", name="quarantine_seconds"),
        CheckConstraint("hi > lo", name="range"),
        CheckConstraint(
            f"resource_type <> 'vlan' OR (lo >= '{hexkey(1)}' AND hi <= '{hexkey(4095)}')", name="vlan_range"
        ),
        CheckConstraint(
            f"resource_type <> 'asn' OR (lo >= '{hexkey(1)}' AND hi <= '{hexkey(4294967295)}')",
            name="asn_range",
        ),
        CheckConstraint(f"resource_type <> 'ipv4' OR hi <= '{hexkey(1 << 32)}'", name="ipv4_range"),
        CheckConstraint(
            "(role = 'root' AND parent_id IS NULL) OR (role <> 'root' AND parent_id IS NOT NULL)"
            " OR resource_type = 'identifier'",
            name="parent",
        ),
        UniqueConstraint("resource_type", "domain", "name"),
        Index(
            "uq_logical_space_root",
            "resource_type",
            "domain",
            unique=True,
            postgresql_where=text("role = 'root'"),
            sqlite_where=text("role = 'root'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    resource_type: Mapped[str] = mapped_column(String(12))
    role: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(100))  # routing domain (VRF) / VLAN domain / "global"
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("logical_space.id"), nullable=True, index=True)
    lo: Mapped[str] = mapped_column(HexKey)
    hi: Mapped[str] = mapped_column(HexKey)  # exclusive
    prefix: Mapped[str | None] = mapped_column(String(50), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(100), nullable=True)
    site: Mapped[str | None] = mapped_column(String(200), nullable=True)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    policy: Mapped[str] = mapped_column(String(10))
    quarantine_seconds: Mapped[int] = mapped_column(Integer, default=0)
    template: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LogicalBlock(Base):
    __tablename__ = "logical_block"
    __table_args__ = (
        UniqueConstraint("space_id", "lo"),
        UniqueConstraint("space_id", "hi"),
        ForeignKeyConstraint(
            ["space_id", "hi"],
            ["logical_block.space_id", "logical_block.lo"],
            name="fk_logical_block_chain",
            deferrable=True,
            initially="DEFERRED",
        ),
        CheckConstraint(_in("state", BLOCK_STATES), name="state"),
        CheckConstraint(
            "(state = 'end' AND hi IS NULL AND k IS NULL)"
            " OR (state <> 'end' AND hi > lo AND k >= 0 AND k <= 128)",
            name="chain",
        ),
        CheckConstraint("state <> 'quarantine' OR until IS NOT NULL", name="quarantine_until"),
        Index(
            "ix_logical_block_free_fit",
            "space_id",
            "k",
            "lo",
            postgresql_where=text("state = 'free'"),
            sqlite_where=text("state = 'free'"),
        ),
        Index(
            "ix_logical_block_free_first",
            "space_id",
            "lo",
            postgresql_where=text("state = 'free'"),
            sqlite_where=text("state = 'free'"),
        ),
        Index("ix_logical_block_due", "space_id", "state", "until"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    space_id: Mapped[str] = mapped_column(ForeignKey("logical_space.id", ondelete="CASCADE"))
    lo: Mapped[str] = mapped_column(HexKey)
    hi: Mapped[str | None] = mapped_column(HexKey, nullable=True)  # NULL only on the end sentinel
    k: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)  # size is 2**k
    state: Mapped[str] = mapped_column(String(12))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    child_space_id: Mapped[str | None] = mapped_column(
        ForeignKey("logical_space.id"), nullable=True, index=True
    )
    reservation_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    service_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    allocated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    space: Mapped[LogicalSpace] = relationship(foreign_keys=[space_id], lazy="joined")


class NumberClass(Base):
    """Aging period per class of number (residential 90 days, business 365; never below 45)."""

    __tablename__ = "number_class"
    __table_args__ = (CheckConstraint("aging_days >= 45", name="aging_days"),)

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    aging_days: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NumberBlock(Base):
    """A thousands-block: every number sharing the E.164 digits but the last three."""

    __tablename__ = "number_block"
    __table_args__ = (CheckConstraint("size >= 0 AND size <= 1000", name="size"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    prefix: Mapped[str] = mapped_column(Digits, unique=True)
    region: Mapped[str] = mapped_column(String(2), index=True)
    number_class: Mapped[str] = mapped_column(ForeignKey("number_class.name"))
    size: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TelephoneNumber(Base):
    __tablename__ = "telephone_number"
    __table_args__ = (
        CheckConstraint(_in("state", NUMBER_STATES), name="state"),
        CheckConstraint("state NOT IN ('aging') OR until IS NOT NULL", name="aging_until"),
        CheckConstraint("length(digits) >= 7 AND length(digits) <= 15", name="e164_length"),
        Index("ix_telephone_number_due", "state", "until"),
        Index("ix_telephone_number_run", "max_run", "digits"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    digits: Mapped[str] = mapped_column(Digits, unique=True)  # E.164 without '+'
    rdigits: Mapped[str] = mapped_column(Digits, index=True)  # reversed, for suffix (vanity) search
    region: Mapped[str] = mapped_column(String(2))
    block_id: Mapped[str] = mapped_column(ForeignKey("number_block.id"), index=True)
    number_class: Mapped[str] = mapped_column(ForeignKey("number_class.name"))
    state: Mapped[str] = mapped_column(String(20))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reservation_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    service_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    max_run: Mapped[int] = mapped_column(SmallInteger)
    golden: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ResourceReservation(Base):
    __tablename__ = "resource_reservation"
    __table_args__ = (CheckConstraint(_in("state", RESERVATION_STATES), name="state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    state: Mapped[str] = mapped_column(String(12), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    related_party: Mapped[str | None] = mapped_column(String(200), nullable=True)
    service_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    items: Mapped[list[ResourceReservationItem]] = relationship(
        order_by="ResourceReservationItem.line_no", lazy="selectin", cascade="all, delete-orphan"
    )


class ResourceReservationItem(Base):
    __tablename__ = "resource_reservation_item"
    __table_args__ = (UniqueConstraint("reservation_id", "line_no"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("resource_reservation.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    resource_type: Mapped[str] = mapped_column(String(20))
    space_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    block_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    number_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    value: Mapped[str] = mapped_column(String(100))
