"""Account use cases. Each function validates, changes, audits, publishes events and commits once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from turnup.accounts.orm import Contact, Customer, Site
from turnup.accounts.queries import live_customer
from turnup.accounts.render import render_contact, render_customer, render_site
from turnup.accounts.schemas import (
    ContactCreate,
    ContactUpdate,
    CustomerCreate,
    CustomerUpdate,
    SiteCreate,
    SiteUpdate,
)
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

CUSTOMER_API = "customerManagement"
SITE_API = "geographicSiteManagement"

# Customer lifecycle: which status may follow which. ``prospective`` -> ``active`` (first active service) ->
# ``inactive`` (none remains) -> ``active`` (a new one) is automatic (``turnup.accounts.consumers``).
TRANSITIONS: dict[str, set[str]] = {
    "prospective": {"active", "closed"},
    "active": {"suspended", "inactive", "closed"},
    "inactive": {"active", "closed"},
    "suspended": {"active", "closed"},
    "closed": set(),
}


def default_billing_account(customer_id: str, name: str) -> tuple[str, str]:
    """The billing account a customer created without one gets: ``BA-<customer id>``, named after it."""
    return f"BA-{customer_id}", f"{name} billing account"[:200]


def get_customer(session: Session, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id!r} not found")
    return customer


def create_customer(session: Session, data: CustomerCreate, actor: str, *, commit: bool = True) -> Customer:
    now = clock.now()
    customer_id = new_id()
    account_id, account_name = (
        (data.billingAccount.id, data.billingAccount.name)
        if data.billingAccount
        else default_billing_account(customer_id, data.name)
    )
    customer = Customer(
        id=customer_id,
        name=data.name,
        customer_type=data.customerType,
        status=data.status,
        segment=data.segment,
        country=data.country,
        email=data.email,
        phone=data.phone,
        billing_account_id=account_id,
        billing_account_name=account_name,
        created_at=now,
        updated_at=now,
    )
    session.add(customer)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="customer.create",
        resource_type="customer",
        resource_id=customer.id,
        details={"name": data.name, "billingAccount": {"id": account_id, "default": not data.billingAccount}},
    )
    publish(
        session,
        api=CUSTOMER_API,
        event_type="CustomerCreateEvent",
        resource_type="customer",
        resource=render_customer(customer),
    )
    if commit:
        session.commit()
    return customer


def update_customer(session: Session, customer_id: str, data: CustomerUpdate, actor: str) -> Customer:
    customer = get_customer(session, customer_id)
    changes = data.model_dump(exclude_unset=True)
    old_status = customer.status
    if "status" in changes and changes["status"] != old_status:
        new_status = changes["status"]
        if new_status not in TRANSITIONS[old_status]:
            raise Conflict(
                f"status: a {old_status} customer cannot become {new_status}",
                reason="Illegal state transition",
            )
    if customer.status == "closed" and changes:
        raise Conflict("a closed customer cannot be changed", reason="Illegal state transition")
    columns = {
        "name": "name",
        "status": "status",
        "segment": "segment",
        "country": "country",
        "email": "email",
        "phone": "phone",
    }
    for key, column in columns.items():
        if key in changes:
            setattr(customer, column, changes[key])
    if "billingAccount" in changes:
        ref = changes["billingAccount"]
        customer.billing_account_id = ref["id"] if ref else None
        customer.billing_account_name = ref.get("name") if ref else None
    customer.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="customer.update",
        resource_type="customer",
        resource_id=customer.id,
        details=_jsonable(changes),
    )
    document = render_customer(customer)
    if customer.status != old_status:
        publish(
            session,
            api=CUSTOMER_API,
            event_type="CustomerStateChangeEvent",
            resource_type="customer",
            resource=document,
        )
    if set(changes) - {"status"}:
        publish(
            session,
            api=CUSTOMER_API,
            event_type="CustomerAttributeValueChangeEvent",
            resource_type="customer",
            resource=document,
        )
    session.commit()
    return customer


def delete_customer(session: Session, customer_id: str, actor: str) -> None:
    customer = get_customer(session, customer_id)
    if customer.status != "prospective":
        raise Conflict(
            f"only prospective customers can be deleted; this one is {customer.status}: close it instead",
            reason="Illegal state transition",
        )
    document = render_customer(customer)
    session.delete(customer)
    audit.record(
        session, actor=actor, action="customer.delete", resource_type="customer", resource_id=customer_id
    )
    publish(
        session,
        api=CUSTOMER_API,
        event_type="CustomerDeleteEvent",
        resource_type="customer",
        resource=document,
    )
    session.commit()


@dataclass(frozen=True)
class _Kind:
    """How one account resource is audited and announced."""

    model: type[Any]
    api: str
    resource_type: str  # TMF name, also the key inside the event
    event_prefix: str  # e.g. "Contact" -> ContactCreateEvent
    audit_prefix: str  # e.g. "contact" -> contact.create
    render: Callable[[Any], dict[str, Any]]
    columns: tuple[str, ...]


CONTACT = _Kind(
    Contact, CUSTOMER_API, "contact", "Contact", "contact", render_contact, ("name", "role", "email", "phone")
)
SITE = _Kind(
    Site,
    SITE_API,
    "geographicSite",
    "GeographicSite",
    "site",
    render_site,
    ("name", "street", "city", "postcode", "region", "country", "latitude", "longitude"),
)


def _load(session: Session, kind: _Kind, item_id: str) -> Any:
    obj = session.get(kind.model, item_id)
    if obj is None:
        raise NotFound(f"{kind.resource_type} {item_id!r} not found")
    return obj


def _announce(
    session: Session,
    kind: _Kind,
    verb: str,
    event: str,
    document: dict[str, Any],
    actor: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit a change and publish its event, inside the caller's transaction."""
    audit.record(
        session,
        actor=actor,
        action=f"{kind.audit_prefix}.{verb}",
        resource_type=kind.resource_type,
        resource_id=document["id"],
        details=details,
    )
    publish(
        session,
        api=kind.api,
        event_type=f"{kind.event_prefix}{event}Event",
        resource_type=kind.resource_type,
        resource=document,
    )


