"""MACD as product orders through the same workflow: modify, suspend/resume, disconnect; bad input; one
order at a time per service (two real threads, SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory.logical import numbers
from turnup.inventory.logical import services as logical
from turnup.inventory.logical.orm import LogicalBlock, TelephoneNumber
from turnup.inventory.logical.schemas import AllocationRequest, NumberImport, NumberUpdate, PoolCreate
from turnup.kernel import clock
from turnup.kernel.errors import Conflict
from turnup.kernel.outbox import OutboxEvent
from turnup.ordering import services as ordering
from turnup.ordering.orm import PlanItem, ProductOrder
from turnup.ordering.schemas import ProductOrderCreate
from turnup.provisioning.orm import SimulatorLedgerEntry
from turnup.service_inventory.orm import Service
from turnup.testing import make_customer, order_body, wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"


def change_body(customer_id: str, service_id: str, action: str = "modify", **product: Any) -> dict[str, Any]:
    return {
        "relatedParty": [{"id": customer_id, "role": "customer"}],
        "productOrderItem": [{"id": "1", "action": action, "product": {"id": service_id, **product}}],
    }


def _post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(ORDERS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _done(client: TestClient, order_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = client.get(f"{ORDERS}/{order_id}").json()
        return body if body["state"] in ("completed", "failed", "partial", "held", "cancelled") else None

    return wait_until(check, 60, message=f"order {order_id} to end")


def _active_service(client: TestClient, customer_id: str, offering: str) -> str:
    order = _post(client, order_body(customer_id, offering))
    assert _done(client, order["id"])["state"] == "completed"
    service_id = client.get(f"{ORDERS}/{order['id']}/plan").json()[0]["service"]["id"]
    assert client.get(f"{SERVICES}/{service_id}").json()["state"] == "active"
    return service_id


def _events(
    factory: sessionmaker[Session], event_type: str, resource_id: str | None = None
) -> list[dict[str, Any]]:
    with factory() as s:
        stmt = (
            select(OutboxEvent).where(OutboxEvent.event_type == event_type).order_by(OutboxEvent.event_time)
        )
        if resource_id:
            stmt = stmt.where(OutboxEvent.resource_id == resource_id)
        return [e.payload["event"] for e in s.scalars(stmt)]


def _ledger(factory: sessionmaker[Session], service_id: str) -> list[tuple[str, str, int]]:
    with factory() as s:
        rows = s.scalars(
            select(SimulatorLedgerEntry)
            .where(SimulatorLedgerEntry.service_id == service_id)
            .order_by(SimulatorLedgerEntry.first_call_at)
        ).all()
        return [(r.operation, r.status, r.calls) for r in rows]


def test_modify_changes_bandwidth_through_the_adapter_once(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an active 1G fibre service
    service_id = _active_service(client, customer_id, catalog["fibre"])
    # When a modify order changes its bandwidth to 2000 Mbit/s
    order = _post(
        client, change_body(customer_id, service_id, productCharacteristic=[{"name": "mbps", "value": 2000}])
    )
    assert order["productOrderItem"][0]["action"] == "modify"
    done = _done(client, order["id"])
    # Then the order completes, the adapter was asked once, and the inventory shows the new bandwidth
    assert done["state"] == "completed", done
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    assert [(p["action"], p["adapterAction"], p["state"]) for p in plan] == [
        ("modify", "modify", "completed")
    ]
    service = client.get(f"{SERVICES}/{service_id}").json()
    assert service["state"] == "active"
    assert {c["name"]: c["value"] for c in service["serviceCharacteristic"]} == {"mbps": 2000}
    assert [(h["itemAction"], h["state"]) for h in service["serviceOrderItem"]] == [
        ("add", "designed"),
        ("add", "active"),
        ("modify", "active"),
    ]
    assert _ledger(session_factory, service_id) == [("activate", "applied", 1), ("modify", "applied", 1)]
    # and billing hears about it, with old and new values
    modified = _events(session_factory, "ServiceModifiedEvent", service_id)
    assert len(modified) == 1
    assert modified[0]["serviceDelivery"]["changes"] == {"mbps": 2000}
    assert modified[0]["serviceDelivery"]["previous"] == {"mbps": 1000}
    # and the plan item was published as a TMF641 service order going inProgress? no: straight to completed
    so_states = [
        e["serviceOrder"]["state"]
        for e in _events(session_factory, "ServiceOrderStateChangeEvent")
        if e["serviceOrder"]["id"] == plan[0]["id"]
    ]
    assert so_states == ["completed"]


def test_suspend_then_resume_then_disconnect_of_a_suspended_service(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    service_id = _active_service(client, customer_id, catalog["voice"])
    # When suspended (modify with product.status = suspended)
    suspend = _post(client, change_body(customer_id, service_id, status="suspended"))
    assert _done(client, suspend["id"])["state"] == "completed"
    assert client.get(f"{SERVICES}/{service_id}").json()["state"] == "inactive"
    # a second suspend is refused: the service is not active
    again = client.post(ORDERS, json=change_body(customer_id, service_id, status="suspended"))
    assert again.status_code == 409 and "inactive" in again.json()["message"]
    # When resumed (modify with product.status = active)
    resume = _post(client, change_body(customer_id, service_id, status="active"))
    assert _done(client, resume["id"])["state"] == "completed"
    assert client.get(f"{SERVICES}/{service_id}").json()["state"] == "active"
    # suspend again, then disconnect while suspended (allowed: active or suspended services disconnect)
    assert (
        _done(client, _post(client, change_body(customer_id, service_id, status="suspended"))["id"])["state"]
        == "completed"
    )
    delete = _post(client, change_body(customer_id, service_id, action="delete"))
    assert _done(client, delete["id"])["state"] == "completed"
    service = client.get(f"{SERVICES}/{service_id}").json()
    assert service["state"] == "terminated" and service["endDate"] is not None
    assert [h["state"] for h in service["serviceOrderItem"]] == [
        "designed",
        "active",
        "inactive",
        "active",
        "inactive",
        "terminated",
    ]
    assert [op for op, _, _ in _ledger(session_factory, service_id)] == [
        "activate",
        "suspend",
        "resume",
        "suspend",
        "deactivate",
    ]
    assert {(st, calls) for _, st, calls in _ledger(session_factory, service_id)} == {("applied", 1)}
    # Then billing got one delivery event per change, with timestamps
    facts = [
        (name, e["serviceDelivery"]["state"])
        for name in (
            "ServiceActivatedEvent",
            "ServiceSuspendedEvent",
            "ServiceResumedEvent",
            "ServiceTerminatedEvent",
        )
        for e in _events(session_factory, name, service_id)
    ]
    assert sorted(facts) == sorted(
        [
            ("ServiceActivatedEvent", "active"),
            ("ServiceSuspendedEvent", "inactive"),
            ("ServiceResumedEvent", "active"),
            ("ServiceSuspendedEvent", "inactive"),
            ("ServiceTerminatedEvent", "terminated"),
        ]
    )
    assert all(
        e["serviceDelivery"]["at"] for e in _events(session_factory, "ServiceSuspendedEvent", service_id)
    )
    # nothing can change a terminated service
    for body in (
        change_body(customer_id, service_id, action="delete"),
        change_body(customer_id, service_id, productCharacteristic=[{"name": "codec", "value": "x"}]),
    ):
        response = client.post(ORDERS, json=body)
        assert response.status_code == 409, response.text
        assert f"service {service_id} is terminated" in response.json()["message"]


def test_disconnect_releases_logical_resources_and_asks_for_the_cpe_back(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    service_id = _active_service(client, customer_id, catalog["fibre"])
    # Given the service carries an IP prefix (pool with 1 h quarantine), a business number and a CPE
    with session_factory() as s:
        logical.create_pool(s, PoolCreate(poolType="ipAggregate", name="agg", prefix="10.0.0.0/8"), "t")
        pool = logical.create_pool(
            s, PoolCreate(poolType="ipPool", name="cust", prefix="10.9.0.0/24", quarantineSeconds=3600), "t"
        )
        block, _ = logical.allocate(s, pool.id, AllocationRequest(prefixLength=30), "t")
        block_id = block.id
    with session_factory() as s:
        numbers.import_numbers(
            s, NumberImport(start="+442079460000", end="+442079460001", numberClass="business"), "t"
        )
        number = s.scalars(select(TelephoneNumber).order_by(TelephoneNumber.digits)).first()
        assert number is not None
        number_id = number.id
        numbers.update_number(s, number_id, NumberUpdate(status="assigned", serviceId=service_id), "t")
    with session_factory() as s:
        service = s.get(Service, service_id)
        assert service is not None
        service.resources = [
            {"resourceType": "logicalResource", "id": block_id, "value": "10.9.0.0/30"},
            {"resourceType": "telephoneNumber", "id": number_id},
            {"resourceType": "physicalResource", "serial": "CPE-0001", "sku": "ONT-G1"},
        ]
        s.commit()
    before = clock.now()
    # When the service is disconnected
    order = _post(client, change_body(customer_id, service_id, action="delete"))
    assert _done(client, order["id"])["state"] == "completed"
    # Then it is terminated, the prefix sits in quarantine for the pool's period, the number ages
    assert client.get(f"{SERVICES}/{service_id}").json()["state"] == "terminated"
    with session_factory() as s:
        row = s.get(LogicalBlock, block_id)
        assert row is not None and row.state == "quarantine"
        assert before + timedelta(seconds=3590) < row.until <= clock.now() + timedelta(seconds=3600)
        n = s.get(TelephoneNumber, number_id)
        assert n is not None and n.state == "aging" and n.service_id is None
        assert n.until is not None and n.until - before >= timedelta(days=364)
    # and one CPE return was requested with the unit's serial
    returns = _events(session_factory, "CpeReturnRequestedEvent")
    assert len(returns) == 1
    assert returns[0]["cpeReturn"]["serviceId"] == service_id
    assert returns[0]["cpeReturn"]["units"] == [{"serial": "CPE-0001", "sku": "ONT-G1"}]
    assert [op for op, _, _ in _ledger(session_factory, service_id)] == ["activate", "deactivate"]


def test_bad_macd_orders_are_refused_and_leave_nothing_behind(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    active = _active_service(client, customer_id, catalog["fibre"])
    # a second service, disconnected earlier (terminated)
    dead = _active_service(client, customer_id, catalog["voice"])
    assert (
        _done(client, _post(client, change_body(customer_id, dead, action="delete"))["id"])["state"]
        == "completed"
    )
    with session_factory() as s:
        stranger = make_customer(s, "Stranger plc")
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            change_body(customer_id, "no-such-service", productCharacteristic=[{"name": "mbps", "value": 1}]),
            400,
            "productOrderItem[0].product.id: unknown product/service",
        ),
        (
            change_body(stranger, active, productCharacteristic=[{"name": "mbps", "value": 1}]),
            400,
            "belongs to another customer",
        ),
        (change_body(customer_id, active), 400, "nothing to modify"),
        (
            change_body(
                customer_id, active, status="suspended", productCharacteristic=[{"name": "mbps", "value": 1}]
            ),
            400,
            "not both",
        ),
        (change_body(customer_id, active, action="delete", status="suspended"), 400, "takes no status"),
        (change_body(customer_id, active, status="active"), 409, "only inactive services can be resumed"),
        (
            {"relatedParty": [{"id": customer_id}], "productOrderItem": [{"id": "1", "action": "delete"}]},
            400,
            "productOrderItem[0].product: required",
        ),
        (
            {
                "relatedParty": [{"id": customer_id}],
                "productOrderItem": [
                    {"id": "1", "action": "delete", "product": {"id": active}},
                    {"id": "2", "action": "modify", "product": {"id": active, "status": "suspended"}},
                ],
            },
            400,
            "same product is named twice",
        ),
        (
            change_body(customer_id, dead, action="delete"),
            409,
            f"service {dead} is terminated; only active or inactive services can be disconnected",
        ),
    ]
    with session_factory() as s:
        counts = (
            s.scalar(select(func.count()).select_from(ProductOrder)),
            s.scalar(select(func.count()).select_from(PlanItem)),
        )
    for body, status, text in cases:
        response = client.post(ORDERS, json=body)
        assert response.status_code == status, (body, response.text)
        assert text in response.json()["message"], response.text
    with session_factory() as s:
        assert (
            s.scalar(select(func.count()).select_from(ProductOrder)),
            s.scalar(select(func.count()).select_from(PlanItem)),
        ) == counts
    assert client.get(f"{SERVICES}/{active}").json()["state"] == "active"


def _race(session_factory: sessionmaker[Session], customer_id: str, service_id: str) -> list[Any]:
    bodies = [
        change_body(customer_id, service_id, status="suspended"),
        change_body(customer_id, service_id, productCharacteristic=[{"name": "mbps", "value": 500}]),
    ]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(n: int) -> None:
        with session_factory() as s:
            data = ProductOrderCreate.model_validate(bodies[n])
            barrier.wait(10)
            try:
                results[n] = ordering.create_order(s, data, f"thread-{n}").id
            except Conflict as exc:
                s.rollback()
                results[n] = exc
            except Exception as exc:
                s.rollback()
                results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_concurrent_orders_on_one_service_the_second_is_refused(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    # Given an active service (made active directly: no workflow runs in this test, so both orders stay open)
    order = _post(client, order_body(customer_id, catalog["fibre"]))
    service_id = client.get(f"{ORDERS}/{order['id']}/plan").json()[0]["service"]["id"]
    # (while its add order is open, the designed service cannot be named by another order)
    early = client.post(ORDERS, json=change_body(customer_id, service_id, status="suspended"))
    assert early.status_code == 409
    assert (
        f"already the subject of productOrder {order['id']}, which is not finished" in early.json()["message"]
    )
    with session_factory() as s:
        s.get(ProductOrder, order["id"]).state = "completed"  # type: ignore[union-attr]
        s.get(Service, service_id).state = "active"  # type: ignore[union-attr]
        s.commit()
    for round_no in range(3):
        # When two threads order changes to that service at the same moment
        results = _race(session_factory, customer_id, service_id)
        # Then exactly one order is accepted and the other is refused with 409 naming it
        accepted = [r for r in results if isinstance(r, str)]
        refused = [r for r in results if isinstance(r, Conflict)]
        assert len(accepted) == 1 and len(refused) == 1, results
        assert f"productOrder {accepted[0]}" in str(refused[0])
        with session_factory() as s:
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(PlanItem)
                    .where(PlanItem.service_id == service_id, PlanItem.order_id != order["id"])
                )
                == round_no + 1
            )
            # close the accepted order so the next round races again
            s.get(ProductOrder, accepted[0]).state = "cancelled"  # type: ignore[union-attr]
            s.commit()
