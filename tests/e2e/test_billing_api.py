"""Billing accounts (TMF666) and manual charges (TMF678) over HTTP, and their bad input: TMF Errors and
nothing written. Customers' billing account references become billing account records (consumer
``billing.accounts``). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.fakes.subscriber import loopback_settings
from turnup.billing.orm import BillingAccount, Charge
from turnup.kernel.audit import AuditEntry
from turnup.kernel.consumers import ConsumerWorker
from turnup.kernel.outbox import EventDelivery, OutboxEvent
from turnup.kernel.settings import Settings

ACCOUNTS = "/tmf-api/accountManagement/v4/billingAccount"
CHARGES = "/tmf-api/customerBillManagement/v4/appliedCustomerBillingRate"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"


@pytest.fixture
def settings(db_url: str) -> Settings:
    """The hub test's subscriber is on 127.0.0.1: allowed explicitly (loopback is refused otherwise)."""
    return loopback_settings(db_url)


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return {
            name: s.scalar(select(func.count()).select_from(model)) or 0
            for name, model in (
                ("account", BillingAccount),
                ("charge", Charge),
                ("audit", AuditEntry),
                ("event", OutboxEvent),
            )
        }


def customer(client: TestClient, **extra: Any) -> dict[str, Any]:
    created = client.post(CUSTOMERS, json={"name": "Quay Ltd", "country": "GB", **extra})
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_billing_accounts_are_created_read_listed_and_patched(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # Given a customer and its contact
    cust = customer(client)
    contact = client.post(
        "/tmf-api/customerManagement/v4/contact", json={"customerId": cust["id"], "name": "Ana Payables"}
    ).json()
    # When a billing account is created for it
    created = client.post(
        ACCOUNTS,
        json={
            "id": "BA-QUAY-2",
            "name": "Quay projects",
            "relatedParty": [{"id": cust["id"], "role": "customer"}],
            "billCycleDay": 15,
            "currency": "GBP",
            "paymentTermsDays": 14,
            "billToContact": {"id": contact["id"]},
        },
    )
    # Then it is a TMF666 billing account with its cycle, currency, terms and bill-to contact
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in ("id", "@type", "state", "billCycleDay", "currency", "paymentTermsDays")} == {
        "id": "BA-QUAY-2",
        "@type": "BillingAccount",
        "state": "active",
        "billCycleDay": 15,
        "currency": "GBP",
        "paymentTermsDays": 14,
    }
    assert body["billToContact"]["id"] == contact["id"]
    assert body["relatedParty"][0]["id"] == cust["id"]
    assert client.get(f"{ACCOUNTS}/BA-QUAY-2").json() == body
    listed = client.get(ACCOUNTS, params={"relatedParty.id": cust["id"], "billCycleDay": "15"})
    assert [a["id"] for a in listed.json()] == ["BA-QUAY-2"]
    # When it is patched
    patched = client.patch(f"{ACCOUNTS}/BA-QUAY-2", json={"paymentTermsDays": 30, "state": "suspended"})
    assert patched.status_code == 200
    assert (patched.json()["paymentTermsDays"], patched.json()["state"]) == (30, "suspended")
    with session_factory() as s:
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.resource_id == "BA-QUAY-2").order_by(AuditEntry.at)
        ).all()
        assert list(actions) == ["billingAccount.create", "billingAccount.update"]


