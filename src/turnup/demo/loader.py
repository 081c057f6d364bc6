"""Load the demo operator: its catalog (through the normal publish path), customers, and an admin.

Safe to run again: what already exists is kept; the admin gets a fresh password and API token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.accounts import services as accounts
from turnup.accounts.orm import Customer
from turnup.accounts.schemas import ContactCreate, CustomerCreate, SiteCreate
from turnup.security import create_api_token, create_user
from turnup.security.orm import User
from turnup.security.services import hash_password

DEMO_DIR = Path(__file__).resolve().parent
ACTOR = "demo-loader"
ADMIN = "admin"


@dataclass
class DemoResult:
    admin_username: str
    admin_password: str
    api_token: str
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return ", ".join(f"{v} {k}" for k, v in self.counts.items())


def load_demo(session: Session) -> DemoResult:
    counts: dict[str, int] = {}
    counts.update(_load_catalog(session))
    counts.update(_load_customers(session))
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
    return DemoResult(admin_username=ADMIN, admin_password=password, api_token=token, counts=counts)


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
