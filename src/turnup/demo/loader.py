"""Load the demo operator: a small but complete business, through each feature's own commands.

- ``catalog.yaml``: the product catalog (the normal publish path);
- ``customers.yaml``: customers, contacts, sites;
- ``operator.yaml``: SKUs, stock locations and serialised units, IP/VLAN/ASN/circuit-id pools, telephone
  numbers, approval rules with their approvers (users with API tokens), the screening list
  (``screening_list.csv``) and a few orders delivered through the real quote -> order flow;
- an admin with a fresh password and API token.

Safe to run again: what already exists is kept (matched by code, name, first number or quote external id);
the admin and the approvers get fresh tokens. ``empty=True`` loads only the admin.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from turnup.accounts import services as accounts
from turnup.accounts.orm import Customer, Site
from turnup.accounts.schemas import ContactCreate, CustomerCreate, SiteCreate
from turnup.security import change_roles, create_api_token, create_user
from turnup.security.orm import User
from turnup.security.passwords import hash_password

DEMO_DIR = Path(__file__).resolve().parent
ACTOR = "demo-loader"
ADMIN = "admin"
DELIVERED_PREFIX = "demo-delivered-"  # external id of the demo's delivered quotes (and so of their orders)


@dataclass
class Approver:
    username: str
    role: str
    token: str


@dataclass
class DemoResult:
    admin_username: str
    admin_password: str
    api_token: str
    counts: dict[str, int] = field(default_factory=dict)
    approvers: list[Approver] = field(default_factory=list)
    delivered_orders: list[str] = field(default_factory=list)  # ids of the demo's delivered orders
    reported_events: list[str] = field(default_factory=list)  # "order: eventType" reported during load

    def summary(self) -> str:
        return ", ".join(f"{v} {k}" for k, v in self.counts.items() if v) or "nothing new"


def load_demo(session: Session, *, empty: bool = False) -> DemoResult:
    counts: dict[str, int] = {}
    approvers: list[Approver] = []
    delivered: list[str] = []
    events: list[str] = []
    if not empty:
        operator: dict[str, Any] = yaml.safe_load((DEMO_DIR / "operator.yaml").read_text())
        counts.update(_load_catalog(session))
        counts.update(_load_customers(session))
        counts.update(_load_stock(session, operator))
        counts.update(_load_pools(session, operator))
        counts.update(_load_numbers(session, operator))
        counts.update(_load_rules(session, operator))
        counts.update(_load_screening(session, operator))
        counts.update(_load_tax_rates(session, operator))
        approvers = _load_approvers(session, operator)
        new_orders, delivered, events = _load_delivered_orders(session, operator)
        counts["delivered orders"] = new_orders
    password = secrets.token_urlsafe(12)
    user = session.scalar(select(User).where(User.username == ADMIN))
    if user is None:
        create_user(
            session,
            username=ADMIN,
            display_name="Demo administrator",
            password=password,
            roles=["admin"],
            actor=ACTOR,
        )
    else:
        user.password_hash = hash_password(password)
        session.commit()
    token = create_api_token(session, username=ADMIN, name="demo", actor=ACTOR)
    return DemoResult(
        admin_username=ADMIN,
        admin_password=password,
        api_token=token,
        counts=counts,
        approvers=approvers,
        delivered_orders=delivered,
        reported_events=events,
    )


def _load_catalog(session: Session) -> dict[str, int]:
    from turnup.catalog import load_catalog_file, publish_catalog
    from turnup.catalog.orm import ProductOffering

    if session.scalar(select(ProductOffering.id).limit(1)) is not None:
        return {}
    result = publish_catalog(session, load_catalog_file(DEMO_DIR / "catalog.yaml"), ACTOR)
    return {"product offerings": len(result.offerings)}


def _load_customers(session: Session) -> dict[str, int]:
    document: dict[str, Any] = yaml.safe_load((DEMO_DIR / "customers.yaml").read_text())
    created = 0
    for entry in document["customers"]:
        if session.scalar(select(Customer.id).where(Customer.name == entry["name"])) is not None:
            continue
        contacts = entry.pop("contacts", [])
        sites = entry.pop("sites", [])
        customer = accounts.create_customer(session, CustomerCreate(**entry), ACTOR)
        for contact in contacts:
            accounts.create_contact(session, ContactCreate(customerId=customer.id, **contact), ACTOR)
        for site in sites:
            accounts.create_site(session, SiteCreate(customerId=customer.id, **site), ACTOR)
        created += 1
    return {"customers": created}


def _load_stock(session: Session, operator: dict[str, Any]) -> dict[str, int]:
    from turnup.inventory.physical import services as stock
    from turnup.inventory.physical.orm import Location, Sku, StockMovement
    from turnup.inventory.physical.schemas import LocationCreate, MovementCreate, SkuCreate

    skus = locations = units = 0
    for entry in operator.get("skus", []):
        if session.scalar(select(Sku.id).where(Sku.code == entry["code"])) is None:
            stock.create_sku(session, SkuCreate(**entry), ACTOR)
            skus += 1
    for entry in operator.get("locations", []):
        if session.scalar(select(Location.id).where(Location.code == entry["code"])) is None:
            stock.create_location(session, LocationCreate(**entry), ACTOR)
            locations += 1
    for entry in operator.get("receipts", []):
        reference = f"demo-receipt:{entry['location']}:{entry['sku']}"
        if session.scalar(select(StockMovement.id).where(StockMovement.reference == reference).limit(1)):
            continue
        quantity = int(entry["quantity"])
        prefix = entry.get("serialPrefix")
        movement: dict[str, Any] = {"kind": "receipt", "sku": entry["sku"], "location": entry["location"]}
        if prefix:
            movement["units"] = [{"serial": f"{prefix}-{n:04d}"} for n in range(1, quantity + 1)]
        else:
            movement["quantity"] = quantity
        stock.apply_movement(session, MovementCreate(**movement, reference=reference), ACTOR)
        units += quantity
    return {"SKUs": skus, "stock locations": locations, "stock units received": units}


def _load_pools(session: Session, operator: dict[str, Any]) -> dict[str, int]:
    from turnup.inventory.logical import services as logical
    from turnup.inventory.logical.orm import LogicalSpace
    from turnup.inventory.logical.schemas import PoolCreate

    created = 0
    for entry in operator.get("pools", []):
        if session.scalar(select(LogicalSpace.id).where(LogicalSpace.name == entry["name"])) is None:
            logical.create_pool(session, PoolCreate(**entry), ACTOR)
            created += 1
    return {"resource pools": created}


def _load_numbers(session: Session, operator: dict[str, Any]) -> dict[str, int]:
    from turnup.inventory.logical import numbers
    from turnup.inventory.logical.orm import TelephoneNumber
    from turnup.inventory.logical.schemas import NumberImport

    imported = 0
    for entry in operator.get("numbers", []):
        data = NumberImport(**entry)
        exists = session.scalar(
            select(func.count())
            .select_from(TelephoneNumber)
            .where(TelephoneNumber.digits.like(f"%{_digits(data.start or '').lstrip('0')}"))
        )
        if exists:
            continue
        imported += int(numbers.import_numbers(session, data, ACTOR)["count"])
    return {"telephone numbers": imported}


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _load_rules(session: Session, operator: dict[str, Any]) -> dict[str, int]:
    from turnup.quoting import import_rules

    rules = operator.get("approvalRules", [])
    if not rules:
        return {}
    result = import_rules(session, yaml.safe_dump({"rules": rules}), ACTOR)
    return {"approval rules": len(result["created"])}


def _load_screening(session: Session, operator: dict[str, Any]) -> dict[str, int]:
    from turnup.compliance import load_list
    from turnup.compliance.orm import ScreeningListVersion

    name = operator.get("screeningList")
    if not name:
        return {}
    content = (DEMO_DIR / name).read_text(encoding="utf-8")
    if session.scalar(select(ScreeningListVersion.id).limit(1)) is not None:
        return {}  # a list is in force already (the demo's or one the operator loaded since): keep it
    version, _ = load_list(session, content, name, ACTOR)
    return {"screening list entries": version.entry_count}


def _load_tax_rates(session: Session, operator: dict[str, Any]) -> dict[str, int]:
    """The tax rate table bill runs apply (by the billing account's customer country and tax category)."""
    from turnup import billing
    from turnup.billing.orm import TaxRate

    added = 0
    for entry in operator.get("taxRates") or []:
        rate = billing.TaxRateSet.model_validate(entry)
        if session.get(TaxRate, (rate.country, rate.taxCategory)) is None:  # keep the operator's own rate
            billing.set_tax_rate(session, rate, ACTOR)
            added += 1
    return {"tax rates": added} if added else {}


def _load_approvers(session: Session, operator: dict[str, Any]) -> list[Approver]:
    result = []
    for entry in operator.get("approvers", []):
        roles = list(entry.get("roles") or ["approver"])
        existing = session.scalar(select(User).where(User.username == entry["username"]))
        if existing is None:
            create_user(
                session,
                username=entry["username"],
                display_name=f"{entry['displayName']} ({entry['approvalRole']})",
                roles=roles,
                actor=ACTOR,
            )
        elif sorted(existing.roles or []) != sorted(roles):  # an older demo's approver: bind it to its step
            have = list(existing.roles or [])
            add = [r for r in roles if r not in have]
            change_roles(
                session,
                entry["username"],
                add=add,
                remove=[r for r in have if r not in roles],
                actor=ACTOR,
            )
        token = create_api_token(session, username=entry["username"], name="demo", actor=ACTOR)
        result.append(Approver(entry["username"], entry["approvalRole"], token))
    return result


def _load_delivered_orders(session: Session, operator: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    """Quote, accept and report the awaited events of each demo order (its workflow then completes it).

    Returns how many orders were created now, the ids of every demo order, and the events reported.
    """
    from turnup.catalog.orm import ProductOffering
    from turnup.ordering import plan_items, report_event
    from turnup.ordering.model import WAIT_KINDS
    from turnup.ordering.schemas import OrderEventCreate
    from turnup.quoting import QuoteAccept, QuoteCreate, accept_quote, create_quote, price_quote
    from turnup.quoting.orm import Quote

    created = 0
    order_ids: list[str] = []
    events: list[str] = []
    for n, entry in enumerate(operator.get("deliveredOrders", []), start=1):
        external_id = f"{DELIVERED_PREFIX}{n}"
        existing = session.scalar(select(Quote).where(Quote.external_id == external_id))
        if existing is not None:
            if existing.order_id:
                order_ids.append(existing.order_id)
            continue
        customer = session.scalar(select(Customer).where(Customer.name == entry["customer"]))
        offering = session.scalar(select(ProductOffering).where(ProductOffering.name == entry["offering"]))
        if customer is None or offering is None:
            continue  # the operator removed it: nothing to deliver
        site = session.scalar(select(Site).where(Site.customer_id == customer.id, Site.name == entry["site"]))
        if site is None:
            continue
        chars = [{"name": k, "value": str(v)} for k, v in (entry.get("characteristics") or {}).items()]
        quote = create_quote(
            session,
            QuoteCreate.model_validate(
                {
                    "description": f"{entry['offering']} for {entry['customer']} (demo)",
                    "externalId": external_id,
                    "contractTermMonths": entry.get("termMonths", 12),
                    "relatedParty": [{"id": customer.id, "role": "customer"}],
                    "quoteItem": [
                        {
                            "id": "1",
                            "productOffering": {"id": offering.id},
                            "product": {"place": [{"id": site.id}], "productCharacteristic": chars},
                        }
                    ],
                }
            ),
            ACTOR,
        )
        price_quote(session, quote.id, ACTOR)
        accepted = accept_quote(
            session, quote.id, QuoteAccept.model_validate({"signer": entry["signer"]}), ACTOR
        )
        order_id = accepted.order_id
        assert order_id is not None
        order_ids.append(order_id)
        created += 1
        for item in plan_items(session, order_id):
            if item.kind in WAIT_KINDS:
                event = OrderEventCreate(
                    eventType=item.adapter_action,
                    planItemId=item.id,
                    reference=f"demo-{item.kind}-{n}",
                    note="reported by the demo loader",
                )
                report_event(session, order_id, event, ACTOR)
                events.append(f"{entry['offering']}: {item.adapter_action} ({item.kind})")
    return created, order_ids, events
