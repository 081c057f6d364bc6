"""Quote to order through the HTTP API (TMF648 quote, approval API, TMF651 agreement, TMF622 order).

Given the demo catalog, stock, IP pools, VLANs and numbers seeded through the inventories' own APIs,
a quote for the Fibre + Voice bundle holds every resource it needs, a 20% discount requires a two-step
approval chain, and acceptance converts the holds, generates and signs the agreement and creates the
product order. Runs on SQLite and PostgreSQL. The helpers here are reused by the other quote tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import turnup
from turnup.agreements.orm import Agreement, AgreementDocument, AgreementSignature
from turnup.catalog.publish import load_catalog_file, publish_catalog
from turnup.inventory.logical.orm import ResourceReservation, TelephoneNumber
from turnup.inventory.physical.orm import Reservation
from turnup.kernel.audit import AuditEntry
from turnup.kernel.outbox import OutboxEvent
from turnup.ordering.orm import ProductOrder
from turnup.quoting.orm import Quote, QuoteApproval, QuoteVersion

QUOTES = "/tmf-api/quoteManagement/v4/quote"
APPROVAL = "/tmf-api/turnupApproval/v1"
AGREEMENTS = "/tmf-api/agreementManagement/v4/agreement"
STOCK = "/tmf-api/stock/v4"
POOLS = "/tmf-api/resourcePoolManagement/v4"
DEMO_CATALOG = Path(turnup.__file__).parent / "demo" / "catalog.yaml"
RULES_YAML = """
rules:
  - name: Discounts over 15%
    priority: 10
    conditions: {discountPercentOver: 15}
    chain: [salesManager, finance]
    maxDiscountPercent: 30
  - name: Large deals
    priority: 20
    conditions: {dealValueOver: 100000}
    chain: [salesManager, finance, legal]
"""


# --- helpers (shared by the quote tests) ------------------------------------------------------------


def post(client: TestClient, path: str, body: dict[str, Any], status: int = 201) -> Any:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def dbos_cleanup(db_url: str) -> Iterator[None]:
    """Order creation enqueues a DBOS workflow: drop DBOS's schema of this PostgreSQL test afterwards."""
    yield
    from tests.workflows.conftest import drop_dbos_schema

    drop_dbos_schema(db_url)


def publish_demo_catalog(factory: sessionmaker[Session]) -> dict[str, str]:
    with factory() as s:
        result = publish_catalog(s, load_catalog_file(DEMO_CATALOG), "test")
        from turnup.catalog.orm import ProductOffering

        return {
            o.name: o.id
            for o in s.scalars(select(ProductOffering).where(ProductOffering.id.in_(result.offerings)))
        }


def seed_inventory(
    client: TestClient, *, cpe: int = 5, handsets: int = 5, ipv4_pool: str = "10.20.0.0/24"
) -> None:
    """Stock in a Yorkshire warehouse, customer IPv4/IPv6 pools, a VLAN pool and Leeds (0113) numbers."""
    post(client, f"{STOCK}/sku", {"code": "CPE-NW-FTTP-R1", "name": "Managed fibre router"})
    post(client, f"{STOCK}/sku", {"code": "HANDSET-NW-DESK-2", "name": "IP desk handset"})
    post(
        client,
        f"{STOCK}/location",
        {"code": "WH-LEEDS", "name": "Leeds warehouse", "locationType": "warehouse", "region": "Yorkshire"},
    )
    post(
        client,
        f"{STOCK}/adjustProductStock",
        {"kind": "receipt", "sku": "CPE-NW-FTTP-R1", "location": "WH-LEEDS", "quantity": cpe},
    )
    post(
        client,
        f"{STOCK}/adjustProductStock",
        {"kind": "receipt", "sku": "HANDSET-NW-DESK-2", "location": "WH-LEEDS", "quantity": handsets},
    )
    post(
        client,
        f"{POOLS}/resourcePool",
        {"poolType": "ipAggregate", "name": "rfc1918", "prefix": "10.0.0.0/8"},
    )
    post(
        client,
        f"{POOLS}/resourcePool",
        {"poolType": "ipPool", "name": "customer v4", "prefix": ipv4_pool, "purpose": "customer"},
    )
    post(
        client,
        f"{POOLS}/resourcePool",
        {"poolType": "ipAggregate", "name": "doc6", "prefix": "2001:db8::/32"},
    )
    post(
        client,
        f"{POOLS}/resourcePool",
        {"poolType": "ipPool", "name": "customer v6", "prefix": "2001:db8::/40", "purpose": "customer"},
    )
    post(
        client,
        f"{POOLS}/resourcePool",
        {"poolType": "vlanPool", "name": "access vlans", "start": 100, "end": 199},
    )
    post(client, f"{POOLS}/numberImport", {"start": "0113 496 0000", "end": "0113 496 0199", "country": "GB"})


