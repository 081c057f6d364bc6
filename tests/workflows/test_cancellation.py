"""TMF622 cancel flow for orders in progress: the workflow stops, undoes what it did, releases, ends
cancelled."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel.outbox import OutboxEvent
from turnup.ordering.orm import FalloutEntry
from turnup.provisioning.orm import SimulatorLedgerEntry
from turnup.testing import make_offering, order_body, wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
CANCEL = "/tmf-api/productOrderingManagement/v4/cancelProductOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"
FALLOUT = "/tmf-api/turnupOrchestration/v1/fallout"


def _state(client: TestClient, order_id: str) -> str:
    return str(client.get(f"{ORDERS}/{order_id}").json()["state"])


def _ledger(factory: sessionmaker[Session]) -> dict[str, tuple[str, int]]:
    with factory() as s:
        return {e.idempotency_key: (e.operation, e.calls) for e in s.scalars(select(SimulatorLedgerEntry))}


def _order_states(factory: sessionmaker[Session], order_id: str) -> list[str]:
    with factory() as s:
        return [
            e.payload["event"]["productOrder"]["state"]
            for e in s.scalars(
                select(OutboxEvent)
                .where(
                    OutboxEvent.event_type == "ProductOrderStateChangeEvent",
                    OutboxEvent.resource_id == order_id,
                )
                .order_by(OutboxEvent.event_time)
            )
        ]


def _wait_final(client: TestClient, order_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if _state(client, order_id) in ("completed", "failed", "partial", "cancelled")
            else None
        ),
        30,
        message="order final",
    )


def test_cancelling_an_order_waiting_for_a_technician_undoes_the_activation_and_ends_cancelled(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an order whose first service is activated, then waits for a field visit, then activates a second
    with session_factory() as s:
        offering = make_offering(
            s,
            "Fibre with install",
            [
                {"adapter": "network-simulator", "action": "activate-port", "parameters": {"port": 7}},
                {"kind": "fieldVisit", "jeopardySeconds": 3600},
                {"adapter": "network-simulator", "action": "activate-access", "parameters": {"mbps": 500}},
            ],
        )
    order = client.post(ORDERS, json=order_body(customer_id, offering)).json()
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    wait_until(
        lambda: client.get(f"{ORDERS}/{order['id']}/plan").json()[1]["state"] == "inProgress",
        30,
        message="field visit waiting",
    )
    assert client.get(f"{SERVICES}/{plan[0]['service']['id']}").json()["state"] == "active"
    # When the customer cancels while the order is in progress
    response = client.post(
        CANCEL, json={"productOrder": {"id": order["id"]}, "cancellationReason": "customer moved out"}
    )
    # Then the request is accepted and in progress, then done
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "inProgress"
    assert response.json()["productOrder"]["id"] == order["id"]
    final = _wait_final(client, order["id"])
    assert final["state"] == "cancelled" and final["productOrderItem"][0]["state"] == "cancelled"
    done = client.get(f"{CANCEL}/{order['id']}").json()
    assert (done["state"], done["cancellationReason"]) == ("done", "customer moved out")
    assert done["effectiveCancellationDate"] == final["completionDate"]
    # the activated service was deactivated through the adapter and terminated; the second was never activated
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    assert [p["state"] for p in plan] == ["cancelled", "cancelled", "cancelled"]
    first, second = plan[0]["service"]["id"], plan[2]["service"]["id"]
    assert second == plan[1]["service"]["id"]  # the field visit prepares the service activated after it
    assert client.get(f"{SERVICES}/{first}").json()["state"] == "terminated"
    assert client.get(f"{SERVICES}/{second}").json()["state"] == "terminated"
    assert _ledger(session_factory) == {
        f"{plan[0]['id']}:activate": ("activate", 1),
        f"{plan[0]['id']}:deactivate": ("deactivate", 1),
    }
    assert _order_states(session_factory, order["id"]) == ["inProgress", "pendingCancellation", "cancelled"]
    # and nothing more can happen to it
    late = client.post(f"{ORDERS}/{order['id']}/event", json={"eventType": "technicianCompleted"})
    assert late.status_code == 409
    again = client.post(CANCEL, json={"productOrder": {"id": order["id"]}})
    assert (
        again.status_code == 409 and "cancelled productOrder cannot be cancelled" in again.json()["message"]
    )


def test_cancelling_a_held_order_resolves_its_fallout_entry(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an order with a working item then a broken one, held in the fallout queue
    order = client.post(ORDERS, json=order_body(customer_id, catalog["fibre"], catalog["broken"])).json()
    entry = wait_until(
        lambda: (
            client.get(FALLOUT, params={"productOrder.id": order["id"], "state": "open"}).json() or [None]
        )[0],
        30,
        message="fallout",
    )
    assert _state(client, order["id"]) == "held"
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    # When it is cancelled
    response = client.post(CANCEL, json={"productOrder": {"id": order["id"]}})
    assert response.status_code == 201 and response.json()["state"] == "inProgress"
    # Then the entry is closed as cancelled (staff can no longer decide), the fibre is deactivated
    assert client.get(f"{FALLOUT}/{entry['id']}").json()["state"] == "cancelled"
    assert client.post(f"{FALLOUT}/{entry['id']}/retry", json={}).status_code == 409
    final = _wait_final(client, order["id"])
    assert final["state"] == "cancelled"
    assert [client.get(f"{SERVICES}/{p['service']['id']}").json()["state"] for p in plan] == [
        "terminated",
        "terminated",
    ]
    ledger = _ledger(session_factory)
    assert ledger[f"{plan[0]['id']}:deactivate"] == ("deactivate", 1)
    assert f"{plan[1]['id']}:deactivate" not in ledger  # never activated, nothing to undo
    assert _order_states(session_factory, order["id"]) == [
        "inProgress",
        "held",
        "pendingCancellation",
        "cancelled",
    ]
    with session_factory() as s:
        assert [e.state for e in s.scalars(select(FalloutEntry))] == ["cancelled"]


def test_a_completed_order_cannot_be_cancelled(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    order = client.post(ORDERS, json=order_body(customer_id, catalog["fibre"])).json()
    assert _wait_final(client, order["id"])["state"] == "completed"
    response = client.post(CANCEL, json={"productOrder": {"id": order["id"]}})
    assert response.status_code == 409
    assert response.json()["message"] == "state: a completed productOrder cannot be cancelled"
    assert client.get(f"{CANCEL}/{order['id']}").status_code == 404
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    assert client.get(f"{SERVICES}/{plan[0]['service']['id']}").json()["state"] == "active"
    assert _order_states(session_factory, order["id"]) == ["inProgress", "completed"]
    assert client.post(CANCEL, json={"productOrder": {"id": "nope"}}).status_code == 404
