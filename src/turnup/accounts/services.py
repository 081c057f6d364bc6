"""Account use cases. Each function validates, changes, audits, publishes events and commits once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from turnup.accounts.orm import Contact, Customer, Site
from turnup.accounts.render import render_contact, render_customer, render_site
from turnup.accounts.schemas import (
    ContactCreate, ContactUpdate, CustomerCreate, CustomerUpdate, SiteCreate, SiteUpdate,
)
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

CUSTOMER_API = "customerManagement"
SITE_API = "geographicSiteManagement"

# Customer lifecycle: which status may follow which.
TRANSITIONS: dict[str, set[str]] = {
    "prospective": {"active", "closed"},
    "active": {"suspended", "closed"},
    "suspended": {"active", "closed"},
    "closed": set(),
}


def get_customer(session: Session, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id!r} not found")
    return customer


def _live_customer(session: Session, customer_id: str, field: str = "customerId") -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"{field}: customer {customer_id!r} not found")
    if customer.status == "closed":
        raise Conflict(f"{field}: customer {customer_id!r} is closed")
    return customer


def create_customer(session: Session, data: CustomerCreate, actor: str) -> Customer:
    now = clock.now()
    customer = Customer(
        id=new_id(), name=data.name, customer_type=data.customerType, status=data.status,
        segment=data.segment, country=data.country, email=data.email, phone=data.phone,
        billing_account_id=data.billingAccount.id if data.billingAccount else None,
        billing_account_name=data.billingAccount.name if data.billingAccount else None,
        created_at=now, updated_at=now,
    )
    session.add(customer)
    session.flush()
    audit.record(session, actor=actor, action="customer.create", resource_type="customer",
                 resource_id=customer.id, details={"name": data.name})
    publish(session, api=CUSTOMER_API, event_type="CustomerCreateEvent", resource_type="customer",
            resource=render_customer(customer))
    session.commit()
    return customer


def update_customer(session: Session, customer_id: str, data: CustomerUpdate, actor: str) -> Customer:
    customer = get_customer(session, customer_id)
    changes = data.model_dump(exclude_unset=True)
    old_status = customer.status
    if "status" in changes and changes["status"] != old_status:
        new_status = changes["status"]
        if new_status not in TRANSITIONS[old_status]:
            raise Conflict(f"status: a {old_status} customer cannot become {new_status}",
                           reason="Illegal state transition")
    if customer.status == "closed" and changes:
        raise Conflict("a closed customer cannot be changed", reason="Illegal state transition")
    columns = {"name": "name", "status": "status", "segment": "segment", "country": "country",
               "email": "email", "phone": "phone"}
    for key, column in columns.items():
        if key in changes:
            setattr(customer, column, changes[key])
    if "billingAccount" in changes:
        ref = changes["billingAccount"]
        customer.billing_account_id = ref["id"] if ref else None
        customer.billing_account_name = ref.get("name") if ref else None
    customer.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="customer.update", resource_type="customer",
                 resource_id=customer.id, details=_jsonable(changes))
    document = render_customer(customer)
    if customer.status != old_status:
        publish(session, api=CUSTOMER_API, event_type="CustomerStateChangeEvent",
                resource_type="customer", resource=document)
    if set(changes) - {"status"}:
        publish(session, api=CUSTOMER_API, event_type="CustomerAttributeValueChangeEvent",
                resource_type="customer", resource=document)
    session.commit()
    return customer


def delete_customer(session: Session, customer_id: str, actor: str) -> None:
    customer = get_customer(session, customer_id)
    if customer.status != "prospective":
        raise Conflict(f"only prospective customers can be deleted; this one is {customer.status}: "
                       "close it instead", reason="Illegal state transition")
    document = render_customer(customer)
    session.delete(customer)
    audit.record(session, actor=actor, action="customer.delete", resource_type="customer",
                 resource_id=customer_id)
    publish(session, api=CUSTOMER_API, event_type="CustomerDeleteEvent", resource_type="customer",
            resource=document)
    session.commit()


def create_contact(session: Session, data: ContactCreate, actor: str) -> Contact:
    _live_customer(session, data.customerId)
    now = clock.now()
    contact = Contact(id=new_id(), customer_id=data.customerId, name=data.name, role=data.role,
                      email=data.email, phone=data.phone, created_at=now, updated_at=now)
    session.add(contact)
    session.flush()
    audit.record(session, actor=actor, action="contact.create", resource_type="contact",
                 resource_id=contact.id, details={"customerId": data.customerId})
    publish(session, api=CUSTOMER_API, event_type="ContactCreateEvent", resource_type="contact",
            resource=render_contact(contact))
    session.commit()
    return contact


def update_contact(session: Session, contact_id: str, data: ContactUpdate, actor: str) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id!r} not found")
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "role", "email", "phone"):
        if key in changes:
            setattr(contact, key, changes[key])
    contact.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="contact.update", resource_type="contact",
                 resource_id=contact.id, details=_jsonable(changes))
    publish(session, api=CUSTOMER_API, event_type="ContactAttributeValueChangeEvent",
            resource_type="contact", resource=render_contact(contact))
    session.commit()
    return contact


def delete_contact(session: Session, contact_id: str, actor: str) -> None:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id!r} not found")
    document = render_contact(contact)
    session.delete(contact)
    audit.record(session, actor=actor, action="contact.delete", resource_type="contact",
                 resource_id=contact_id)
    publish(session, api=CUSTOMER_API, event_type="ContactDeleteEvent", resource_type="contact",
            resource=document)
    session.commit()


_SITE_COLUMNS = ("name", "street", "city", "postcode", "region", "country", "latitude", "longitude")


def create_site(session: Session, data: SiteCreate, actor: str) -> Site:
    _live_customer(session, data.customerId)
    now = clock.now()
    site = Site(id=new_id(), customer_id=data.customerId, created_at=now, updated_at=now,
                **{c: getattr(data, c) for c in _SITE_COLUMNS})
    session.add(site)
    session.flush()
    audit.record(session, actor=actor, action="site.create", resource_type="geographicSite",
                 resource_id=site.id, details={"customerId": data.customerId, "name": data.name})
    publish(session, api=SITE_API, event_type="GeographicSiteCreateEvent", resource_type="geographicSite",
            resource=render_site(site))
    session.commit()
    return site


def update_site(session: Session, site_id: str, data: SiteUpdate, actor: str) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound(f"geographicSite {site_id!r} not found")
    changes = data.model_dump(exclude_unset=True)
    for required in ("country", "name"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required}: cannot be removed from a site")
    for key in _SITE_COLUMNS:
        if key in changes:
            setattr(site, key, changes[key])
    site.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="site.update", resource_type="geographicSite",
                 resource_id=site.id, details=_jsonable(changes))
    publish(session, api=SITE_API, event_type="GeographicSiteAttributeValueChangeEvent",
            resource_type="geographicSite", resource=render_site(site))
    session.commit()
    return site


def delete_site(session: Session, site_id: str, actor: str) -> None:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound(f"geographicSite {site_id!r} not found")
    document = render_site(site)
    session.delete(site)
    audit.record(session, actor=actor, action="site.delete", resource_type="geographicSite",
                 resource_id=site_id)
    publish(session, api=SITE_API, event_type="GeographicSiteDeleteEvent", resource_type="geographicSite",
            resource=document)
    session.commit()


def count_customers(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Customer)) or 0


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if v is not None and not isinstance(v, (str, int, bool, dict, list)) else v)
            for k, v in changes.items()}
