"""Input shapes for accounts (TMF629 customer, contacts, TMF674 geographic sites)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from turnup.kernel.text import InputModel

CustomerType = Literal["organization", "individual"]
CustomerStatus = Literal["prospective", "active", "inactive", "suspended", "closed"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not a valid e-mail address")
    return value


def _country(value: str) -> str:
    value = value.upper()
    if not _COUNTRY.match(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. 'GB'")
    return value


Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
Country = Annotated[str, AfterValidator(_country)]


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class BillingAccountRef(Strict):
    id: str = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=200)


class CustomerCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    customerType: CustomerType = "organization"
    status: CustomerStatus = "prospective"
    segment: str | None = Field(default=None, max_length=50)
    country: Country | None = None
    email: Email | None = None
    phone: str | None = Field(default=None, max_length=40)
    billingAccount: BillingAccountRef | None = None


class CustomerUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    status: CustomerStatus | None = None
    segment: str | None = Field(default=None, max_length=50)
    country: Country | None = None
    email: Email | None = None
    phone: str | None = Field(default=None, max_length=40)
    billingAccount: BillingAccountRef | None = None


class ContactCreate(Strict):
    customerId: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=100)
    email: Email | None = None
    phone: str | None = Field(default=None, max_length=40)


class ContactUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=100)
    email: Email | None = None
    phone: str | None = Field(default=None, max_length=40)


class SiteFields(Strict):
    """A site's own attributes (also used inside an onboarding request)."""

    name: str = Field(min_length=1, max_length=200)
    street: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=100)
    postcode: str | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, max_length=100)
    country: Country
    latitude: Decimal | None = Field(default=None, ge=-90, le=90)
    longitude: Decimal | None = Field(default=None, ge=-180, le=180)


class SiteCreate(SiteFields):
    customerId: str = Field(min_length=1, max_length=32)


class SiteUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    street: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=100)
    postcode: str | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, max_length=100)
    country: Country | None = None
    latitude: Decimal | None = Field(default=None, ge=-90, le=90)
    longitude: Decimal | None = Field(default=None, ge=-180, le=180)
