"""Read models other features use instead of the accounts ORM rows (frozen snapshots, no lazy loading)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.accounts.orm import Contact, Customer, Site
from turnup.kernel.errors import Conflict, NotFound, TurnupError


@dataclass(frozen=True)
class CustomerInfo:
    id: str
    name: str
    customer_type: str
    status: str
    segment: str | None
    country: str | None
    email: str | None
    billing_account_id: str | None


@dataclass(frozen=True)
class SiteInfo:
    id: str
    customer_id: str
    name: str
    street: str | None
    city: str | None
    postcode: str | None
    region: str | None
    country: str


@dataclass(frozen=True)
class ContactInfo:
    id: str
    customer_id: str
    name: str
    role: str | None
    email: str | None


def _customer_info(c: Customer) -> CustomerInfo:
    return CustomerInfo(
        c.id, c.name, c.customer_type, c.status, c.segment, c.country, c.email, c.billing_account_id
    )


def _site_info(s: Site) -> SiteInfo:
    return SiteInfo(s.id, s.customer_id, s.name, s.street, s.city, s.postcode, s.region, s.country)


def find_customer(session: Session, customer_id: str) -> CustomerInfo | None:
    """The customer with this id, or None."""
    customer = session.get(Customer, customer_id)
    return _customer_info(customer) if customer is not None else None


def live_customer(
    session: Session, customer_id: str, field: str = "customerId", *, unknown: type[TurnupError] = NotFound
) -> CustomerInfo:
    """A customer that exists and is not closed; errors name ``field`` (``unknown`` if it does not exist)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise unknown(f"{field}: unknown customer {customer_id!r}")
    if customer.status == "closed":
        raise Conflict(f"{field}: customer {customer_id!r} is closed")
    return _customer_info(customer)


def find_site(session: Session, site_id: str) -> SiteInfo | None:
    """The geographic site with this id, or None."""
    site = session.get(Site, site_id)
    return _site_info(site) if site is not None else None


def customer_contacts(session: Session, customer_id: str) -> list[ContactInfo]:
    """The customer's contacts in id order."""
    return [
        ContactInfo(c.id, c.customer_id, c.name, c.role, c.email)
        for c in session.scalars(
            select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.id)
        )
    ]
