"""Stock follows the order: the plan item that hands hardware over (technician completed, shipment delivered,
picked up) moves the allocated units to the customer's site in the event's transaction; a disconnect asks
for the CPE back (CpeReturnRequestedEvent -> return expectation) and receiving it puts the units back in
stock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.accounts import services as accounts
from turnup.accounts.schemas import SiteCreate
from turnup.inventory.physical import reservations as stock
from turnup.inventory.physical import services as physical
from turnup.inventory.physical.orm import Allocation, Location, Sku, StockLevel, StockMovement, StockUnit
from turnup.inventory.physical.schemas import LocationCreate, MovementCreate, ReservationCreate, SkuCreate
from turnup.kernel import clock
from turnup.ordering import services as ordering
from turnup.ordering.schemas import ProductOrderCreate
from turnup.testing import make_offering, order_body, wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"
STOCK = "/tmf-api/stock/v4"
ACTIVATE = {"adapter": "network-simulator", "action": "activate-access", "parameters": {}}
ROUTER = {"sku": "CPE-R1", "quantity": 1, "fulfilmentMethod": "technician"}
HANDSET = {"sku": "PHONE-H1", "quantity": 1, "fulfilmentMethod": "ship"}
CARD = {"sku": "CARD-C1", "quantity": 2, "fulfilmentMethod": "pickup"}
VISIT = {"workType": "install", "skills": ["cpe-install"], "durationMinutes": 60}


def _stock(factory: sessionmaker[Session]) -> None:
    """A warehouse with two serialised routers, two serialised handsets and five access cards (quantity)."""
    with factory() as s:
        physical.create_sku(s, SkuCreate(code="CPE-R1", name="Router", serialised=True), "t")
        physical.create_sku(s, SkuCreate(code="PHONE-H1", name="Handset", serialised=True), "t")
        physical.create_sku(s, SkuCreate(code="CARD-C1", name="Access card"), "t")
        physical.create_location(
            s, LocationCreate(code="WH-F", name="Warehouse", locationType="warehouse"), "t"
        )
        for sku, prefix in (("CPE-R1", "R"), ("PHONE-H1", "H")):
            physical.apply_movement(
                s,
                MovementCreate(
                    kind="receipt",
                    sku=sku,
                    location="WH-F",
                    units=[{"serial": f"{prefix}-1"}, {"serial": f"{prefix}-2"}],
                ),
                "t",
            )
        physical.apply_movement(
            s, MovementCreate(kind="receipt", sku="CARD-C1", location="WH-F", quantity=5), "t"
        )


def _site(factory: sessionmaker[Session], customer_id: str) -> str:
    with factory() as s:
        return accounts.create_site(
            s, SiteCreate(customerId=customer_id, name="Head office", city="Leeds", country="GB"), "t"
        ).id


def _order(
    factory: sessionmaker[Session],
    customer_id: str,
    site_id: str,
    physical_items: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    *,
    field_visit: bool,
) -> str:
    """An order for an offering whose catalog entry lists ``physical_items``, carrying a live stock hold of
    ``lines`` (from its quote)."""
    delivery: dict[str, Any] = {"physical": physical_items}
    if field_visit:
        delivery["fieldVisit"] = VISIT
    with factory() as s:
        offering = make_offering(s, "Fibre with kit", [ACTIVATE], delivery=delivery)
        held = stock.create_reservation(
            s,
            ReservationCreate(reserveProductStockItem=lines, expiresAt=clock.now() + timedelta(hours=1)),
            "t",
        )
    body = order_body(customer_id, offering)
    body["productOrderItem"][0]["product"] = {"place": [{"id": site_id}]}
    body["reservation"] = [{"id": held.id, "@referredType": "ReserveProductStock"}]
    with factory() as s:
        return ordering.create_order(s, ProductOrderCreate.model_validate(body), "test").id


def _plan(client: TestClient, order_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"{ORDERS}/{order_id}/plan").json())


def _waiting(client: TestClient, order_id: str, kind: str) -> dict[str, Any]:
    return dict(
        wait_until(
            lambda: next(
                (p for p in _plan(client, order_id) if p["kind"] == kind and p["state"] == "inProgress"), None
            ),
            30,
            message=f"{kind} waiting",
        )
    )


def _final(client: TestClient, order_id: str) -> str:
    return str(
        wait_until(
            lambda: (
                state
                if (state := client.get(f"{ORDERS}/{order_id}").json()["state"])
                in ("completed", "failed", "partial", "cancelled")
                else None
            ),
            30,
            message="order final",
        )
    )


def _event(client: TestClient, order_id: str, event_type: str, reference: str | None = None) -> Any:
    return client.post(f"{ORDERS}/{order_id}/event", json={"eventType": event_type, "reference": reference})


def _units(factory: sessionmaker[Session]) -> dict[str, tuple[str, str | None]]:
    """serial -> (state, location code)."""
    with factory() as s:
        codes = {i: c for i, c in s.execute(select(Location.id, Location.code))}
        return {u.serial: (u.state, codes.get(u.location_id or "")) for u in s.scalars(select(StockUnit))}


def _levels(factory: sessionmaker[Session]) -> dict[str, tuple[int, int, int, int]]:
    """SKU code -> (on hand, reserved, allocated, quarantined) at the warehouse."""
    with factory() as s:
        wh = physical.location_by_code(s, "WH-F")
        rows = s.scalars(select(StockLevel).where(StockLevel.location_id == wh.id))
        skus = {sk.id: sk.code for sk in s.scalars(select(Sku))}
        return {skus[r.sku_id]: (r.on_hand, r.reserved, r.allocated, r.quarantined) for r in rows}


def _allocations(factory: sessionmaker[Session]) -> list[str]:
    with factory() as s:
        return [a.status for a in s.scalars(select(Allocation))]


def _history(client: TestClient, serial: str) -> list[tuple[str, str | None, str | None]]:
    units = client.get(f"{STOCK}/stockUnit", params={"serial": serial}).json()
    assert len(units) == 1
    return [
        (h["kind"], h["unitState"], h["location"])
        for h in client.get(f"{STOCK}/stockUnit/{units[0]['id']}/history").json()
    ]


def _site_stock(client: TestClient, code: str) -> dict[str, tuple[int, int, int, int]]:
    """SKU code -> (on hand, reserved, allocated, available) at a location, read as an API client does:
    ``productStock?locationId=<location id>``."""
    [location] = client.get(f"{STOCK}/location", params={"code": code}).json()
    levels = client.get(f"{STOCK}/productStock", params={"locationId": location["id"]}).json()
    return {
        lv["stockedProduct"]["code"]: (
            lv["stockedQuantity"]["amount"],
            lv["reservedQuantity"]["amount"],
            lv["allocatedQuantity"]["amount"],
            lv["availableQuantity"]["amount"],
        )
        for lv in levels
    }


def _assert_ledger_matches_levels(factory: sessionmaker[Session]) -> None:
    """Every stock level is exactly the sum of its movements' deltas, and every movement has its level."""
    with factory() as s:
        sums = {
            (sku_id, loc_id): tuple(totals)
            for sku_id, loc_id, *totals in s.execute(
                select(
                    StockMovement.sku_id,
                    StockMovement.location_id,
                    func.sum(StockMovement.on_hand_delta),
                    func.sum(StockMovement.reserved_delta),
                    func.sum(StockMovement.allocated_delta),
                    func.sum(StockMovement.quarantined_delta),
                ).group_by(StockMovement.sku_id, StockMovement.location_id)
            )
        }
        levels = {
            (lv.sku_id, lv.location_id): (lv.on_hand, lv.reserved, lv.allocated, lv.quarantined)
            for lv in s.scalars(select(StockLevel))
        }
        assert sums == levels


