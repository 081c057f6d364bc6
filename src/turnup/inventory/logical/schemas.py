"""Input shapes for logical inventory: pools, allocations, numbers, reservations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from turnup.kernel.text import InputModel

PoolType = Literal["ipAggregate", "ipPool", "ipSubnet", "vlanPool", "asnPool", "identifierPool"]
Policy = Literal["best-fit", "first-fit"]
ResourceKind = Literal["ipPrefix", "ipAddress", "vlan", "asn", "identifier", "telephoneNumber"]
NumberStatus = Literal[
    "available", "reserved", "assigned", "aging", "port_in_pending", "ported_out", "disconnected"
]


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class PoolCreate(Strict):
    poolType: PoolType
    name: str = Field(min_length=1, max_length=200)
    routingDomain: str = Field(default="default", min_length=1, max_length=100)
    prefix: str | None = Field(default=None, max_length=50)
    parentId: str | None = Field(default=None, max_length=32)
    prefixLength: int | None = Field(default=None, ge=0, le=128)
    fromResourceId: str | None = Field(default=None, max_length=32)
    start: int | None = None
    end: int | None = None
    purpose: str | None = Field(default=None, max_length=100)
    site: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=500)
    allocationPolicy: Policy | None = None
    quarantineSeconds: int = Field(default=0, ge=0, le=10 * 366 * 86400)
    template: str | None = Field(default=None, max_length=200)


class PoolUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    purpose: str | None = Field(default=None, max_length=100)
    site: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=500)
    allocationPolicy: Policy | None = None
    quarantineSeconds: int | None = Field(default=None, ge=0, le=10 * 366 * 86400)


class AllocationRequest(Strict):
    """Next free block of ``prefixLength`` (IP), a specific ``prefix``/address or ``value``, or the next
    single address/id when nothing is given. ``reservedUntil`` reserves instead of allocating."""

    prefixLength: int | None = Field(default=None, ge=0, le=128)
    prefix: str | None = Field(default=None, max_length=50)
    value: int | None = None
    allocationPolicy: Policy | None = None
    serviceId: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    reservedUntil: datetime | None = None


class NumberClassCreate(Strict):
    name: str = Field(min_length=1, max_length=50, pattern=r"^[a-z][a-z0-9_-]*$")
    agingDays: int = Field(ge=45, le=3650)
    description: str | None = Field(default=None, max_length=500)


class NumberClassUpdate(Strict):
    agingDays: int | None = Field(default=None, ge=45, le=3650)
    description: str | None = Field(default=None, max_length=500)


class NumberImport(Strict):
    """A range ``start``..``end`` (inclusive) or one thousands-block (``thousandsBlock``: every digit but the
    last three). National input needs ``country`` (the default region)."""

    start: str | None = Field(default=None, max_length=40)
    end: str | None = Field(default=None, max_length=40)
    thousandsBlock: str | None = Field(default=None, max_length=40)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    numberClass: str = Field(default="residential", max_length=50)
    status: Literal["available", "port_in_pending"] = "available"


class NumberUpdate(Strict):
    status: NumberStatus | None = None
    serviceId: str | None = Field(default=None, max_length=100)


class NumberSearch(Strict):
    country: str | None = Field(default=None, min_length=2, max_length=2)
    area: str | None = Field(default=None, max_length=10)
    blockId: str | None = Field(default=None, max_length=32)
    prefix: str | None = Field(default=None, max_length=20)
    pattern: str | None = Field(default=None, max_length=30)
    minRepeat: int | None = Field(default=None, ge=2, le=7)
    golden: bool | None = None
    status: NumberStatus = "available"
    limit: int = Field(default=20, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=100000)


class ReservationItemIn(Strict):
    resourceType: ResourceKind
    poolId: str | None = Field(default=None, max_length=32)
    prefixLength: int | None = Field(default=None, ge=0, le=128)
    prefix: str | None = Field(default=None, max_length=50)
    value: int | None = None
    allocationPolicy: Policy | None = None
    number: str | None = Field(default=None, max_length=40)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    pattern: str | None = Field(default=None, max_length=30)


class ValidFor(Strict):
    startDateTime: datetime | None = None
    endDateTime: datetime


class ReservationCreate(Strict):
    reservationItem: list[ReservationItemIn] = Field(min_length=1, max_length=200)
    validFor: ValidFor
    description: str | None = Field(default=None, max_length=500)
    relatedParty: str | None = Field(default=None, max_length=200)


class ReservationUpdate(Strict):
    reservationState: Literal["committed", "released"] | None = None
    validFor: ValidFor | None = None
    serviceId: str | None = Field(default=None, max_length=100)
