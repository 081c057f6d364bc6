"""Resource work in the plan: the reservations an order carries (from its quote) are assigned to its service
before activation, and released again when the order does not complete (no leak)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory.logical import reservations as logical
from turnup.inventory.logical import services as pools
from turnup.inventory.logical.orm import LogicalBlock, ResourceReservation
from turnup.inventory.logical.schemas import PoolCreate
from turnup.kernel import clock
from turnup.ordering import services as ordering
from turnup.ordering.schemas import ProductOrderCreate
from turnup.testing import make_offering, order_body, wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
CANCEL = "/tmf-api/productOrderingManagement/v4/cancelProductOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"
FALLOUT = "/tmf-api/turnupOrchestration/v1/fallout"


def _vlan_hold(factory: sessionmaker[Session]) -> str:
    with factory() as s:
        pool = pools.create_pool(s, PoolCreate(poolType="vlanPool", name="access", start=100, end=199), "t")
        held = logical.reserve(
            s, [{"resourceType": "vlan", "poolId": pool.id}], clock.now() + timedelta(hours=1), "t"
        )
        return held.id


def _order(
    factory: sessionmaker[Session],
    customer_id: str,
    offering: str,
    reservation_id: str,
    *,
    committed_by_quote: bool,
    lost: bool = False,
) -> str:
    """Like quote acceptance (``quoting.holds.commit``): the order is created and, in the same transaction,
    the hold is committed to ``order:<id>``; or the order carries a live hold. ``lost``: the live hold is
    released once the order accepted it, before its workflow runs (an order citing a released hold is
    refused when it is placed)."""
    body: dict[str, Any] = order_body(customer_id, offering) | {
        "reservation": [{"id": reservation_id, "@referredType": "ResourceReservation"}]
    }
    with factory() as s:
        order = ordering.create_order(s, ProductOrderCreate.model_validate(body), "test", commit=False)
        if committed_by_quote:
            logical.commit(s, reservation_id, "test", service_id=f"order:{order.id}", commit_now=False)
        if lost:
            logical.release(s, reservation_id, "t", commit_now=False)
        s.commit()
        return order.id


def _block(factory: sessionmaker[Session], reservation_id: str) -> tuple[str, str | None, str, str | None]:
    with factory() as s:
        reservation = s.get(ResourceReservation, reservation_id)
        assert reservation is not None
        block = s.get(LogicalBlock, reservation.items[0].block_id)
        assert block is not None
        return reservation.state, reservation.service_id, block.state, block.service_id


def _final(client: TestClient, order_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if client.get(f"{ORDERS}/{order_id}").json()["state"]
            in ("completed", "failed", "partial", "cancelled")
            else None
        ),
        30,
        message="order final",
    )


def test_committed_reservations_are_assigned_to_the_service_before_activation(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an order whose quote committed a VLAN to the order
    reservation_id = _vlan_hold(session_factory)
    order_id = _order(session_factory, customer_id, catalog["fibre"], reservation_id, committed_by_quote=True)
    assert _block(session_factory, reservation_id)[1:] == (
        f"order:{order_id}",
        "allocated",
        f"order:{order_id}",
    )
    # Then the plan shows the resource work first, the activation depending on it
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    assert [(p["kind"], p["adapterAction"]) for p in plan] == [
        ("resourceAssignment", "assign"),
        ("serviceActivation", "activate-access"),
    ]
    assert plan[0]["parameters"] == {
        "reservation": {"id": reservation_id, "@referredType": "ResourceReservation"}
    }
    assert plan[1]["dependsOn"] == [plan[0]["id"]]
    service_id = plan[1]["service"]["id"]
    assert plan[0]["service"]["id"] == service_id
    # When the order runs
    assert _final(client, order_id)["state"] == "completed"
    # Then the VLAN belongs to the service, and the service lists it
    assert _block(session_factory, reservation_id) == ("committed", service_id, "allocated", service_id)
    service = client.get(f"{SERVICES}/{service_id}").json()
    assert service["state"] == "active"
    assert [(r["resourceType"], r["value"], r["reservationId"]) for r in service["supportingResource"]] == [
        ("logicalResource", "100", reservation_id)
    ]
    assert [p["state"] for p in client.get(f"{ORDERS}/{order_id}/plan").json()] == ["completed", "completed"]


def test_a_cancelled_order_releases_its_reservations(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an order carrying a live VLAN hold, waiting for a technician after the VLAN was assigned
    with session_factory() as s:
        offering = make_offering(
            s,
            "Fibre with install",
            [
                {"kind": "fieldVisit", "jeopardySeconds": 3600},
                {"adapter": "network-simulator", "action": "activate-access", "parameters": {}},
            ],
        )
    reservation_id = _vlan_hold(session_factory)
    order_id = _order(session_factory, customer_id, offering, reservation_id, committed_by_quote=False)
    wait_until(
        lambda: client.get(f"{ORDERS}/{order_id}/plan").json()[1]["state"] == "inProgress",
        30,
        message="field visit waiting",
    )
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    service_id = plan[2]["service"]["id"]
    assert _block(session_factory, reservation_id) == ("committed", service_id, "allocated", service_id)
    # When the order is cancelled
    assert client.post(CANCEL, json={"productOrder": {"id": order_id}}).status_code == 201
    # Then the service is terminated and the VLAN is free again (the pool has no quarantine): nothing leaks
    assert _final(client, order_id)["state"] == "cancelled"
    assert client.get(f"{SERVICES}/{service_id}").json()["state"] == "terminated"
    state, _, block_state, block_service = _block(session_factory, reservation_id)
    assert (state, block_state, block_service) == ("committed", "free", None)


def test_a_cancelled_order_releases_reservations_it_had_not_assigned_yet(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    # Given an accepted order (no worker running) whose quote committed a VLAN to it
    reservation_id = _vlan_hold(session_factory)
    with session_factory() as s:
        offering = make_offering(s, "Fibre", [{"adapter": "network-simulator", "action": "activate"}])
    order_id = _order(session_factory, customer_id, offering, reservation_id, committed_by_quote=True)
    # When it is cancelled before it starts
    cancelled = client.post(CANCEL, json={"productOrder": {"id": order_id}})
    assert cancelled.status_code == 201 and cancelled.json()["state"] == "done"
    # Then the VLAN is given back
    assert _block(session_factory, reservation_id)[2:] == ("free", None)


def test_a_lost_reservation_goes_to_fallout_before_anything_is_activated(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    reservation_id = _vlan_hold(session_factory)
    order_id = _order(
        session_factory, customer_id, catalog["fibre"], reservation_id, committed_by_quote=False, lost=True
    )
    entry = wait_until(
        lambda: (client.get(FALLOUT, params={"productOrder.id": order_id, "state": "open"}).json() or [None])[
            0
        ],
        30,
        message="fallout",
    )
    assert entry["error"] == f"resourceReservation {reservation_id} is released"
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    assert [p["state"] for p in plan] == ["held", "acknowledged"]
    assert client.get(f"{SERVICES}/{plan[1]['service']['id']}").json()["state"] == "designed"
    # abort: the order fails, the designed service is terminated
    assert client.post(f"{FALLOUT}/{entry['id']}/abort", json={"reason": "re-quote"}).status_code == 200
    assert _final(client, order_id)["state"] == "failed"
    assert client.get(f"{SERVICES}/{plan[1]['service']['id']}").json()["state"] == "terminated"


def test_a_cancelled_order_gives_its_stock_back(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    from turnup.inventory.physical import reservations as stock
    from turnup.inventory.physical import services as physical
    from turnup.inventory.physical.orm import Allocation
    from turnup.inventory.physical.schemas import LineRequest as stock_line
    from turnup.inventory.physical.schemas import LocationCreate, MovementCreate, ReservationCreate, SkuCreate

    # Given 3 routers in a warehouse, and an order carrying a live hold on 2 of them (from its quote)
    with session_factory() as s:
        physical.create_sku(s, SkuCreate(code="CPE-T1", name="Test router"), "t")
        physical.create_location(
            s, LocationCreate(code="WH-T", name="Test warehouse", locationType="warehouse"), "t"
        )
        physical.apply_movement(
            s, MovementCreate(kind="receipt", sku="CPE-T1", location="WH-T", quantity=3), "t"
        )
        held = stock.create_reservation(
            s,
            ReservationCreate(
                reserveProductStockItem=[{"sku": "CPE-T1", "quantity": 2, "location": "WH-T"}],
                expiresAt=clock.now() + timedelta(hours=1),
            ),
            "t",
        )
        offering = make_offering(
            s,
            "Fibre with install",
            [
                {"kind": "fieldVisit", "jeopardySeconds": 3600},
                {"adapter": "network-simulator", "action": "activate-access", "parameters": {}},
            ],
        )
    body: dict[str, Any] = order_body(customer_id, offering) | {
        "reservation": [{"id": held.id, "@referredType": "ReserveProductStock"}]
    }
    with session_factory() as s:
        order_id = ordering.create_order(s, ProductOrderCreate.model_validate(body), "test").id
    wait_until(
        lambda: client.get(f"{ORDERS}/{order_id}/plan").json()[1]["state"] == "inProgress",
        30,
        message="field visit waiting",
    )

    def available() -> int:
        with session_factory() as s:
            lines = stock.check_availability(s, [stock_line(sku="CPE-T1", quantity=1, location="WH-T")])
            return lines[0].available

    assert available() == 1  # two are allocated to the order
    # When the order is cancelled
    assert client.post(CANCEL, json={"productOrder": {"id": order_id}}).status_code == 201
    assert _final(client, order_id)["state"] == "cancelled"
    # Then the allocation is cancelled and all 3 routers are available again: nothing leaks
    with session_factory() as s:
        assert [a.status for a in s.query(Allocation).all()] == ["cancelled"]
    assert available() == 3


def test_reservation_line_targets_must_name_an_add_item_and_unit_of_the_order(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
) -> None:
    # Given a live VLAN hold
    reservation_id = _vlan_hold(session_factory)
    before = len(client.get(ORDERS).json())

    def order(target: dict[str, Any]) -> Any:
        ref = {"id": reservation_id, "@referredType": "ResourceReservation", "line": [target]}
        return client.post(ORDERS, json=order_body(customer_id, catalog["fibre"]) | {"reservation": [ref]})

    # When an order targets a line at an item it does not have, or a unit beyond the item's quantity
    unknown = order({"line": 0, "productOrderItem": "9", "specification": "x"})
    beyond = order({"line": 0, "productOrderItem": "1", "unit": 2, "specification": "x"})
    # Then each is a 400 naming the field, and no order was created
    assert unknown.status_code == 400 and unknown.json()["message"] == (
        "reservation[0].line[0].productOrderItem: '9' is not an 'add' item of this order"
    )
    assert beyond.status_code == 400 and beyond.json()["message"] == (
        "reservation[0].line[0].unit: item '1' has 1 unit(s)"
    )
    assert len(client.get(ORDERS).json()) == before
    assert _block(session_factory, reservation_id)[:2] == ("reserved", None)
