"""Input shapes for physical inventory (SKUs, locations, movements, reservations, rack holds)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from turnup.kernel.text import InputModel

LocationType = Literal["warehouse", "van", "store", "customer_site", "data_centre", "cage", "rack"]
Code = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/\-]*$")
# Upper bound for counts, quantities and watts: they are 32-bit INTEGER columns (SQLite would raise
# OverflowError, PostgreSQL "integer out of range"), so an absurd value is a 400 at the edge, not a 500.
MAX_INT = 10**9


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


# --- master data -----------------------------------------------------------------------------------------


class SkuCreate(Strict):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    serialised: bool = False
    unit: str = Field(default="each", min_length=1, max_length=20)


class SkuUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    unit: str | None = Field(default=None, min_length=1, max_length=20)


class LocationCreate(Strict):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    locationType: LocationType
    parent: str | None = Field(default=None, description="code of the parent location")
    region: str | None = Field(default=None, min_length=1, max_length=100)
    siteId: str | None = Field(default=None, max_length=32, description="accounts site (customer sites)")
    rackUnits: int | None = Field(default=None, gt=0, le=100)
    powerBudgetWatts: int | None = Field(default=None, ge=0, le=MAX_INT)

    @model_validator(mode="after")
    def _rack(self) -> LocationCreate:
        is_rack = self.locationType == "rack"
        if is_rack and (self.rackUnits is None or self.powerBudgetWatts is None):
            raise ValueError("a rack needs rackUnits and powerBudgetWatts")
        if not is_rack and (self.rackUnits is not None or self.powerBudgetWatts is not None):
            raise ValueError("rackUnits and powerBudgetWatts apply to racks only")
        if self.siteId is not None and self.locationType != "customer_site":
            raise ValueError("siteId applies to customer_site locations only")
        return self


class LocationUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    region: str | None = Field(default=None, min_length=1, max_length=100)


class LevelSettings(Strict):
    """Reorder policy for one SKU × location."""

    sku: str
    location: str
    reorderPoint: int | None = Field(default=None, ge=0, le=MAX_INT)
    reorderQuantity: int | None = Field(default=None, gt=0, le=MAX_INT)
    leadTimeDays: int | None = Field(default=None, ge=0, le=36_500)


# --- movements -------------------------------------------------------------------------------------------


class UnitIn(Strict):
    serial: str = Field(min_length=1, max_length=100)
    mac: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
    imei: str | None = Field(default=None, pattern=r"^[0-9]{15}$")


MovementKind = Literal[
    "receipt", "transfer", "issue", "ship", "install", "return", "refurbish", "scrap", "count_adjustment"
]


class MovementCreate(Strict):
    """One stock movement (``adjustProductStock``).

    - receipt: ``quantity`` or ``units`` arrive at ``location``;
    - transfer: ``quantity`` or ``serials`` move from ``location`` to ``toLocation`` (stay in stock);
    - issue / ship: ``quantity`` or ``serials`` leave ``location`` (issued to the van ``toLocation`` /
      shipped, optionally to ``toLocation``);
    - install: ``serials`` (shipped or issued) installed at the customer-site location ``toLocation``
      (on hand +1 each there: a customer site shows what is installed, though nothing reserves from it);
    - return: ``quantity`` or ``serials`` come back into quarantine at ``location`` (a serialised unit
      installed at a customer site also leaves that site's on hand);
    - refurbish: ``quantity`` or ``serials`` leave quarantine at ``location`` back into stock;
    - scrap: ``quantity`` or ``serials`` from quarantine (``fromQuarantine``, default true) or from stock;
    - count_adjustment: ``countedQuantity`` (cycle count) with a mandatory ``reason``.
    """

    kind: MovementKind
    sku: str = Field(min_length=1, max_length=100)
    location: str | None = Field(default=None, min_length=1, max_length=100)
    toLocation: str | None = Field(default=None, min_length=1, max_length=100)
    quantity: int | None = Field(default=None, gt=0, le=MAX_INT)
    serials: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    units: list[UnitIn] | None = Field(default=None, min_length=1, max_length=10_000)
    countedQuantity: int | None = Field(default=None, ge=0, le=MAX_INT)
    fromQuarantine: bool = True
    reference: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _shape(self) -> MovementCreate:
        given = [
            n
            for n, v in (
                ("quantity", self.quantity),
                ("serials", self.serials),
                ("units", self.units),
                ("countedQuantity", self.countedQuantity),
            )
            if v is not None
        ]
        if self.kind == "count_adjustment":
            if given != ["countedQuantity"]:
                raise ValueError("count_adjustment takes countedQuantity only")
            if not self.reason:
                raise ValueError("count_adjustment needs a reason")
        elif self.kind == "receipt":
            if len(given) != 1 or given[0] not in ("quantity", "units"):
                raise ValueError("receipt takes either quantity or units")
        elif self.kind == "install":
            if given != ["serials"]:
                raise ValueError("install takes serials")
        elif len(given) != 1 or given[0] not in ("quantity", "serials"):
            raise ValueError(f"{self.kind} takes either quantity or serials")
        if self.kind in ("transfer", "issue", "install") and not self.toLocation:
            raise ValueError(f"{self.kind} needs toLocation")
        if self.kind != "install" and not self.location:
            raise ValueError(f"{self.kind} needs location")
        for name, values in (("serials", self.serials), ("units", [u.serial for u in self.units or []])):
            if values and len(set(values)) != len(values):
                raise ValueError(f"{name}: duplicate serial numbers")
        return self


# --- reservations ----------------------------------------------------------------------------------------


class LineRequest(Strict):
    """One requested line: a SKU, a quantity or specific serials, at a location or anywhere in a region."""

    sku: str = Field(min_length=1, max_length=100)
    quantity: int | None = Field(default=None, gt=0, le=1_000_000)
    serials: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    location: str | None = Field(default=None, min_length=1, max_length=100)
    region: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _shape(self) -> LineRequest:
        if self.quantity is None and not self.serials:
            raise ValueError("give quantity or serials")
        if self.serials:
            if len(set(self.serials)) != len(self.serials):
                raise ValueError("serials: duplicate serial numbers")
            if self.quantity is not None and self.quantity != len(self.serials):
                raise ValueError("quantity must equal the number of serials")
        elif (self.location is None) == (self.region is None):
            raise ValueError("give exactly one of location or region")
        if self.location is not None and self.region is not None:
            raise ValueError("give exactly one of location or region")
        return self

    @property
    def wanted(self) -> int:
        return len(self.serials) if self.serials else int(self.quantity or 0)


class ReservationCreate(Strict):
    lines: list[LineRequest] = Field(alias="reserveProductStockItem", min_length=1, max_length=200)
    expiresAt: AwareDatetime
    customerId: str | None = Field(default=None, max_length=32)
    quoteId: str | None = Field(default=None, max_length=100)


class ReservationUpdate(Strict):
    """PATCH: ``expiresAt`` extends; ``reservationState`` ``cancelled`` releases, ``committed`` commits."""

    expiresAt: AwareDatetime | None = None
    reservationState: Literal["cancelled", "committed"] | None = None
    orderId: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one(self) -> ReservationUpdate:
        if (self.expiresAt is None) == (self.reservationState is None):
            raise ValueError("give exactly one of expiresAt or reservationState")
        if self.reservationState == "committed" and not self.orderId:
            raise ValueError("committing needs orderId")
        return self


class AvailabilityRequest(Strict):
    lines: list[LineRequest] = Field(alias="checkProductStockItem", min_length=1, max_length=200)


class StockQuery(Strict):
    """``queryProductStock``: levels by SKU codes, location codes and/or region."""

    skus: list[str] | None = Field(default=None, max_length=1000)
    locations: list[str] | None = Field(default=None, max_length=1000)
    region: str | None = None
    onlyAvailable: bool = False


class AllocationDispatch(Strict):
    """Ship (optionally to a customer-site location) or issue (to a van) a whole allocation."""

    kind: Literal["ship", "issue"]
    toLocation: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _van(self) -> AllocationDispatch:
        if self.kind == "issue" and not self.toLocation:
            raise ValueError("issue needs toLocation (a van)")
        return self


# --- rack space ------------------------------------------------------------------------------------------


class RackHoldCreate(Strict):
    rack: str = Field(min_length=1, max_length=100, description="rack location code")
    units: int = Field(gt=0, le=100)
    powerWatts: int = Field(ge=0, le=MAX_INT)
    startU: int | None = Field(
        default=None, ge=1, le=100, description="a specific position; lowest free otherwise"
    )
    expiresAt: AwareDatetime
    customerId: str | None = Field(default=None, max_length=32)
    quoteId: str | None = Field(default=None, max_length=100)


class RackHoldUpdate(ReservationUpdate):
    pass


class ReturnReceipt(Strict):
    """Units of a CPE return arrive: at ``location`` (code; default the stock location they are expected
    at), as ``returned`` (quarantined for inspection) or ``refurbished`` (back into available stock)."""

    location: str | None = Field(default=None, min_length=1, max_length=100)
    condition: Literal["returned", "refurbished"] = "returned"