def test_a_customers_billing_account_reference_becomes_a_billing_account_record(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # Given customers created with a default account and with their own reference
    plain = customer(client)
    given = customer(client, billingAccount={"id": "BA-77", "name": "Quay"})
    # When the billing consumer runs (twice: redelivery changes nothing)
    ConsumerWorker(session_factory, names=("billing.accounts",)).drain()
    ConsumerWorker(session_factory, names=("billing.accounts",)).drain()
    # Then billing holds both accounts, with the defaults
    rows = {a["id"]: a for a in client.get(ACCOUNTS).json()}
    assert set(rows) == {f"BA-{plain['id']}", "BA-77"}
    assert (rows["BA-77"]["name"], rows["BA-77"]["relatedParty"][0]["id"]) == ("Quay", given["id"])
    assert (rows["BA-77"]["billCycleDay"], rows["BA-77"]["currency"], rows["BA-77"]["paymentTermsDays"]) == (
        1,
        "GBP",
        30,
    )
    # and a customer given a new reference gets that account too
    client.patch(f"{CUSTOMERS}/{plain['id']}", json={"billingAccount": {"id": "BA-NEW", "name": "New"}})
    ConsumerWorker(session_factory, names=("billing.accounts",)).drain()
    assert client.get(f"{ACCOUNTS}/BA-NEW").json()["relatedParty"][0]["id"] == plain["id"]


def test_manual_charges_and_bad_input_are_tmf_errors_that_write_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    cust = customer(client)
    account = client.post(
        ACCOUNTS, json={"id": "BA-Q", "name": "Q", "relatedParty": [{"id": cust["id"]}]}
    ).json()
    charge = {
        "type": "oneTime",
        "name": "Site survey (PSA milestone 1)",
        "billingAccount": {"id": account["id"]},
        "amount": {"unit": "GBP", "value": "450.00"},
        "externalId": "PSA-1-M1",
    }
    before = counts(session_factory)
    # a negative price, an unknown account, a foreign currency, an unknown customer, a bad cycle day: 400
    for body, path, message in [
        ({**charge, "amount": {"unit": "GBP", "value": "-5.00"}}, CHARGES, "amount"),
        (
            {**charge, "billingAccount": {"id": "BA-NOPE"}},
            CHARGES,
            "billingAccount.id: unknown billing account",
        ),
        ({**charge, "amount": {"unit": "EUR", "value": "5.00"}}, CHARGES, "amount.unit: 'EUR'"),
        ({"name": "X", "relatedParty": [{"id": "nobody"}]}, ACCOUNTS, "relatedParty[0].id: unknown customer"),
        ({"name": "X", "relatedParty": [{"id": cust["id"]}], "billCycleDay": 31}, ACCOUNTS, "billCycleDay"),
    ]:
        refused = client.post(path, json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["@type"] == "Error" and message in refused.json()["message"], refused.json()
    assert (
        client.post(
            ACCOUNTS, json={"id": "BA-Q", "name": "Q", "relatedParty": [{"id": cust["id"]}]}
        ).status_code
        == 409
    )
    assert client.patch(f"{ACCOUNTS}/BA-Q", json={"billCycleDay": 0}).status_code == 400
    assert client.patch(f"{ACCOUNTS}/BA-NOPE", json={"name": "x"}).status_code == 404
    assert counts(session_factory) == before
    # a good charge is written once; the same externalId again is a 409 and writes nothing
    made = client.post(CHARGES, json=charge)
    assert made.status_code == 201, made.text
    assert (made.json()["type"], made.json()["taxExcludedAmount"]) == (
        "oneTime",
        {"unit": "GBP", "value": "450.00"},
    )
    credit = client.post(
        CHARGES,
        json={
            **charge,
            "type": "credit",
            "externalId": "GOODWILL-1",
            "amount": {"unit": "GBP", "value": "25"},
        },
    )
    assert credit.json()["taxExcludedAmount"] == {"unit": "GBP", "value": "-25.00"}
    middle = counts(session_factory)
    assert client.post(CHARGES, json=charge).status_code == 409
    assert counts(session_factory) == middle
    # and once the account has charges, its bill cycle cannot move (409), nothing written
    assert client.patch(f"{ACCOUNTS}/BA-Q", json={"billCycleDay": 5}).status_code == 409
    assert counts(session_factory) == middle


def test_charges_reach_subscribers_of_the_customer_bill_hub(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # Given an external billing system subscribed to charge events of customerBillManagement
    hub = client.post(
        "/tmf-api/customerBillManagement/v4/hub",
        json={
            "callback": "http://127.0.0.1:9/billing",
            "query": "eventType=AppliedCustomerBillingRateCreateEvent",
        },
    )
    assert hub.status_code == 201, hub.text
    cust = customer(client)
    client.post(ACCOUNTS, json={"id": "BA-H", "name": "H", "relatedParty": [{"id": cust["id"]}]})
    # When a charge is made
    made = client.post(
        CHARGES,
        json={
            "name": "Cabling",
            "billingAccount": {"id": "BA-H"},
            "amount": {"unit": "GBP", "value": "80.00"},
            "externalId": "TM-1",
        },
    ).json()
    # Then exactly that event is owed to the subscriber, carrying the charge
    with session_factory() as s:
        owed = s.execute(
            select(OutboxEvent.event_type, OutboxEvent.payload)
            .join(EventDelivery, EventDelivery.event_id == OutboxEvent.id)
            .where(EventDelivery.subscription_id == hub.json()["id"])
        ).all()
    assert [(t, p["event"]["appliedCustomerBillingRate"]["id"]) for t, p in owed] == [
        ("AppliedCustomerBillingRateCreateEvent", made["id"])
    ]