def _create_child(
    session: Session, kind: _Kind, data: ContactCreate | SiteCreate, actor: str, commit: bool
) -> Any:
    live_customer(session, data.customerId)
    now = clock.now()
    obj = kind.model(
        id=new_id(),
        customer_id=data.customerId,
        created_at=now,
        updated_at=now,
        **{c: getattr(data, c) for c in kind.columns},
    )
    session.add(obj)
    session.flush()
    _announce(
        session,
        kind,
        "create",
        "Create",
        kind.render(obj),
        actor,
        {"customerId": data.customerId, "name": data.name},
    )
    if commit:
        session.commit()
    return obj


def _update_child(session: Session, kind: _Kind, item_id: str, changes: dict[str, Any], actor: str) -> Any:
    obj = _load(session, kind, item_id)
    for key in kind.columns:
        if key in changes:
            setattr(obj, key, changes[key])
    obj.updated_at = clock.now()
    session.flush()
    _announce(session, kind, "update", "AttributeValueChange", kind.render(obj), actor, _jsonable(changes))
    session.commit()
    return obj


def _delete_child(session: Session, kind: _Kind, item_id: str, actor: str) -> None:
    obj = _load(session, kind, item_id)
    document = kind.render(obj)
    session.delete(obj)
    _announce(session, kind, "delete", "Delete", document, actor)
    session.commit()


def create_contact(session: Session, data: ContactCreate, actor: str, *, commit: bool = True) -> Contact:
    contact: Contact = _create_child(session, CONTACT, data, actor, commit)
    return contact


def update_contact(session: Session, contact_id: str, data: ContactUpdate, actor: str) -> Contact:
    contact: Contact = _update_child(session, CONTACT, contact_id, data.model_dump(exclude_unset=True), actor)
    return contact


def delete_contact(session: Session, contact_id: str, actor: str) -> None:
    _delete_child(session, CONTACT, contact_id, actor)


def create_site(session: Session, data: SiteCreate, actor: str, *, commit: bool = True) -> Site:
    site: Site = _create_child(session, SITE, data, actor, commit)
    return site


def update_site(session: Session, site_id: str, data: SiteUpdate, actor: str) -> Site:
    changes = data.model_dump(exclude_unset=True)
    for required in ("country", "name"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required}: cannot be removed from a site")
    site: Site = _update_child(session, SITE, site_id, changes, actor)
    return site


def delete_site(session: Session, site_id: str, actor: str) -> None:
    _delete_child(session, SITE, site_id, actor)


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if v is not None and not isinstance(v, (str, int, bool, dict, list)) else v)
        for k, v in changes.items()
    }
