"""Durable waits for outside events (shipment delivered, technician completed) with jeopardy, and per-step
timeouts of adapter calls."""

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
SERVICES = "/tmf-api/serviceInventory/v4/service"
FALLOUT = "/tmf-api/turnupOrchestration/v1/fallout"


def _events(factory: sessionmaker[Session], event_type: str, resource_id: str) -> list[dict[str, Any]]:
    with factory() as s:
        return [
            e.payload["event"]
            for e in s.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.event_type == event_type, OutboxEvent.resource_id == resource_id)
                .order_by(OutboxEvent.event_time)
            )
        ]


def _state(client: TestClient, order_id: str) -> str:
    return str(client.get(f"{ORDERS}/{order_id}").json()["state"])


def test_field_and_shipping_steps_wait_for_events_and_raise_jeopardy(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an offering needing a shipment (jeopardy every 0.3 s, keeps waiting) and a field visit
    # (jeopardy after 0.3 s goes to fallout), then the activation
    with session_factory() as s:
        offering = make_offering(
            s,
            "Fibre with install",
            [
                {"kind": "shipment", "jeopardySeconds": 0.3, "maxJeopardies": 50},
                {"kind": "fieldVisit", "jeopardySeconds": 0.3, "onTimeout": "fallout"},
                {"adapter": "network-simulator", "action": "activate-access", "parameters": {"mbps": 500}},
            ],
        )
    order = client.post(ORDERS, json=order_body(customer_id, offering)).json()
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    assert [(p["kind"], p["adapterAction"]) for p in plan] == [
        ("shipment", "shipmentDelivered"),
        ("fieldVisit", "technicianCompleted"),
        ("serviceActivation", "activate-access"),
    ]
    service_id = plan[2]["service"]["id"]
    assert plan[0]["service"]["id"] == plan[1]["service"]["id"] == service_id
    # When the shipment is late: jeopardy events while the order stays inProgress
    wait_until(
        lambda: len(_events(session_factory, "ProductOrderJeopardyEvent", order["id"])) >= 2,
        30,
        message="two jeopardy events",
    )
    assert _state(client, order["id"]) == "inProgress"
    alert = _events(session_factory, "ProductOrderJeopardyEvent", order["id"])[0]["productOrder"][
        "jeopardyAlert"
    ][0]
    assert (alert["planItemId"], alert["awaitedEvent"], alert["count"]) == (
        plan[0]["id"],
        "shipmentDelivered",
        1,
    )
    with session_factory() as s:
        assert s.scalars(select(SimulatorLedgerEntry)).all() == []  # nothing activated yet
    # an event nobody awaits is refused, naming what is awaited
    wrong = client.post(f"{ORDERS}/{order['id']}/event", json={"eventType": "technicianCompleted2"})
    assert wrong.status_code == 409 and "shipmentDelivered" in wrong.json()["message"]
    # When the shipment is delivered
    delivered = client.post(
        f"{ORDERS}/{order['id']}/event", json={"eventType": "shipmentDelivered", "reference": "TRK-1"}
    )
    assert delivered.status_code == 201, delivered.text
    assert delivered.json()["state"] == "completed"
    # the same event twice is refused (that step no longer waits)
    twice = client.post(f"{ORDERS}/{order['id']}/event", json={"eventType": "shipmentDelivered"})
    assert twice.status_code == 409
    # Then the field visit waits, times out once and goes to fallout: order held
    entry = wait_until(
        lambda: (
            client.get(FALLOUT, params={"productOrder.id": order["id"], "state": "open"}).json() or [None]
        )[0],
        30,
        message="wait fallout",
    )
    assert entry["step"] == "wait" and entry["planItemId"] == plan[1]["id"]
    assert "technicianCompleted not reported" in entry["error"]
    assert _state(client, order["id"]) == "held"
    # When the technician reports completion (late): the fallout entry is resolved and the order goes on
    done_visit = client.post(f"{ORDERS}/{order['id']}/event", json={"eventType": "technicianCompleted"})
    assert done_visit.status_code == 201, done_visit.text
    assert client.get(f"{FALLOUT}/{entry['id']}").json()["state"] == "retried"
    final = wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order['id']}").json()
            if _state(client, order["id"]) in ("completed", "failed", "partial")
            else None
        ),
        30,
    )
    # Then the service is active, the order completed, milestones published for both events
    assert final["state"] == "completed", final
    assert client.get(f"{SERVICES}/{service_id}").json()["state"] == "active"
    milestones = [
        e["productOrder"]["milestone"][0]["name"]
        for e in _events(session_factory, "ProductOrderMilestoneEvent", order["id"])
    ]
    assert milestones == ["shipmentDelivered", "technicianCompleted"]
    states = [
        e["productOrder"]["state"]
        for e in _events(session_factory, "ProductOrderStateChangeEvent", order["id"])
    ]
    assert states == ["inProgress", "held", "inProgress", "completed"]
    after = client.post(f"{ORDERS}/{order['id']}/event", json={"eventType": "technicianCompleted"})
    assert after.status_code == 409 and "completed" in after.json()["message"]
    assert client.post(f"{ORDERS}/nope/event", json={"eventType": "x"}).status_code == 404