def test_a_technician_fitted_router_moves_to_the_customer_site_when_the_technician_completes(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an order for fibre with a technician-fitted router, the quote holding router R-1
    _stock(session_factory)
    site_id = _site(session_factory, customer_id)
    order_id = _order(
        session_factory,
        customer_id,
        site_id,
        [ROUTER],
        [{"sku": "CPE-R1", "serials": ["R-1"]}],
        field_visit=True,
    )
    visit = _waiting(client, order_id, "fieldVisit")
    assert visit["parameters"]["items"] == [{"sku": "CPE-R1", "quantity": 1}]
    assert _units(session_factory)["R-1"] == ("allocated", "WH-F")
    # When the technician reports completion
    response = _event(client, order_id, "technicianCompleted", "JOB-7")
    assert response.status_code == 201, response.text
    # Then the router is installed at the customer's site, in the same transaction as the event
    code = f"SITE-{site_id}"
    assert _units(session_factory) == {
        "R-1": ("installed", code),
        "R-2": ("in_stock", "WH-F"),
        "H-1": ("in_stock", "WH-F"),
        "H-2": ("in_stock", "WH-F"),
    }
    assert _allocations(session_factory) == ["issued"]
    assert _levels(session_factory)["CPE-R1"] == (1, 0, 0, 0)  # nothing left allocated in the warehouse
    assert _site_stock(client, code) == {"CPE-R1": (1, 0, 0, 1)}  # and on hand at the customer's site
    with session_factory() as s:
        site = physical.location_by_code(s, code)
        assert (site.location_type, site.site_id) == ("customer_site", site_id)
    assert _history(client, "R-1") == [
        ("receipt", "in_stock", "WH-F"),
        ("reserve", "reserved", "WH-F"),
        ("commit", "allocated", "WH-F"),
        ("issue", "issued", "WH-F"),
        ("install", "installed", code),
    ]
    # And the order completes; a repeated event is refused and moves nothing
    assert _final(client, order_id) == "completed"
    again = _event(client, order_id, "technicianCompleted", "JOB-7")
    assert again.status_code == 409
    assert len(_history(client, "R-1")) == 5
    assert _site_stock(client, code) == {"CPE-R1": (1, 0, 0, 1)}
    _assert_ledger_matches_levels(session_factory)


def test_a_shipped_handset_moves_on_delivery_and_the_router_on_completion_from_one_allocation(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given one stock hold with a technician-fitted router and a shipped handset
    _stock(session_factory)
    site_id = _site(session_factory, customer_id)
    order_id = _order(
        session_factory,
        customer_id,
        site_id,
        [ROUTER, HANDSET],
        [{"sku": "CPE-R1", "serials": ["R-2"]}, {"sku": "PHONE-H1", "serials": ["H-1"]}],
        field_visit=True,
    )
    plan = _plan(client, order_id)
    assert [p["kind"] for p in plan] == ["resourceAssignment", "shipment", "fieldVisit", "serviceActivation"]
    shipment = _waiting(client, order_id, "shipment")
    assert shipment["parameters"]["items"] == [{"sku": "PHONE-H1", "quantity": 1}]
    # When the shipment is delivered
    assert _event(client, order_id, "shipmentDelivered", "TRACK-1").status_code == 201
    # Then only the handset moved; the router stays allocated for the technician
    code = f"SITE-{site_id}"
    units = _units(session_factory)
    assert (units["H-1"], units["R-2"]) == (("installed", code), ("allocated", "WH-F"))
    assert _allocations(session_factory) == ["active"]
    assert _levels(session_factory)["PHONE-H1"] == (1, 0, 0, 0)
    assert _levels(session_factory)["CPE-R1"] == (2, 0, 1, 0)
    assert [h[0] for h in _history(client, "H-1")][-2:] == ["ship", "install"]
    # When the technician completes
    _waiting(client, order_id, "fieldVisit")
    assert _event(client, order_id, "technicianCompleted").status_code == 201
    # Then the router is there too and the allocation is dispatched
    assert _units(session_factory)["R-2"] == ("installed", code)
    assert _allocations(session_factory) == ["issued"]
    assert _levels(session_factory)["CPE-R1"] == (1, 0, 0, 0)
    assert _final(client, order_id) == "completed"


def test_a_pickup_item_gets_its_own_plan_item_and_moves_when_picked_up(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an offering whose access cards the customer picks up (no field visit)
    _stock(session_factory)
    site_id = _site(session_factory, customer_id)
    order_id = _order(
        session_factory,
        customer_id,
        site_id,
        [CARD],
        [{"sku": "CARD-C1", "quantity": 2, "location": "WH-F"}],
        field_visit=False,
    )
    # Then the plan has a pickup item before activation
    plan = _plan(client, order_id)
    assert [(p["kind"], p["adapterAction"]) for p in plan] == [
        ("resourceAssignment", "assign"),
        ("pickup", "pickedUp"),
        ("serviceActivation", "activate-access"),
    ]
    assert plan[1]["parameters"]["items"] == [{"sku": "CARD-C1", "quantity": 2}]
    assert plan[2]["dependsOn"] == [plan[1]["id"]]
    _waiting(client, order_id, "pickup")
    assert _levels(session_factory)["CARD-C1"] == (5, 0, 2, 0)
    # When the customer picks them up
    assert _event(client, order_id, "pickedUp", "COUNTER-3").status_code == 201
    # Then the cards left the warehouse for the customer's site and the order completes
    assert _levels(session_factory)["CARD-C1"] == (3, 0, 0, 0)
    assert _allocations(session_factory) == ["issued"]
    moves = client.get(f"{STOCK}/stockMovement", params={"kind": "install"}).json()
    assert [(m["onHandDelta"], m["reason"]) for m in moves] == [(2, "pickup hand-over (COUNTER-3)")]
    assert _site_stock(client, f"SITE-{site_id}") == {"CARD-C1": (2, 0, 0, 2)}
    assert _final(client, order_id) == "completed"


def test_a_disconnect_expects_the_cpe_back_and_receiving_it_puts_it_back_in_stock(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given a delivered order: router R-1 installed at the customer's site
    _stock(session_factory)
    site_id = _site(session_factory, customer_id)
    order_id = _order(
        session_factory,
        customer_id,
        site_id,
        [ROUTER],
        [{"sku": "CPE-R1", "serials": ["R-1"]}],
        field_visit=True,
    )
    _waiting(client, order_id, "fieldVisit")
    assert _event(client, order_id, "technicianCompleted").status_code == 201
    assert _final(client, order_id) == "completed"
    service_id = next(p["service"]["id"] for p in _plan(client, order_id) if p["kind"] == "serviceActivation")
    assert client.get(f"{STOCK}/stockReturn").json() == []
    # When the service is disconnected
    disconnect = {
        "relatedParty": [{"id": customer_id, "role": "customer"}],
        "productOrderItem": [{"id": "1", "action": "delete", "product": {"id": service_id}}],
    }
    response = client.post(ORDERS, json=disconnect)
    assert response.status_code == 201, response.text
    assert _final(client, response.json()["id"]) == "completed"
    # Then the CpeReturnRequestedEvent consumer creates a return expectation for the router
    code = f"SITE-{site_id}"
    rma = wait_until(lambda: client.get(f"{STOCK}/stockReturn").json(), 30, message="return expected")
    assert len(rma) == 1
    rma = rma[0]
    assert (rma["status"], rma["serviceId"], rma["fromLocation"], rma["expectedAt"]) == (
        "open",
        service_id,
        code,
        "WH-F",
    )
    assert [(u["serial"], u["sku"], u["origin"]) for u in rma["units"]] == [("R-1", "CPE-R1", "WH-F")]
    assert client.get(f"{STOCK}/stockReturn/{rma['id']}").json()["id"] == rma["id"]
    # When the router is received back (refurbished)
    received = client.post(f"{STOCK}/stockReturn/{rma['id']}/receive", json={"condition": "refurbished"})
    assert received.status_code == 200, received.text
    assert (received.json()["status"], received.json()["condition"]) == ("received", "refurbished")
    # Then it is back in stock at the warehouse and the expectation is closed
    assert _units(session_factory)["R-1"] == ("in_stock", "WH-F")
    assert _levels(session_factory)["CPE-R1"] == (2, 0, 0, 0)
    assert client.get(f"{STOCK}/stockReturn", params={"status": "open"}).json() == []
    assert _history(client, "R-1") == [
        ("receipt", "in_stock", "WH-F"),
        ("reserve", "reserved", "WH-F"),
        ("commit", "allocated", "WH-F"),
        ("issue", "issued", "WH-F"),
        ("install", "installed", code),
        ("return", "returned", code),  # out of the customer site's stock
        ("return", "returned", "WH-F"),
        ("refurbish", "in_stock", "WH-F"),
    ]
    assert _site_stock(client, code) == {"CPE-R1": (0, 0, 0, 0)}
    _assert_ledger_matches_levels(session_factory)
    # And receiving it twice is a 409 that changes nothing
    again = client.post(f"{STOCK}/stockReturn/{rma['id']}/receive", json={})
    assert again.status_code == 409
    assert len(_history(client, "R-1")) == 8
    assert client.get(f"{STOCK}/stockReturn/nope").status_code == 404


def test_allocations_marked_with_a_fulfilment_method_are_handed_over_only_by_their_plan_item(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    """The contract with allocations split per fulfilment method: a ``physicalAllocation`` entry naming
    ``fulfilmentMethod`` is handed over whole by the plan item of that method, never by another."""
    from turnup.service_inventory.orm import Service

    # Given a router-and-handset order whose one allocation is marked as shipped (as a split would mark it)
    _stock(session_factory)
    site_id = _site(session_factory, customer_id)
    order_id = _order(
        session_factory,
        customer_id,
        site_id,
        [ROUTER, HANDSET],
        [{"sku": "CPE-R1", "serials": ["R-1"]}, {"sku": "PHONE-H1", "serials": ["H-2"]}],
        field_visit=True,
    )
    _waiting(client, order_id, "shipment")
    service_id = _plan(client, order_id)[-1]["service"]["id"]
    with session_factory() as s:
        service = s.get(Service, service_id)
        assert service is not None
        [entry] = service.resources
        assert entry["resourceType"] == "physicalAllocation"
        service.resources = [entry | {"fulfilmentMethod": "ship", "sku": "PHONE-H1", "quantity": 1}]
        s.commit()
    # When the technician completes first: the shipped allocation is not theirs, nothing moves
    assert _event(client, order_id, "technicianCompleted").status_code == 201
    assert _allocations(session_factory) == ["active"]
    assert _units(session_factory)["R-1"] == ("allocated", "WH-F")
    # When the shipment is delivered: the whole allocation is handed over (by shipping)
    assert _event(client, order_id, "shipmentDelivered").status_code == 201
    code = f"SITE-{site_id}"
    units = _units(session_factory)
    assert (units["R-1"], units["H-2"]) == (("installed", code), ("installed", code))
    assert _allocations(session_factory) == ["shipped"]
    assert _final(client, order_id) == "completed"


def test_the_customer_site_shows_what_was_handed_over_until_it_comes_back_and_is_never_reserved_from(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    from turnup.inventory.physical import LineRequest, check_availability, hold_stock
    from turnup.inventory.physical.schemas import LocationUpdate
    from turnup.kernel.errors import Conflict

    # Given an order with a technician-fitted router R-1 and two access cards the customer picks up
    _stock(session_factory)
    site_id = _site(session_factory, customer_id)
    order_id = _order(
        session_factory,
        customer_id,
        site_id,
        [ROUTER, CARD],
        [{"sku": "CPE-R1", "serials": ["R-1"]}, {"sku": "CARD-C1", "quantity": 2, "location": "WH-F"}],
        field_visit=True,
    )
    code = f"SITE-{site_id}"
    # When the customer picks the cards up and the technician completes
    assert [p["kind"] for p in _plan(client, order_id)] == [
        "resourceAssignment",
        "pickup",
        "fieldVisit",
        "serviceActivation",
    ]
    _waiting(client, order_id, "pickup")
    assert _event(client, order_id, "pickedUp", "COUNTER-1").status_code == 201
    _waiting(client, order_id, "fieldVisit")
    assert _event(client, order_id, "technicianCompleted", "JOB-1").status_code == 201
    assert _final(client, order_id) == "completed"
    # Then the customer site's location holds them as stock: 1 router and 2 cards on hand
    assert _site_stock(client, code) == {"CPE-R1": (1, 0, 0, 1), "CARD-C1": (2, 0, 0, 2)}
    assert _levels(session_factory) == {
        "CPE-R1": (1, 0, 0, 0),
        "PHONE-H1": (2, 0, 0, 0),
        "CARD-C1": (3, 0, 0, 0),
    }
    installs = client.get(f"{STOCK}/stockMovement", params={"kind": "install"}).json()
    assert sorted((m["onHandDelta"], m["reason"]) for m in installs) == [
        (1, "technician hand-over (JOB-1)"),
        (2, "pickup hand-over (COUNTER-1)"),
    ]
    _assert_ledger_matches_levels(session_factory)

    # And a quote for the same SKUs near that site never reserves from the customer-site location, even
    # when the location is in the warehouse's region and the warehouse runs short
    with session_factory() as s:
        for located in ("WH-F", code):
            loc_id = physical.location_by_code(s, located).id
            physical.update_location(s, loc_id, LocationUpdate(region="north"), "t")
    with session_factory() as s:
        [cards] = check_availability(s, [LineRequest(sku="CARD-C1", quantity=5, region="north")])
        assert (cards.available, [lc["location"] for lc in cards.locations]) == (3, ["WH-F"])
    expires = clock.now() + timedelta(hours=1)
    with session_factory() as s:
        held = hold_stock(
            s,
            [
                LineRequest(sku="CARD-C1", quantity=3, region="north"),
                LineRequest(sku="CPE-R1", quantity=1, region="north"),
            ],
            expires_at=expires,
            customer_id=customer_id,
            quote_id=None,
            actor="t",
        )
        s.commit()
    assert sorted((h.sku, h.quantity, h.location) for h in held.lines) == [
        ("CARD-C1", 3, "WH-F"),
        ("CPE-R1", 1, "WH-F"),
    ]
    with session_factory() as s, pytest.raises(Conflict) as refused:
        hold_stock(
            s,
            [LineRequest(sku="CARD-C1", quantity=1, region="north")],
            expires_at=expires,
            customer_id=customer_id,
            quote_id=None,
            actor="t",
        )
    assert [(d["sku"], d["available"]) for d in refused.value.details] == [("CARD-C1", 0)]
    assert _site_stock(client, code) == {"CPE-R1": (1, 0, 0, 1), "CARD-C1": (2, 0, 0, 2)}
    assert _levels(session_factory)["CARD-C1"] == (3, 3, 0, 0)

    # When the service is disconnected and the router is received back (condition: returned)
    service_id = next(p["service"]["id"] for p in _plan(client, order_id) if p["kind"] == "serviceActivation")
    disconnect = {
        "relatedParty": [{"id": customer_id, "role": "customer"}],
        "productOrderItem": [{"id": "1", "action": "delete", "product": {"id": service_id}}],
    }
    response = client.post(ORDERS, json=disconnect)
    assert response.status_code == 201, response.text
    assert _final(client, response.json()["id"]) == "completed"
    [rma] = wait_until(lambda: client.get(f"{STOCK}/stockReturn").json(), 30, message="return expected")
    assert [u["serial"] for u in rma["units"]] == ["R-1"]
    received = client.post(f"{STOCK}/stockReturn/{rma['id']}/receive", json={})
    assert received.status_code == 200, received.text
    # Then the site shows no router (the cards stay: they are not returned) and the warehouse has it in
    # quarantine
    assert _site_stock(client, code) == {"CPE-R1": (0, 0, 0, 0), "CARD-C1": (2, 0, 0, 2)}
    assert _levels(session_factory)["CPE-R1"] == (1, 1, 0, 1)
    assert _units(session_factory)["R-1"] == ("returned", "WH-F")
    _assert_ledger_matches_levels(session_factory)
