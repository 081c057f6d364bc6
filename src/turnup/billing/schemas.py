"""Input shapes for billing: TMF666 billing accounts, manual charges (TMF678), bill runs, tax rates."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from turnup.kernel.text import InputModel

_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class Ref(Strict):
    id: str = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=50)


class Amount(Strict):
    unit: str = Field(min_length=3, max_length=3)
    value: Decimal = Field(max_digits=14, decimal_places=2)


Currency = Field(default="GBP", min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")


class BillingAccountCreate(Strict):
    id: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    relatedParty: list[Ref] = Field(min_length=1, max_length=1)
    billCycleDay: int = Field(default=1, ge=1, le=28)
    currency: str = Currency
    paymentTermsDays: int = Field(default=30, ge=0, le=365)
    billToContact: Ref | None = None
    state: Literal["active", "suspended"] = "active"


class BillingAccountUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    billCycleDay: int | None = Field(default=None, ge=1, le=28)
    paymentTermsDays: int | None = Field(default=None, ge=0, le=365)
    billToContact: Ref | None = None
    state: Literal["active", "suspended", "closed"] | None = None


class ChargeCreate(Strict):
    """A charge from outside the delivery flow (a PSA milestone, time and materials, a goodwill credit)."""

    type: Literal["oneTime", "credit"] = "oneTime"
    name: str = Field(min_length=1, max_length=200)
    billingAccount: Ref
    service: Ref | None = None
    amount: Amount
    taxCategory: str = Field(default="standard", min_length=1, max_length=50)
    externalId: str = Field(min_length=1, max_length=100)

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Amount) -> Amount:
        if value.value <= 0:
            raise ValueError(
                "must be greater than 0 (a credit is given as type 'credit' with a positive amount)"
            )
        return value


class BillRunCreate(Strict):
    billCycleDay: int = Field(ge=1, le=28)
    period: str = Field(min_length=7, max_length=7)

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        if not _PERIOD.match(value):
            raise ValueError("must be YYYY-MM")
        return value


class TaxRateSet(Strict):
    country: str = Field(pattern=r"^[A-Z]{2}$")
    taxCategory: str = Field(default="standard", min_length=1, max_length=50)
    rate: Decimal = Field(ge=0, lt=1, max_digits=5, decimal_places=4)
