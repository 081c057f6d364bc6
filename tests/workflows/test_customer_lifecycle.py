"""The customer lifecycle follows its services through real orders: prospective -> active on the first
active service -> inactive when none remains -> active again on a new one, through the durable consumer
``accounts.customer_lifecycle`` (audited, CustomerStateChangeEvent), idempotent under redelivery.

The in-process orchestrator runs a consumer worker too; ``_settled`` waits until this consumer owes nothing
(and drains in this thread as well, so the test does not depend on the worker's timing)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel.audit import AuditEntry
from turnup.kernel.consumers import PENDING, ConsumerInbox, ConsumerWorker
from turnup.kernel.outbox import OutboxEvent
from turnup.testing import order_body, wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"


def _completed(client: TestClient, body: dict[str, Any]) -> str:
    order = client.post(ORDERS, json=body)
    assert order.status_code == 201, order.text
    order_id = str(order.json()["id"])
    final = wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if client.get(f"{ORDERS}/{order_id}").json()["state"] in ("completed", "failed", "partial")
            else None
        ),
        60,
        message="order end",
    )
    assert final["state"] == "completed", final
    return order_id


def _disconnect(client: TestClient, customer_id: str, service_id: str) -> None:
    _completed(
        client,
        {
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [{"id": "1", "action": "delete", "product": {"id": service_id}}],
        },
    )


def _settled(factory: sessionmaker[Session]) -> None:
    def owed() -> bool:
        ConsumerWorker(factory).drain()
        with factory() as s:
            return not s.scalar(
                select(ConsumerInbox.seq)
                .where(
                    ConsumerInbox.consumer == "accounts.customer_lifecycle", ConsumerInbox.status != "done"
                )
                .limit(1)
            )

    wait_until(owed, 30, message="lifecycle consumer settled")


def _status(client: TestClient, customer_id: str) -> str:
    return str(client.get(f"{CUSTOMERS}/{customer_id}").json()["status"])


def _state_events(factory: sessionmaker[Session], customer_id: str) -> list[str]:
    with factory() as s:
        return [
            e.payload["event"]["customer"]["status"]
            for e in s.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.event_type == "CustomerStateChangeEvent")
                .order_by(OutboxEvent.event_time)
            )
            if e.payload["event"]["customer"]["id"] == customer_id
        ]


def _audited(factory: sessionmaker[Session], customer_id: str) -> list[tuple[str, str]]:
    with factory() as s:
        return [
            (a.details["from"], a.details["to"])
            for a in s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "customer.lifecycle", AuditEntry.resource_id == customer_id)
                .order_by(AuditEntry.at)
            )
        ]


def test_a_customer_goes_prospective_active_inactive_and_back_through_real_orders(
    client: TestClient, catalog: dict[str, str], session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    def drain() -> None:
        _settled(session_factory)

    # Given a new customer (prospective) with two services delivered by one order
    customer = client.post(CUSTOMERS, json={"name": "Lifecycle Ltd"}).json()
    customer_id = customer["id"]
    assert customer["status"] == "prospective"
    order_id = _completed(client, order_body(customer_id, catalog["fibre"], catalog["voice"]))
    fibre, voice = (p["service"]["id"] for p in client.get(f"{ORDERS}/{order_id}/plan").json())
    # When the consumers run: the customer is active (once, whatever the number of services)
    drain()
    assert _status(client, customer_id) == "active"
    assert _state_events(session_factory, customer_id) == ["active"]
    assert _audited(session_factory, customer_id) == [("prospective", "active")]
    # When one service is disconnected: still active (one remains)
    _disconnect(client, customer_id, fibre)
    drain()
    assert _status(client, customer_id) == "active"
    # When the last one is disconnected: inactive
    _disconnect(client, customer_id, voice)
    drain()
    assert _status(client, customer_id) == "inactive"
    assert _state_events(session_factory, customer_id) == ["active", "inactive"]
    # Redelivery (every lifecycle event handled again) changes nothing
    with session_factory() as s:
        redelivered = s.execute(
            update(ConsumerInbox)
            .where(ConsumerInbox.consumer == "accounts.customer_lifecycle")
            .values(status=PENDING, done_at=None)
        ).rowcount
        s.commit()
    assert redelivered == 4  # 2 activations, 2 terminations
    drain()
    assert _status(client, customer_id) == "inactive"
    assert _state_events(session_factory, customer_id) == ["active", "inactive"]
    assert _audited(session_factory, customer_id) == [("prospective", "active"), ("active", "inactive")]
    # When a new service is delivered: active again
    _completed(client, order_body(customer_id, catalog["fibre"]))
    drain()
    assert _status(client, customer_id) == "active"
    assert _state_events(session_factory, customer_id) == ["active", "inactive", "active"]
    assert _audited(session_factory, customer_id) == [
        ("prospective", "active"),
        ("active", "inactive"),
        ("inactive", "active"),
    ]


def test_an_operator_suspended_customer_is_left_alone(
    client: TestClient, catalog: dict[str, str], session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    # Given a customer the operator suspended
    customer_id = client.post(CUSTOMERS, json={"name": "Held Ltd", "status": "active"}).json()["id"]
    assert client.patch(f"{CUSTOMERS}/{customer_id}", json={"status": "suspended"}).status_code == 200
    # When a service of theirs becomes active and the consumers run
    _completed(client, order_body(customer_id, catalog["fibre"]))
    _settled(session_factory)
    # Then the customer stays suspended; no lifecycle change was made
    assert _status(client, customer_id) == "suspended"
    assert _audited(session_factory, customer_id) == []
