"""Input shapes for product orders (TMF622, the subset Turnup accepts today)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

from turnup.kernel.text import InputModel


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class OfferingRef(Strict):
    id: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, max_length=200)


class PartyRef(Strict):
    id: str = Field(min_length=1, max_length=32)
    role: Literal["customer"] = "customer"
    name: str | None = Field(default=None, max_length=200)
    referredType: str | None = Field(default=None, alias="@referredType")


class CharacteristicIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    value: str | int | float | bool | None = None


class PlaceRef(Strict):
    """TMF622 RelatedPlaceRefOrValue: the geographic site (TMF674) where the product is installed."""

    id: str = Field(min_length=1, max_length=32)
    role: str = Field(default="installationAddress", max_length=50)
    referredType: str | None = Field(default=None, alias="@referredType")


class ProductRef(Strict):
    """The existing product a modify/delete item changes: ``id`` is a TMF637 product id (a product realised
    by one service) or the TMF638 service id itself.

    ``status`` (TMF622 ProductStatusType) is how an order suspends or resumes: ``action: modify`` with
    ``status: suspended`` suspends, with ``status: active`` (on a suspended product) resumes.
    ``productCharacteristic`` is the change of a plain modify (e.g. bandwidth, seats).

    ``place`` (one site): on an ``add`` item (no ``id``) where the new product is installed; on a ``modify``
    item a *move* to that site.
    """

    id: str | None = Field(default=None, min_length=1, max_length=32)  # required for modify / delete
    status: Literal["active", "suspended"] | None = None
    productCharacteristic: list[CharacteristicIn] = Field(default_factory=list, max_length=50)
    place: list[PlaceRef] = Field(default_factory=list, max_length=1)


class OrderItemCreate(Strict):
    id: str = Field(min_length=1, max_length=50)
    action: Literal["add", "modify", "delete", "noChange"] = "add"
    quantity: int = Field(default=1, ge=1, le=100)
    productOffering: OfferingRef | None = None  # required for add
    product: ProductRef | None = None  # required for modify / delete


class ReservationLineTarget(Strict):
    """Which component needs a line of a reservation: the order item, the unit of it (1-based) and the
    service specification. The order assigns the line to the service delivering that component."""

    line: int = Field(ge=0)  # the reservation's line number (its request line)
    productOrderItem: str = Field(min_length=1, max_length=50)  # an item id of this order
    unit: int = Field(default=1, ge=1, le=100)
    specification: str = Field(min_length=1, max_length=32)  # service specification id
    fulfilmentMethod: Literal["technician", "ship", "pickup"] | None = None  # stock lines


class ReservationRef(Strict):
    """A committed inventory reservation the order carries (stock or logical resources). With ``line``
    targets, each line goes to the service of the component that needs it; without, everything goes to the
    order's first new service."""

    id: str = Field(min_length=1, max_length=32)
    referredType: Literal["ReserveProductStock", "ResourceReservation"] = Field(alias="@referredType")
    line: list[ReservationLineTarget] = Field(default_factory=list, max_length=1000)


class ProductOrderCreate(Strict):
    externalId: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    priority: int = Field(default=4, ge=0, le=9)
    requestedCompletionDate: AwareDatetime | None = None
    relatedParty: list[PartyRef] = Field(min_length=1, max_length=5)
    productOrderItem: list[OrderItemCreate] = Field(min_length=1, max_length=50)
    # references set when an accepted quote creates the order (turnup.quoting)
    quote: list[OfferingRef] = Field(default_factory=list, max_length=1)
    agreement: list[OfferingRef] = Field(default_factory=list, max_length=5)
    reservation: list[ReservationRef] = Field(default_factory=list, max_length=10)


class CancelProductOrderCreate(Strict):
    productOrder: OfferingRef  # {id}
    cancellationReason: str | None = Field(default=None, max_length=500)
    requestedCancellationDate: datetime | None = None


class FalloutDecision(Strict):
    reason: str | None = Field(default=None, max_length=500)


class OrderEventCreate(Strict):
    """An outside event a waiting plan item needs (field work done, shipment delivered, milestone
    accepted)."""

    eventType: str = Field(min_length=1, max_length=100)  # technicianCompleted | shipmentDelivered | …
    planItemId: str | None = Field(default=None, max_length=32)  # which item, when several await one type
    reference: str | None = Field(default=None, max_length=200)  # job / tracking number
    note: str | None = Field(default=None, max_length=1000)