def test_an_event_reported_before_the_step_is_reached_is_kept(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    with session_factory() as s:
        offering = make_offering(
            s,
            "CPE shipped after port",
            [
                {
                    "adapter": "network-simulator",
                    "action": "activate-port",
                    "parameters": {"simulateFailFirst": 2},
                },
                {"kind": "shipment", "jeopardySeconds": 0.2, "onTimeout": "fallout"},
            ],
        )
    order = client.post(ORDERS, json=order_body(customer_id, offering)).json()
    # the shipment arrives while the activation is still being retried
    early = client.post(f"{ORDERS}/{order['id']}/event", json={"eventType": "shipmentDelivered"})
    assert early.status_code == 201, early.text
    final = wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order['id']}").json()
            if _state(client, order["id"]) in ("completed", "failed", "partial", "held")
            else None
        ),
        30,
    )
    assert final["state"] == "completed"
    assert _events(session_factory, "ProductOrderJeopardyEvent", order["id"]) == []
    with session_factory() as s:
        assert s.scalars(select(FalloutEntry)).all() == []


def test_an_adapter_call_that_hangs_past_its_timeout_is_a_failed_attempt(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an element that takes 1.5 s per call and a step timeout of 0.2 s (3 attempts allowed)
    with session_factory() as s:
        offering = make_offering(
            s,
            "Slow Link",
            [
                {
                    "adapter": "network-simulator",
                    "action": "activate",
                    "parameters": {"simulateLatencyMs": 1500, "stepTimeoutSeconds": 0.2},
                }
            ],
        )
    order = client.post(ORDERS, json=order_body(customer_id, offering)).json()
    # Then each attempt times out and the step lands in fallout after the last one
    entry = wait_until(
        lambda: (
            client.get(FALLOUT, params={"productOrder.id": order["id"], "state": "open"}).json() or [None]
        )[0],
        30,
        message="timeout fallout",
    )
    assert entry["step"] == "activate" and entry["attempts"] == 3
    assert "AdapterTimeout" in entry["error"] and "within 0.2s" in entry["error"]
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    assert plan[0]["attempts"] == 3 and plan[0]["state"] == "held"
    # When the abandoned calls finish in the background, the element applied the effect once: the three
    # attempts carried one idempotency key
    rows = wait_until(
        lambda: [r for r in _ledger(session_factory) if r.calls == 3], 10, message="late calls recorded"
    )
    assert [(r.operation, r.status, r.calls, r.failures) for r in rows] == [("activate", "applied", 3, 0)]
    # and staff abort: the order fails, nothing is left waiting
    assert (
        client.post(f"{FALLOUT}/{entry['id']}/abort", json={"reason": "element too slow"}).status_code == 200
    )
    final = wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order['id']}").json()
            if _state(client, order["id"]) in ("completed", "failed", "partial")
            else None
        ),
        30,
    )
    assert final["state"] == "failed"


def _ledger(factory: sessionmaker[Session]) -> list[SimulatorLedgerEntry]:
    with factory() as s:
        return list(s.scalars(select(SimulatorLedgerEntry).where(SimulatorLedgerEntry.status == "applied")))
