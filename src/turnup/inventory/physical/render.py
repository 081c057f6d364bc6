"""TMF687-style JSON documents for physical inventory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from turnup.inventory.physical.orm import (
    Allocation,
    Location,
    RackHold,
    ReplenishmentRequest,
    Reservation,
    ReservationLine,
    ReturnExpectation,
    Sku,
    StockLevel,
    StockMovement,
    StockUnit,
)
from turnup.kernel import clock
from turnup.kernel.hrefs import href, iso

API = "stock"


@dataclass(slots=True)
class ReservationRecord:
    """The columns of a ``stock_reservation`` row, without the ORM: what the PostgreSQL fast path returns
    (it writes with one statement, so building and instrumenting ORM objects would only cost time)."""

    id: str
    status: str
    expires_at: datetime
    customer_id: str | None
    quote_id: str | None
    order_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class LineRecord:
    """The columns of a ``stock_reservation_line`` row, without the ORM (see ``ReservationRecord``)."""

    id: str
    reservation_id: str
    line_no: int
    level_id: str | None
    sku_id: str | None
    location_id: str | None
    quantity: int
    serial_numbers: list[str] | None
    status: str
    expires_at: datetime


@dataclass
class LineView:
    line: ReservationLine | LineRecord
    sku_code: str
    location_code: str


@dataclass
class ReservationView:
    """A reservation with its lines (the Python API returns this): ORM rows, or plain records of the same
    columns from the fast path."""

    reservation: Reservation | ReservationRecord
    lines: list[LineView] = field(default_factory=list)
    allocation: Allocation | None = None  # the first (the one committing made)
    allocations: list[Allocation] = field(default_factory=list)  # all, once an order split it

    @property
    def id(self) -> str:
        return self.reservation.id

    @property
    def status(self) -> str:
        return effective_status(self.reservation.status, self.reservation.expires_at)


def effective_status(status: str, expires_at: datetime, now: datetime | None = None) -> str:
    """A held reservation past its expiry is expired, whether or not the sweeper has run yet."""
    if status == "held" and expires_at <= (now or clock.now()):
        return "expired"
    return status


def render_sku(s: Sku) -> dict[str, Any]:
    return {
        "id": s.id,
        "href": href(API, "sku", s.id),
        "@type": "Sku",
        "code": s.code,
        "name": s.name,
        "serialised": s.serialised,
        "unit": s.unit,
        "createdAt": iso(s.created_at),
        "lastUpdate": iso(s.updated_at),
    }


def render_location(loc: Location, parent_code: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": loc.id,
        "href": href(API, "location", loc.id),
        "@type": "StockLocation",
        "code": loc.code,
        "name": loc.name,
        "locationType": loc.location_type,
        "parentId": loc.parent_id,
        "region": loc.region,
        "siteId": loc.site_id,
        "createdAt": iso(loc.created_at),
        "lastUpdate": iso(loc.updated_at),
    }
    if parent_code is not None:
        doc["parent"] = parent_code
    if loc.location_type == "rack":
        doc.update(
            rackUnits=loc.rack_units,
            powerBudgetWatts=loc.power_budget_watts,
            powerReservedWatts=loc.power_reserved_watts,
        )
    return doc


def _qty(amount: int, unit: str) -> dict[str, Any]:
    return {"amount": amount, "units": unit}


def render_level(level: StockLevel, sku: Sku, loc: Location, expired_held: int = 0) -> dict[str, Any]:
    """``ProductStock``. ``expired_held``: quantity of expired holds the sweeper has not released yet,
    which no longer counts as reserved."""
    reserved = level.reserved - expired_held
    available = level.on_hand - reserved - level.allocated
    return {
        "id": level.id,
        "href": href(API, "productStock", level.id),
        "@type": "ProductStock",
        "name": f"{sku.code} @ {loc.code}",
        "productStockStatusType": "available" if available > 0 else "unavailable",
        "stockedProduct": {"id": sku.id, "code": sku.code, "name": sku.name, "@referredType": "Sku"},
        "place": {
            "id": loc.id,
            "code": loc.code,
            "name": loc.name,
            "region": loc.region,
            "@referredType": "StockLocation",
        },
        "stockedQuantity": _qty(level.on_hand, sku.unit),
        "reservedQuantity": _qty(reserved, sku.unit),
        "allocatedQuantity": _qty(level.allocated, sku.unit),
        "availableQuantity": _qty(available, sku.unit),
        "quarantinedQuantity": _qty(level.quarantined, sku.unit),
        "reorderPoint": level.reorder_point,
        "reorderQuantity": level.reorder_quantity,
        "leadTimeDays": level.lead_time_days,
        "lastUpdate": iso(level.updated_at),
    }


def render_reservation(view: ReservationView) -> dict[str, Any]:
    r = view.reservation
    lines: dict[int, dict[str, Any]] = {}
    for lv in sorted(view.lines, key=lambda v: (v.line.line_no, v.location_code)):
        item = lines.setdefault(
            lv.line.line_no, {"line": lv.line.line_no, "sku": lv.sku_code, "quantity": 0, "places": []}
        )
        item["quantity"] += lv.line.quantity
        place: dict[str, Any] = {
            "location": lv.location_code,
            "quantity": lv.line.quantity,
            "state": effective_status(lv.line.status, lv.line.expires_at),
        }
        if lv.line.serial_numbers:
            place["serials"] = list(lv.line.serial_numbers)
            item.setdefault("serials", []).extend(lv.line.serial_numbers)
        item["places"].append(place)
    doc: dict[str, Any] = {
        "id": r.id,
        "href": href(API, "reserveProductStock", r.id),
        "@type": "ReserveProductStock",
        "reservationState": view.status,
        "expiresAt": iso(r.expires_at),
        "customerId": r.customer_id,
        "quoteId": r.quote_id,
        "orderId": r.order_id,
        "reserveProductStockItem": [lines[k] for k in sorted(lines)],
        "createdAt": iso(r.created_at),
        "lastUpdate": iso(r.updated_at),
    }
    if view.allocation is not None:
        doc["allocation"] = render_allocation(view.allocation)
    if len(view.allocations) > 1:  # split per service and fulfilment method by the order
        doc["allocations"] = [render_allocation(a) for a in view.allocations]
    return doc


def render_allocation(a: Allocation) -> dict[str, Any]:
    return {
        "id": a.id,
        "href": href(API, "allocation", a.id),
        "@type": "StockAllocation",
        "reservationId": a.reservation_id,
        "orderId": a.order_id,
        "status": a.status,
        "fulfilmentMethod": a.fulfilment_method,
        "createdAt": iso(a.created_at),
        "lastUpdate": iso(a.updated_at),
    }


def render_unit(
    u: StockUnit, sku_code: str | None = None, location_code: str | None = None
) -> dict[str, Any]:
    return {
        "id": u.id,
        "href": href(API, "stockUnit", u.id),
        "@type": "StockUnit",
        "serial": u.serial,
        "mac": u.mac,
        "imei": u.imei,
        "skuId": u.sku_id,
        "sku": sku_code,
        "locationId": u.location_id,
        "location": location_code,
        "state": u.state,
        "orderId": u.order_id,
        "createdAt": iso(u.created_at),
        "lastUpdate": iso(u.updated_at),
    }


def render_movement(m: StockMovement) -> dict[str, Any]:
    return {
        "id": str(m.id),
        "href": href(API, "stockMovement", str(m.id)),
        "@type": "StockMovement",
        "at": iso(m.at),
        "kind": m.kind,
        "skuId": m.sku_id,
        "locationId": m.location_id,
        "onHandDelta": m.on_hand_delta,
        "reservedDelta": m.reserved_delta,
        "allocatedDelta": m.allocated_delta,
        "quarantinedDelta": m.quarantined_delta,
        "unitId": m.unit_id,
        "unitState": m.unit_state,
        "reservationId": m.reservation_id,
        "reference": m.reference,
        "reason": m.reason,
        "actor": m.actor,
    }


def render_replenishment(r: ReplenishmentRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "href": href(API, "replenishmentRequest", r.id),
        "@type": "ReplenishmentRequest",
        "productStockId": r.level_id,
        "skuId": r.sku_id,
        "locationId": r.location_id,
        "quantity": r.quantity,
        "status": r.status,
        "expectedAt": iso(r.expected_at),
        "createdAt": iso(r.created_at),
        "closedAt": iso(r.closed_at),
        "comment": r.comment,
    }


def render_rack_hold(h: RackHold) -> dict[str, Any]:
    return {
        "id": h.id,
        "href": href(API, "rackSpaceReservation", h.id),
        "@type": "RackSpaceReservation",
        "rackId": h.rack_id,
        "startU": h.start_u,
        "endU": h.start_u + h.units - 1,
        "units": h.units,
        "powerWatts": h.power_watts,
        "reservationState": effective_status(h.status, h.expires_at),
        "expiresAt": iso(h.expires_at),
        "customerId": h.customer_id,
        "quoteId": h.quote_id,
        "orderId": h.order_id,
        "createdAt": iso(h.created_at),
        "lastUpdate": iso(h.updated_at),
    }


def render_return(r: ReturnExpectation, codes: dict[str, str]) -> dict[str, Any]:
    """A CPE return expectation (RMA); ``codes`` maps location ids to codes."""
    return {
        "id": r.id,
        "href": href(API, "stockReturn", r.id),
        "@type": "StockReturn",
        "status": r.status,
        "reference": r.reference,
        "serviceId": r.service_id,
        "customerId": r.customer_id,
        "productOrderId": r.order_id,
        "fromLocation": codes.get(r.from_location_id or ""),
        "expectedAt": codes.get(r.to_location_id or ""),
        "units": [dict(u) for u in r.units],
        "condition": r.condition,
        "receivedAt": iso(r.received_at),
        "receivedBy": r.received_by,
        "createdAt": iso(r.created_at),
        "lastUpdate": iso(r.updated_at),
    }
