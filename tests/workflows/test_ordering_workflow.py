"""Hand-made product orders through the API, run to the end by the order workflow (in-process DBOS)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel.outbox import OutboxEvent
from turnup.ordering.orm import FalloutEntry, PlanItem, ProductOrder
from turnup.provisioning.orm import SimulatorLedgerEntry
from turnup.service_inventory.orm import Service
from turnup.testing import order_body, wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
CANCEL = "/tmf-api/productOrderingManagement/v4/cancelProductOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"
FALLOUT = "/tmf-api/turnupOrchestration/v1/fallout"


def _order(client: TestClient, customer_id: str, *offerings: str, quantity: int = 1) -> dict[str, Any]:
    response = client.post(ORDERS, json=order_body(customer_id, *offerings, quantity=quantity))
    assert response.status_code == 201, response.text
    return response.json()


def _wait_state(client: TestClient, order_id: str, *states: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = client.get(f"{ORDERS}/{order_id}").json()
        return body if body["state"] in states else None

    return wait_until(check, timeout, message=f"order {order_id} in {states}")


def _events(
    factory: sessionmaker[Session], event_type: str, resource_id: str | None = None
) -> list[OutboxEvent]:
    with factory() as s:
        stmt = (
            select(OutboxEvent).where(OutboxEvent.event_type == event_type).order_by(OutboxEvent.event_time)
        )
        if resource_id:
            stmt = stmt.where(OutboxEvent.resource_id == resource_id)
        return list(s.scalars(stmt))


def _open_fallout(client: TestClient, order_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        items = client.get(FALLOUT, params={"productOrder.id": order_id, "state": "open"}).json()
        return items[0] if items else None

    return wait_until(check, 60, message=f"open fallout for {order_id}")


def test_plan_is_inspectable_before_the_workflow_runs(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    # Given no orchestrator running, when an order for fibre and 2 colocation units is accepted
    order = _order(client, customer_id, catalog["fibre"])
    colo = _order(client, customer_id, catalog["colo"], quantity=2)
    # Then it is acknowledged, with a plan of designed services that nothing has touched yet
    assert order["state"] == "acknowledged"
    assert [i["state"] for i in order["productOrderItem"]] == ["acknowledged"]
    plan = client.get(f"{ORDERS}/{colo['id']}/plan").json()
    assert [(p["adapterAction"], p["state"]) for p in plan] == [
        ("cross-connect", "acknowledged"),
        ("power-on", "acknowledged"),
    ] * 2
    assert plan[0]["dependsOn"] == [] and plan[1]["dependsOn"] == [plan[0]["id"]]
    assert plan[2]["dependsOn"] == [] and plan[3]["dependsOn"] == [plan[2]["id"]]
    service = client.get(f"{SERVICES}/{plan[0]['service']['id']}").json()
    assert service["state"] == "designed" and service["startDate"] is None
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(SimulatorLedgerEntry)) == 0
    assert [
        e.payload["event"]["productOrder"]["state"]
        for e in _events(session_factory, "ProductOrderCreateEvent", order["id"])
    ] == ["acknowledged"]


def test_orders_go_from_acknowledged_to_completed_with_active_services_and_events(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given fibre, voice (x2) and colocation orders
    fibre = _order(client, customer_id, catalog["fibre"])
    voice = _order(client, customer_id, catalog["voice"], quantity=2)
    colo = _order(client, customer_id, catalog["colo"])
    # When the workflows run
    for order in (fibre, voice, colo):
        done = _wait_state(client, order["id"], "completed", "failed", "partial")
        # Then each order is completed, its items too, and every planned service is active
        assert done["state"] == "completed", done
        assert done["completionDate"] is not None
        assert {i["state"] for i in done["productOrderItem"]} == {"completed"}
        plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
        assert {p["state"] for p in plan} == {"completed"}
        for p in plan:
            service = client.get(f"{SERVICES}/{p['service']['id']}").json()
            assert service["state"] == "active" and service["startDate"] is not None
            assert [h["state"] for h in service["serviceOrderItem"]] == ["designed", "active"]
        # and the order went through acknowledged -> inProgress -> completed, published once each
        states = [
            e.payload["event"]["productOrder"]["state"]
            for e in _events(session_factory, "ProductOrderStateChangeEvent", order["id"])
        ]
        assert states == ["inProgress", "completed"]
    with session_factory() as s:
        ledger = s.scalars(select(SimulatorLedgerEntry)).all()
    # 1 fibre + 2 voice seats + 2 colocation steps, each applied exactly once, each called once
    assert len(ledger) == 5
    assert {(r.status, r.calls, r.failures) for r in ledger} == {("applied", 1, 0)}
    activated = _events(session_factory, "ServiceActivatedEvent")
    assert len(activated) == 5 and all(
        e.payload["event"]["serviceDelivery"]["activationDate"] for e in activated
    )
    assert len(_events(session_factory, "ServiceStateChangeEvent")) == 5


def test_transient_adapter_failures_are_retried_with_backoff(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an offering whose network element refuses the first 2 calls (3 attempts allowed)
    order = _order(client, customer_id, catalog["flaky"])
    done = _wait_state(client, order["id"], "completed", "held", "failed")
    assert done["state"] == "completed"
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    assert plan[0]["attempts"] == 3 and "unavailable" in plan[0]["lastError"]
    with session_factory() as s:
        row = s.scalars(select(SimulatorLedgerEntry)).one()
        assert (row.status, row.calls, row.failures) == ("applied", 3, 2)
        assert s.scalar(select(func.count()).select_from(FalloutEntry)) == 0


def test_failing_for_good_lands_in_fallout_and_retry_completes(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an element refusing 3 calls and 3 attempts allowed
    order = _order(client, customer_id, catalog["broken"])
    entry = _open_fallout(client, order["id"])
    # Then the order is held, the entry says what failed
    held = client.get(f"{ORDERS}/{order['id']}").json()
    assert held["state"] == "held" and entry["step"] == "activate" and entry["attempts"] == 3
    assert "unavailable" in entry["error"]
    # When staff retry
    retried = client.post(f"{FALLOUT}/{entry['id']}/retry", json={})
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "retried"
    done = _wait_state(client, order["id"], "completed", "failed", "partial")
    assert done["state"] == "completed"
    states = [
        e.payload["event"]["productOrder"]["state"]
        for e in _events(session_factory, "ProductOrderStateChangeEvent", order["id"])
    ]
    assert states == ["inProgress", "held", "inProgress", "completed"]
    # And a decision cannot be taken twice
    again = client.post(f"{FALLOUT}/{entry['id']}/abort", json={})
    assert again.status_code == 409


def test_skip_needs_a_reason_and_leaves_the_order_partial(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an order for fibre and a link whose adapter answers garbage (not retried)
    order = _order(client, customer_id, catalog["fibre"], catalog["garbled"])
    entry = _open_fallout(client, order["id"])
    assert entry["attempts"] == 1 and "unexpected status" in entry["error"]
    no_reason = client.post(f"{FALLOUT}/{entry['id']}/skip", json={})
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["message"]
    assert client.get(f"{FALLOUT}/{entry['id']}").json()["state"] == "open"
    # When staff skip it with a reason
    skipped = client.post(f"{FALLOUT}/{entry['id']}/skip", json={"reason": "customer declined the link"})
    assert skipped.status_code == 200, skipped.text
    done = _wait_state(client, order["id"], "completed", "failed", "partial")
    # Then the fibre is active, the link's service never was, and the order is partial
    assert done["state"] == "partial"
    assert [i["state"] for i in done["productOrderItem"]] == ["completed", "failed"]
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    assert [(p["state"], p["skipReason"]) for p in plan] == [
        ("completed", None),
        ("cancelled", "customer declined the link"),
    ]
    assert client.get(f"{SERVICES}/{plan[1]['service']['id']}").json()["state"] == "terminated"


def test_abort_compensates_what_was_activated(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given fibre then a broken link: the fibre gets activated, the link falls out
    order = _order(client, customer_id, catalog["fibre"], catalog["broken"])
    entry = _open_fallout(client, order["id"])
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    fibre_service = plan[0]["service"]["id"]
    assert client.get(f"{SERVICES}/{fibre_service}").json()["state"] == "active"
    # When staff abort
    aborted = client.post(f"{FALLOUT}/{entry['id']}/abort", json={"reason": "site not ready"})
    assert aborted.status_code == 200, aborted.text
    done = _wait_state(client, order["id"], "completed", "failed", "partial")
    # Then the fibre is deactivated (through the adapter, once) and the order failed
    assert done["state"] == "failed"
    fibre = client.get(f"{SERVICES}/{fibre_service}").json()
    assert fibre["state"] == "terminated" and fibre["endDate"] is not None
    assert [h["state"] for h in fibre["serviceOrderItem"]] == ["designed", "active", "terminated"]
    with session_factory() as s:
        ops = sorted((r.operation, r.status) for r in s.scalars(select(SimulatorLedgerEntry)))
    assert ops == [("activate", "applied"), ("activate", "failing"), ("deactivate", "applied")]
    terminated = _events(session_factory, "ServiceTerminatedEvent", fibre_service)
    assert len(terminated) == 1


def test_bad_orders_are_refused_and_leave_nothing_behind(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    cases = [
        (order_body(customer_id, "no-such-offering"), 400, "productOrderItem[0].productOffering.id"),
        (order_body(customer_id, catalog["retired"]), 400, "retired"),
        (order_body(customer_id, catalog["alien"]), 400, "carrier-pigeon"),
        (order_body("nobody", catalog["fibre"]), 400, "relatedParty[0].id"),
        ({**order_body(customer_id, catalog["fibre"]), "colour": "red"}, 400, ""),
        (
            {
                "relatedParty": [{"id": customer_id}],
                "productOrderItem": [
                    {"id": "1", "action": "modify", "productOffering": {"id": catalog["fibre"]}}
                ],
            },
            400,
            "action",
        ),
        (
            {
                "relatedParty": [{"id": customer_id}],
                "productOrderItem": [
                    {"id": "1", "productOffering": {"id": catalog["fibre"], "name": "Wrong"}}
                ],
            },
            400,
            "name",
        ),
    ]
    for body, status, text in cases:
        response = client.post(ORDERS, json=body)
        assert response.status_code == status, (body, response.text)
        assert text in response.json()["message"]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(ProductOrder)) == 0
        assert s.scalar(select(func.count()).select_from(PlanItem)) == 0
        assert s.scalar(select(func.count()).select_from(Service)) == 0


def test_cancel_before_start_and_illegal_transitions_are_409(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    order = _order(client, customer_id, catalog["fibre"])
    cancelled = client.post(CANCEL, json={"productOrder": {"id": order["id"]}, "cancellationReason": "dup"})
    assert cancelled.status_code == 201, cancelled.text
    body = client.get(f"{ORDERS}/{order['id']}").json()
    assert body["state"] == "cancelled" and body["productOrderItem"][0]["state"] == "cancelled"
    again = client.post(CANCEL, json={"productOrder": {"id": order["id"]}})
    assert again.status_code == 409
    assert "cancelled productOrder cannot be cancelled" in again.json()["message"]
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    assert client.get(f"{SERVICES}/{plan[0]['service']['id']}").json()["state"] == "terminated"
