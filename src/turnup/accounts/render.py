"""TMF JSON documents for accounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from turnup.accounts.orm import Contact, Customer, Site
from turnup.kernel.hrefs import href, iso


def render_customer(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "href": href("customerManagement", "customer", c.id),
        "@type": "Customer",
        "name": c.name,
        "customerType": c.customer_type,
        "status": c.status,
        "segment": c.segment,
        "country": c.country,
        "email": c.email,
        "phone": c.phone,
        "billingAccount": (
            {"id": c.billing_account_id, "name": c.billing_account_name, "@referredType": "BillingAccount"}
            if c.billing_account_id
            else None
        ),
        "createdAt": iso(c.created_at),
        "lastUpdate": iso(c.updated_at),
    }


def render_contact(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "href": href("customerManagement", "contact", c.id),
        "@type": "Contact",
        "customerId": c.customer_id,
        "name": c.name,
        "role": c.role,
        "email": c.email,
        "phone": c.phone,
        "createdAt": iso(c.created_at),
        "lastUpdate": iso(c.updated_at),
    }


def _coordinate(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value):.6f}"


def render_site(s: Site) -> dict[str, Any]:
    return {
        "id": s.id,
        "href": href("geographicSiteManagement", "geographicSite", s.id),
        "@type": "GeographicSite",
        "customerId": s.customer_id,
        "name": s.name,
        "street": s.street,
        "city": s.city,
        "postcode": s.postcode,
        "region": s.region,
        "country": s.country,
        "latitude": _coordinate(s.latitude),
        "longitude": _coordinate(s.longitude),
        "createdAt": iso(s.created_at),
        "lastUpdate": iso(s.updated_at),
    }
