"""Input shape for ``POST /tmf-api/turnupOnboarding/v1/onboarding`` (and ``turnup onboarding start``)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from turnup.accounts.schemas import Country, CustomerType, Email, Strict


class OnboardingCustomer(Strict):
    name: str = Field(min_length=1, max_length=200)
    customerType: CustomerType = "organization"
    country: Country
    segment: str | None = Field(default=None, max_length=50)
    email: Email | None = None
    phone: str | None = Field(default=None, max_length=40)


class OnboardingSite(Strict):
    name: str = Field(min_length=1, max_length=200)
    street: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=100)
    postcode: str | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, max_length=100)
    country: Country
    latitude: Decimal | None = Field(default=None, ge=-90, le=90)
    longitude: Decimal | None = Field(default=None, ge=-180, le=180)


class OnboardingContact(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: Email
    phone: str | None = Field(default=None, max_length=40)
    role: str | None = Field(default=None, max_length=100)


class OnboardingCreate(Strict):
    customer: OnboardingCustomer
    sites: list[OnboardingSite] = Field(default_factory=list, max_length=200)
    primaryContact: OnboardingContact


class InvitationAccept(Strict):
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=10, max_length=200)