def customer_and_site(
    client: TestClient, name: str = "Brightwater Dental Group", country: str = "GB"
) -> tuple[str, str]:
    customer = post(
        client,
        "/tmf-api/customerManagement/v4/customer",
        {"name": name, "status": "active", "segment": "smb", "country": country},
    )
    site = post(
        client,
        "/tmf-api/geographicSiteManagement/v4/geographicSite",
        {
            "customerId": customer["id"],
            "name": "Leeds surgery",
            "street": "12 Park Row",
            "city": "Leeds",
            "postcode": "LS1 5AB",
            "region": "Yorkshire",
            "country": country,
        },
    )
    return customer["id"], site["id"]


def quote_body(
    customer_id: str,
    site_id: str,
    offering_id: str,
    *,
    discount: str = "0",
    quantity: int = 1,
    term: int = 24,
    characteristics: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    chars = (
        characteristics
        if characteristics is not None
        else [{"name": "numberArea", "value": "0113"}, {"name": "estimatedUsage.minute", "value": "1500"}]
    )
    return {
        "description": "Fibre and voice for the Leeds surgery",
        "contractTermMonths": term,
        "relatedParty": [{"id": customer_id, "role": "customer"}],
        "quoteItem": [
            {
                "id": "1",
                "quantity": quantity,
                "productOffering": {"id": offering_id},
                "discountPercent": discount,
                "product": {"place": [{"id": site_id}], "productCharacteristic": chars},
            }
        ],
        **extra,
    }


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    """Row counts of everything a quote action may write (for 'nothing changed' checks)."""
    models = {
        "quote": Quote,
        "version": QuoteVersion,
        "approval": QuoteApproval,
        "agreement": Agreement,
        "document": AgreementDocument,
        "signature": AgreementSignature,
        "order": ProductOrder,
        "audit": AuditEntry,
        "event": OutboxEvent,
        "stockReservation": Reservation,
        "resourceReservation": ResourceReservation,
    }
    with factory() as s:
        return {k: s.scalar(select(func.count()).select_from(m)) or 0 for k, m in models.items()}


def stock_status(factory: sessionmaker[Session], reservation_id: str) -> str:
    with factory() as s:
        row = s.get(Reservation, reservation_id)
        assert row is not None
        return row.status


def logical_state(factory: sessionmaker[Session], reservation_id: str) -> str:
    with factory() as s:
        row = s.get(ResourceReservation, reservation_id)
        assert row is not None
        return row.state


def approver_token(client: TestClient, step: str) -> str:
    """The token of a user bound to approval step ``step`` (one user per step, made on first use)."""
    from turnup.security import create_api_token, create_user
    from turnup.security.permissions import APPROVAL_STEPS

    app: Any = client.app
    tokens: dict[str, str] | None = getattr(app.state, "test_approver_tokens", None)
    if tokens is None:
        tokens = app.state.test_approver_tokens = {}
    if not tokens:  # every step's user at once, so later calls write nothing
        with app.state.sessionmaker() as s:
            for name, roles in APPROVAL_STEPS.items():
                create_user(s, username=f"approver-{name}", roles=[roles[0]])
                tokens[name] = create_api_token(s, username=f"approver-{name}")
    return tokens[step]


def decide(
    client: TestClient,
    quote_id: str,
    role: str,
    decision: str = "approved",
    status: int = 201,
    comment: str = "ok",
) -> Any:
    """Decide as a user bound to step ``role`` (approval steps are bound to roles, issue 15)."""
    response = client.post(
        f"{APPROVAL}/approvalDecision",
        json={"quoteId": quote_id, "role": role, "decision": decision, "comment": comment},
        headers={"Authorization": f"Bearer {approver_token(client, role)}"},
    )
    assert response.status_code == status, response.text
    return response.json()


SIGNER = {"signer": {"name": "Priya Natarajan", "email": "priya@brightwater-dental.example"}}


# --- the happy path ---------------------------------------------------------------------------------


def test_quote_with_holds_and_approval_chain_becomes_signed_agreement_and_order(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    # given the demo catalog, inventory and approval rules
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    imported = post(client, f"{APPROVAL}/approvalRuleImport", {"yaml": RULES_YAML})
    assert len(imported["created"]) == 2 and imported["updated"] == []
    customer_id, site_id = customer_and_site(client)

    # when a quote for the Fibre + Voice bundle with a 20% discount is created and priced
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"], discount="20"))
    assert quote["state"] == "inProgress" and quote["quoteTotalPrice"] == []
    priced = post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)

    # then it is priced from the catalog (bundle price, requested discount beats the 24-month term discount)
    item = priced["quoteItem"][0]
    prices = {p["name"]: p for p in item["quoteItemPrice"]}
    assert prices["Fibre + Voice monthly"]["listPrice"]["value"] == "249.00"
    assert prices["Fibre + Voice monthly"]["price"]["value"] == "199.20"
    assert prices["Fibre + Voice installation"]["price"]["value"] == "159.20"
    assert prices["Outbound minutes"]["price"]["value"] == "27.50"  # 1000 x 0.02 + 500 x 0.015
    assert item["pricing"]["automaticDiscount"] == {"name": "24-month term", "percent": "10"}
    assert item["pricing"]["appliedDiscountPercent"] == "20"
    assert item["pricing"]["bundleAllocation"] == [
        {"offering": "Business Fibre 1G", "recurring": "185.24", "oneTime": "148.04"},
        {"offering": "Hosted Voice Seat", "recurring": "13.96", "oneTime": "11.16"},
    ]
    totals = {t["priceType"]: t["price"]["dutyFreeAmount"]["value"] for t in priced["quoteTotalPrice"]}
    assert totals == {"recurring": "199.20", "oneTime": "159.20", "usage": "27.50"}
    assert priced["contractValue"] == {"unit": "GBP", "value": "4940.00"}

    # and every resource is held until the quote expires, visible per line
    held = {h["resource"]: h for h in item["reservedResource"]}
    assert set(held) == {"stock", "ipv4Prefix", "ipv6Prefix", "vlan", "phoneNumber"}
    skus = sorted(
        (h["sku"], h["quantity"], h["location"]) for h in item["reservedResource"] if h["resource"] == "stock"
    )
    assert skus == [("CPE-NW-FTTP-R1", 1, "WH-LEEDS"), ("HANDSET-NW-DESK-2", 1, "WH-LEEDS")]
    assert held["ipv4Prefix"]["value"].startswith("10.20.0.") and held["ipv4Prefix"]["value"].endswith("/29")
    assert held["ipv6Prefix"]["value"].endswith("/48")
    assert held["phoneNumber"]["value"].startswith("+44113496")
    assert all(h["expiresAt"] == priced["validFor"]["endDateTime"] for h in item["reservedResource"])
    assert priced["holds"]["state"] == "held"

    # and the 20% discount needs sales manager, then finance
    assert priced["state"] == "pending"
    chain = [(a["step"], a["name"], a["state"]) for a in priced["authorization"]]
    assert chain == [(1, "salesManager", "pending"), (2, "finance", "pending")]
    assert "Discounts over 15%" in priced["authorization"][0]["reason"][0]

    # when it is accepted with approval outstanding: refused, nothing changes
    approver_token(client, "finance")  # (the approvers exist before counting)
    before = counts(session_factory)
    refused = client.post(f"{QUOTES}/{quote['id']}/accept", json=SIGNER)
    assert refused.status_code == 409
    assert "approval is outstanding: step 1 (salesManager)" in refused.json()["message"]
    # finance cannot approve before the sales manager
    out_of_order = decide(client, quote["id"], "finance", status=409)
    assert "is for salesManager, not finance" in out_of_order["message"]
    assert counts(session_factory) == before

    # when sales manager then finance approve
    after_first = decide(client, quote["id"], "salesManager", comment="strategic customer")
    assert after_first["state"] == "pending"
    approved = decide(client, quote["id"], "finance", comment="margin acceptable")
    assert approved["state"] == "approved" and approved["approvalStatus"] == "approved"
    assert [(a["name"], a["state"], a["comment"]) for a in approved["authorization"]] == [
        ("salesManager", "approved", "strategic customer"),
        ("finance", "approved", "margin acceptable"),
    ]

    # and the customer accepts
    accepted = post(client, f"{QUOTES}/{quote['id']}/accept", SIGNER, 200)

    # then the quote is accepted, with an agreement and a product order
    assert accepted["state"] == "accepted"
    agreement_id = accepted["agreement"][0]["id"]
    order_id = accepted["productOrder"]["id"]
    agreement = client.get(f"{AGREEMENTS}/{agreement_id}").json()
    assert agreement["status"] == "signed"
    assert agreement["quote"]["id"] == quote["id"] and agreement["productOrder"]["id"] == order_id
    assert agreement["termMonths"] == 24
    assert agreement["renewal"]["noticePeriodDays"] == 90
    signature = agreement["agreementAuthorization"][0]
    assert (
        signature["signer"]["email"] == "priya@brightwater-dental.example" and signature["role"] == "customer"
    )
    document = client.get(f"{AGREEMENTS}/{agreement_id}/document")
    assert document.status_code == 200
    assert signature["signatureRepresentation"] == f"sha256:{document.headers['X-Content-SHA256']}"
    text = document.text
    assert "Fibre + Voice x 1 at Leeds surgery" in text and "GBP 199.20" in text
    assert "Total contract value: GBP 4940.00" in text and "24 months" in text
    assert client.get(f"{AGREEMENTS}/{agreement_id}/verify").json()["valid"] is True

    order = client.get(f"/tmf-api/productOrderingManagement/v4/productOrder/{order_id}").json()
    assert order["state"] == "acknowledged"
    assert order["quote"][0]["id"] == quote["id"]
    assert order["agreement"][0]["id"] == agreement_id
    assert sorted(r["@referredType"] for r in order["reservation"]) == [
        "ReserveProductStock",
        "ResourceReservation",
    ]
    assert [(i["productOffering"]["id"], i["quantity"]) for i in order["productOrderItem"]] == [
        (offerings["Fibre + Voice"], 1)
    ]
    # and the holds were converted into allocations for the order
    assert stock_status(session_factory, accepted["holds"]["stockReservationId"]) == "committed"
    assert logical_state(session_factory, accepted["holds"]["resourceReservationId"]) == "committed"
    with session_factory() as s:
        number = s.scalar(
            select(TelephoneNumber).where(TelephoneNumber.digits == held["phoneNumber"]["value"].lstrip("+"))
        )
        assert number is not None and number.state == "assigned"
    # and accepting again is an illegal transition
    again = client.post(f"{QUOTES}/{quote['id']}/accept", json=SIGNER)
    assert again.status_code == 409 and "accepted quote cannot become accepted" in again.json()["message"]
    # the history keeps each version
    versions = client.get(f"{QUOTES}/{quote['id']}/version").json()
    assert [(v["version"], v["reason"]) for v in versions] == [(1, "created"), (2, "priced")]


def test_quote_events_reach_hub_listeners(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    from turnup.kernel.outbox import EventDelivery

    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    hub = post(
        client,
        "/tmf-api/quoteManagement/v4/hub",
        {"callback": "http://listener.example/quotes", "query": "eventType=QuoteStateChangeEvent"},
    )
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"]))
    post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)
    with session_factory() as s:
        rows = s.execute(
            select(OutboxEvent.event_type, OutboxEvent.payload)
            .join(EventDelivery, EventDelivery.event_id == OutboxEvent.id)
            .where(EventDelivery.subscription_id == hub["id"])
        ).all()
    assert [(t, p["event"]["quote"]["state"]) for t, p in rows] == [("QuoteStateChangeEvent", "approved")]
