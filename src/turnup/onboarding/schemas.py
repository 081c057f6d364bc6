"""Input shape for ``POST /tmf-api/turnupOnboarding/v1/onboarding`` (and ``turnup onboarding start``)."""

from __future__ import annotations

from pydantic import Field

from turnup.accounts import Country, CustomerType, Email, SiteFields, Strict


class OnboardingCustomer(Strict):
    name: str = Field(min_length=1, max_length=200)
    customerType: CustomerType = "organization"
    country: Country
    segment: str | None = Field(default=None, max_length=50)
    email: Email | None = None
    phone: str | None = Field(default=None, max_length=40)


OnboardingSite = SiteFields


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
