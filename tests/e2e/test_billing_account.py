"""Billing accounts: every customer created through the API gets one (a default ``BA-<customer id>`` unless
one is given), and a quote cannot be accepted for a customer without one (409 naming what to do; nothing
written). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    QUOTES,
    SIGNER,
    counts,
    customer_and_site,
    dbos_cleanup,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)

__all__ = ["dbos_cleanup"]
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"


def test_customers_created_without_a_billing_account_get_a_default_one(client: TestClient) -> None:
    # When a customer is created without a billing account, and another with one
    plain = post(client, CUSTOMERS, {"name": "Harbour Bakery"})
    given = post(client, CUSTOMERS, {"name": "Quay Ltd", "billingAccount": {"id": "BA-77", "name": "Quay"}})
    # Then the first has its default account, the second keeps its own
    assert plain["billingAccount"] == {
        "id": f"BA-{plain['id']}",
        "name": "Harbour Bakery billing account",
        "@referredType": "BillingAccount",
    }
    assert given["billingAccount"] == {"id": "BA-77", "name": "Quay", "@referredType": "BillingAccount"}
    assert client.get(f"{CUSTOMERS}/{plain['id']}").json()["billingAccount"]["id"] == f"BA-{plain['id']}"


def test_accepting_a_quote_for_a_customer_without_a_billing_account_is_refused_and_writes_nothing(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    # Given a priced quote of a customer whose billing account was removed
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"]))
    quote = post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)
    assert quote["state"] == "approved"
    removed = client.patch(f"{CUSTOMERS}/{customer_id}", json={"billingAccount": None})
    assert removed.status_code == 200 and removed.json()["billingAccount"] is None
    before = counts(session_factory)
    # When the customer accepts
    refused = client.post(f"{QUOTES}/{quote['id']}/accept", json=SIGNER)
    # Then it is refused, naming the customer and what to do, and nothing was written
    assert refused.status_code == 409
    assert refused.json()["reason"] == "Billing account missing"
    assert refused.json()["message"] == (
        f"relatedParty[0].id: customer {customer_id!r} has no billing account; give it one first "
        f"(PATCH /tmf-api/customerManagement/v4/customer/{customer_id} with "
        '{"billingAccount": {"id": ..., "name": ...}}), then accept the quote'
    )
    assert counts(session_factory) == before
    assert client.get(f"{QUOTES}/{quote['id']}").json()["state"] == "approved"
    # When it gets a billing account, the same quote is accepted
    patched = client.patch(
        f"{CUSTOMERS}/{customer_id}", json={"billingAccount": {"id": "BA-9", "name": "BW"}}
    )
    assert patched.status_code == 200
    accepted = post(client, f"{QUOTES}/{quote['id']}/accept", SIGNER, 200)
    assert accepted["state"] == "accepted" and accepted["productOrder"]["id"]
