"""Physical inventory tables.

Invariants the database itself enforces (both SQLite and PostgreSQL):

- a SKU code, a location code and a serial number per SKU are unique; MAC and IMEI are unique;
- ``stock_level`` (one row per SKU × location) never goes negative and never promises more than it holds:
  ``reserved + allocated <= on_hand`` (CHECK);
- a serialised unit is held by at most one reservation line or allocation: the single column
  ``stock_unit.hold_line_id``, set exactly when the unit is ``reserved`` or ``allocated`` (CHECK);
- a rack unit (U) is in at most one live rack hold (unique partial index) and a rack's reserved power never
  exceeds its budget (CHECK);
- at most one open replenishment request per SKU × location (unique partial index).

``stock_movement`` is the immutable ledger: every change of on-hand / reserved / allocated / quarantined
quantities is one row with the deltas; ``stock_level`` is its running total, updated in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from turnup.kernel.db import Base, JSONDoc, UTCDateTime
from turnup.kernel.ids import new_id

LOCATION_TYPES = ("warehouse", "van", "store", "customer_site", "data_centre", "cage", "rack")
UNIT_STATES = ("in_stock", "reserved", "allocated", "shipped", "issued", "installed", "returned", "scrapped")
MOVEMENT_KINDS = (
    "receipt",
    "transfer",
    "issue",
    "reserve",
    "release",
    "commit",
    "cancel",
    "ship",
    "install",
    "return",
    "refurbish",
    "scrap",
    "count_adjustment",
)
RESERVATION_STATES = ("held", "committed", "released", "expired")
LINE_STATES = ("held", "committed", "released", "expired")
ALLOCATION_STATES = ("active", "shipped", "issued", "cancelled")

LedgerId = BigInteger().with_variant(Integer, "sqlite")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Sku(Base):
    """The physical SKU master; catalog specifications refer to SKUs by ``code``."""

    __tablename__ = "stock_sku"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    serialised: Mapped[bool] = mapped_column(Boolean, default=False)
    unit: Mapped[str] = mapped_column(String(20), default="each")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Location(Base):
    """A node of the location tree. Racks carry a height in rack units and a power budget."""

    __tablename__ = "stock_location"
    __table_args__ = (
        CheckConstraint(_in("location_type", LOCATION_TYPES), name="location_type"),
        CheckConstraint(
            "(location_type = 'rack') = (rack_units IS NOT NULL AND power_budget_watts IS NOT NULL)",
            name="rack_dimensions",
        ),
        CheckConstraint("rack_units IS NULL OR rack_units > 0", name="rack_units"),
        CheckConstraint("power_budget_watts IS NULL OR power_budget_watts >= 0", name="power_budget"),
        CheckConstraint(
            "power_reserved_watts >= 0 AND (power_budget_watts IS NULL "
            "OR power_reserved_watts <= power_budget_watts)",
            name="power_reserved",
        ),
        CheckConstraint("site_id IS NULL OR location_type = 'customer_site'", name="site_only_customer"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    location_type: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("stock_location.id"), nullable=True, index=True)
    region: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("site.id"), nullable=True, index=True)
    rack_units: Mapped[int | None] = mapped_column(Integer, nullable=True)
    power_budget_watts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    power_reserved_watts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StockLevel(Base):
    """Running totals of the ledger for one SKU × location; the row reservations lock."""

    __tablename__ = "stock_level"
    __table_args__ = (
        UniqueConstraint("sku_id", "location_id"),
        CheckConstraint("on_hand >= 0", name="on_hand"),
        CheckConstraint("reserved >= 0", name="reserved"),
        CheckConstraint("allocated >= 0", name="allocated"),
        CheckConstraint("quarantined >= 0", name="quarantined"),
        CheckConstraint("reserved + allocated <= on_hand", name="no_oversell"),
        CheckConstraint("reorder_point IS NULL OR reorder_point >= 0", name="reorder_point"),
        CheckConstraint("reorder_quantity IS NULL OR reorder_quantity > 0", name="reorder_quantity"),
        CheckConstraint("lead_time_days IS NULL OR lead_time_days >= 0", name="lead_time"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sku_id: Mapped[str] = mapped_column(ForeignKey("stock_sku.id"), index=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("stock_location.id"), index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    allocated: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    reorder_point: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reorder_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lead_time_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StockMovement(Base):
    """One immutable ledger entry. Serialised movements name the unit (one row per unit)."""

    __tablename__ = "stock_movement"
    __table_args__ = (
        CheckConstraint(_in("kind", MOVEMENT_KINDS), name="kind"),
        Index("ix_stock_movement_sku_location", "sku_id", "location_id"),
    )

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(20))
    sku_id: Mapped[str] = mapped_column(ForeignKey("stock_sku.id"))
    location_id: Mapped[str | None] = mapped_column(ForeignKey("stock_location.id"), nullable=True)
    on_hand_delta: Mapped[int] = mapped_column(Integer, default=0)
    reserved_delta: Mapped[int] = mapped_column(Integer, default=0)
    allocated_delta: Mapped[int] = mapped_column(Integer, default=0)
    quarantined_delta: Mapped[int] = mapped_column(Integer, default=0)
    unit_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    unit_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    reservation_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))


class StockUnit(Base):
    """A serialised unit. ``hold_line_id`` is the one reservation line or allocation holding it."""

    __tablename__ = "stock_unit"
    __table_args__ = (
        UniqueConstraint("sku_id", "serial"),
        CheckConstraint(_in("state", UNIT_STATES), name="state"),
        CheckConstraint("(hold_line_id IS NOT NULL) = (state IN ('reserved', 'allocated'))", name="hold"),
        CheckConstraint("location_id IS NOT NULL OR state IN ('shipped', 'scrapped')", name="located"),
        Index("ix_stock_unit_pick", "sku_id", "location_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sku_id: Mapped[str] = mapped_column(ForeignKey("stock_sku.id"))
    serial: Mapped[str] = mapped_column(String(100))
    mac: Mapped[str | None] = mapped_column(String(17), nullable=True, unique=True)
    imei: Mapped[str | None] = mapped_column(String(15), nullable=True, unique=True)
    location_id: Mapped[str | None] = mapped_column(ForeignKey("stock_location.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(20))
    hold_line_id: Mapped[str | None] = mapped_column(
        ForeignKey("stock_reservation_line.id"), nullable=True, index=True
    )
    order_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Reservation(Base):
    """A quote-time hold over several lines, all or nothing, until ``expires_at``."""

    __tablename__ = "stock_reservation"
    __table_args__ = (
        CheckConstraint(_in("status", RESERVATION_STATES), name="status"),
        Index(
            "ix_stock_reservation_due",
            "expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(20), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customer.id"), nullable=True, index=True)
    quote_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    order_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReservationLine(Base):
    """The part of a request line held at one SKU × location (a region line may span several)."""

    __tablename__ = "stock_reservation_line"
    __table_args__ = (
        CheckConstraint(_in("status", LINE_STATES), name="status"),
        CheckConstraint("quantity > 0", name="quantity"),
        Index(
            "ix_stock_reservation_line_live",
            "level_id",
            "expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("stock_reservation.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    level_id: Mapped[str] = mapped_column(ForeignKey("stock_level.id"))
    sku_id: Mapped[str] = mapped_column(ForeignKey("stock_sku.id"))
    location_id: Mapped[str] = mapped_column(ForeignKey("stock_location.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    serial_numbers: Mapped[list[str] | None] = mapped_column(JSONDoc, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the allocation holding the line once committed (an order's allocation may be split per service and
    # fulfilment method: ``assignment.allocate_lines``)
    allocation_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)


class Allocation(Base):
    """Committed stock set aside for an order until shipped, issued or cancelled: the lines of a reservation
    it holds (``ReservationLine.allocation_id``). Committing a reservation makes one allocation of all its
    lines; an order splits it per service and fulfilment method (technician, ship, pickup)."""

    __tablename__ = "stock_allocation"
    __table_args__ = (CheckConstraint(_in("status", ALLOCATION_STATES), name="status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("stock_reservation.id"), index=True)
    order_id: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20))
    fulfilment_method: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RackHold(Base):
    """Contiguous rack units ``start_u .. start_u + units - 1`` and a power draw in a rack."""

    __tablename__ = "stock_rack_hold"
    __table_args__ = (
        CheckConstraint(_in("status", RESERVATION_STATES), name="status"),
        CheckConstraint("start_u >= 1 AND units >= 1", name="units"),
        CheckConstraint("power_watts >= 0", name="power"),
        Index(
            "ix_stock_rack_hold_due",
            "expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    rack_id: Mapped[str] = mapped_column(ForeignKey("stock_location.id"), index=True)
    start_u: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer)
    power_watts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customer.id"), nullable=True)
    quote_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RackUnitHold(Base):
    """One occupied U of a rack; ``active`` while its hold is held or committed."""

    __tablename__ = "stock_rack_unit"
    __table_args__ = (
        CheckConstraint("u >= 1", name="u"),
        Index(
            "uq_stock_rack_unit_live",
            "rack_id",
            "u",
            unique=True,
            postgresql_where=text("active"),
            sqlite_where=text("active"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    hold_id: Mapped[str] = mapped_column(ForeignKey("stock_rack_hold.id"), index=True)
    rack_id: Mapped[str] = mapped_column(ForeignKey("stock_location.id"))
    u: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean)


class ReplenishmentRequest(Base):
    """Raised when available stock falls below the reorder point; closed by a receipt."""

    __tablename__ = "stock_replenishment_request"
    __table_args__ = (
        CheckConstraint(_in("status", ("open", "closed", "cancelled")), name="status"),
        CheckConstraint("quantity > 0", name="quantity"),
        Index(
            "uq_stock_replenishment_open",
            "level_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    level_id: Mapped[str] = mapped_column(ForeignKey("stock_level.id"), index=True)
    sku_id: Mapped[str] = mapped_column(ForeignKey("stock_sku.id"))
    location_id: Mapped[str] = mapped_column(ForeignKey("stock_location.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    expected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


HANDOVER_METHODS = ("technician", "ship", "pickup")
RETURN_STATES = ("open", "received", "cancelled")


class Handover(Base):
    """One allocation line handed over to the customer (technician fitted it, shipment delivered, customer
    picked it up). The unique ``line_id`` makes a hand-over happen at most once; an allocation whose
    committed lines are all handed over is dispatched (``issued``/``shipped``)."""

    __tablename__ = "stock_handover"
    __table_args__ = (CheckConstraint(_in("method", HANDOVER_METHODS), name="method"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    allocation_id: Mapped[str] = mapped_column(ForeignKey("stock_allocation.id"), index=True)
    line_id: Mapped[str] = mapped_column(ForeignKey("stock_reservation_line.id"), unique=True)
    method: Mapped[str] = mapped_column(String(20))
    location_id: Mapped[str] = mapped_column(ForeignKey("stock_location.id"))
    order_id: Mapped[str] = mapped_column(String(100))
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    unit_ids: Mapped[list[str] | None] = mapped_column(JSONDoc, nullable=True)  # the serialised units moved


class ReturnExpectation(Base):
    """A CPE return (RMA): serialised units expected back from a customer site at a stock location.

    ``units`` lists ``{"unitId", "serial", "sku", "origin"}`` (origin: the stock location code they left).
    ``source_event_id`` (unique) ties it to the ``CpeReturnRequestedEvent`` that asked for it."""

    __tablename__ = "stock_return_expectation"
    __table_args__ = (CheckConstraint(_in("status", RETURN_STATES), name="status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(20), index=True)
    source_event_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    service_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    customer_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    order_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    from_location_id: Mapped[str | None] = mapped_column(ForeignKey("stock_location.id"), nullable=True)
    to_location_id: Mapped[str | None] = mapped_column(ForeignKey("stock_location.id"), nullable=True)
    units: Mapped[list[dict[str, str]]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    condition: Mapped[str | None] = mapped_column(String(20), nullable=True)
