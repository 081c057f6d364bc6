"""A bundle's components are delivered as their own services, each with its own reserved resources and
place: ordering the demo's Fibre + Voice bundle through a quote gives the fibre service its prefixes, VLAN
and technician-fitted router, the voice service its number and shipped handset; the product is a bundle
with a child product per member; disconnecting the voice seat releases exactly its resources. A quantity-2
item gives each unit its own resources. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    SIGNER,
    customer_and_site,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from turnup.inventory.logical.orm import LogicalBlock, TelephoneNumber
from turnup.inventory.physical.orm import Allocation, ReservationLine, StockLevel
from turnup.kernel.outbox import OutboxEvent
from turnup.testing import wait_until

QUOTES = "/tmf-api/quoteManagement/v4/quote"
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"
PRODUCTS = "/tmf-api/productInventory/v4/product"
STOCK = "/tmf-api/stock/v4"


def _final(client: TestClient, order_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if client.get(f"{ORDERS}/{order_id}").json()["state"]
            in ("completed", "failed", "partial", "cancelled")
            else None
        ),
        60,
        message="order end",
    )


def _report_waits(client: TestClient, order_id: str) -> None:
    """Report every field/shipping event the plan waits for, as the technician and the courier would."""
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    for p in plan:
        if p["kind"] in ("fieldVisit", "shipment"):
            wait_until(
                lambda p=p: (
                    next(x for x in client.get(f"{ORDERS}/{order_id}/plan").json() if x["id"] == p["id"])[
                        "state"
                    ]
                    == "inProgress"
                ),
                60,
                message=f"{p['kind']} waiting",
            )
            post(
                client,
                f"{ORDERS}/{order_id}/event",
                {"eventType": p["adapterAction"], "planItemId": p["id"], "reference": "JOB-1"},
            )


def _accepted_order(
    client: TestClient, customer_id: str, site_id: str, offering_id: str, quantity: int = 1
) -> str:
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offering_id, quantity=quantity))
    priced = post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)
    assert priced["state"] == "approved", priced
    accepted = post(client, f"{QUOTES}/{quote['id']}/accept", SIGNER, 200)
    order_id: str = accepted["productOrder"]["id"]
    return order_id


def _services(client: TestClient, order_id: str) -> dict[str, list[dict[str, Any]]]:
    """The services the order added, by name, in plan order."""
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    found: dict[str, list[dict[str, Any]]] = {}
    for p in plan:
        if p["kind"] == "serviceActivation":
            found.setdefault(p["service"]["name"], []).append(
                client.get(f"{SERVICES}/{p['service']['id']}").json()
            )
    return found


def _kinds(service: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted((r["resourceType"], r.get("kind") or r.get("sku")) for r in service["supportingResource"])


def _allocation(service: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [r for r in service["supportingResource"] if r["resourceType"] == "physicalAllocation"]
    return entry


def _stock(factory: sessionmaker[Session], allocation_id: str) -> tuple[str, str | None, list[int]]:
    with factory() as s:
        allocation = s.get(Allocation, allocation_id)
        assert allocation is not None
        lines = s.scalars(
            select(ReservationLine.quantity).where(ReservationLine.allocation_id == allocation_id)
        ).all()
        return allocation.status, allocation.fulfilment_method, list(lines)


def _allocated(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return sum(s.scalars(select(StockLevel.allocated)).all())


def test_fibre_and_voice_components_get_their_own_resources_place_and_products(
    client: TestClient, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    # Given the demo catalog and inventory, and an accepted quote for Fibre + Voice at the Leeds surgery
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    order_id = _accepted_order(client, customer_id, site_id, offerings["Fibre + Voice"])
    # Then the plan assigns the fibre's and the voice seat's lines to their own services, by fulfilment
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    assignments = [p for p in plan if p["kind"] == "resourceAssignment"]
    by_service = {p["service"]["id"]: p for p in plan if p["kind"] == "serviceActivation"}
    assert sorted(
        (
            by_service[a["service"]["id"]]["service"]["name"],
            a["parameters"]["reservation"]["@referredType"],
            a["parameters"].get("fulfilmentMethod"),
        )
        for a in assignments
    ) == [
        ("Business Fibre Access", "ReserveProductStock", "technician"),
        ("Business Fibre Access", "ResourceReservation", None),
        ("Hosted Voice Seat", "ReserveProductStock", "ship"),
        ("Hosted Voice Seat", "ResourceReservation", None),
    ]
    # When the technician and the courier report, and the order runs to its end
    _report_waits(client, order_id)
    assert _final(client, order_id)["state"] == "completed"
    services = _services(client, order_id)
    assert sorted(services) == ["Business Fibre Access", "Hosted Voice Seat"]
    (fibre,), (voice,) = services["Business Fibre Access"], services["Hosted Voice Seat"]
    # Then the fibre service has its prefixes, VLAN and the technician-fitted router; the voice service its
    # number and the shipped handset; each at the quote's site
    assert _kinds(fibre) == [
        ("logicalResource", "ipPrefix"),
        ("logicalResource", "ipPrefix"),
        ("logicalResource", "vlan"),
        ("physicalAllocation", "CPE-NW-FTTP-R1"),
    ]
    prefixes = sorted(r["value"] for r in fibre["supportingResource"] if r.get("kind") == "ipPrefix")
    assert prefixes[0].startswith("10.20.0.") and prefixes[0].endswith("/29")
    assert prefixes[1].startswith("2001:db8:") and prefixes[1].endswith("/48")
    assert _kinds(voice) == [("physicalAllocation", "HANDSET-NW-DESK-2"), ("telephoneNumber", None)]
    router, handset = _allocation(fibre), _allocation(voice)
    assert {k: router[k] for k in ("fulfilmentMethod", "sku", "quantity")} == {
        "fulfilmentMethod": "technician",
        "sku": "CPE-NW-FTTP-R1",
        "quantity": 1,
    }
    assert {k: handset[k] for k in ("fulfilmentMethod", "sku", "quantity")} == {
        "fulfilmentMethod": "ship",
        "sku": "HANDSET-NW-DESK-2",
        "quantity": 1,
    }
    assert router["id"] != handset["id"] and router["reservationId"] == handset["reservationId"]
    # (handed over: the technician fitted the router, the courier delivered the handset)
    assert _stock(session_factory, router["id"]) == ("issued", "technician", [1])
    assert _stock(session_factory, handset["id"]) == ("shipped", "ship", [1])
    place = [{"id": site_id, "role": "installationAddress", "@referredType": "GeographicSite"}]
    assert fibre["place"] == place and voice["place"] == place
    number_id = next(r["id"] for r in voice["supportingResource"] if r["resourceType"] == "telephoneNumber")
    blocks = [r["id"] for r in fibre["supportingResource"] if r["resourceType"] == "logicalResource"]
    with session_factory() as s:
        number = s.get(TelephoneNumber, number_id)
        assert number is not None and (number.state, number.service_id) == ("assigned", voice["id"])
        assert [(b.state, b.service_id) for b in (s.get(LogicalBlock, i) for i in blocks) if b] == [
            ("allocated", fibre["id"])
        ] * 3
    # And the product is a bundle with a child product per member, each realised by its own service
    (product,) = client.get(PRODUCTS, params={"productOrderItem.productOrderId": order_id}).json()
    assert product["isBundle"] is True and product["status"] == "active" and product["place"] == place
    assert [s["id"] for s in product["realizingService"]] == [fibre["id"], voice["id"]]
    assert [c["name"] for c in product["product"]] == ["Business Fibre 1G", "Hosted Voice Seat"]
    assert [(r["relationshipType"], r["product"]["id"]) for r in product["productRelationship"]] == [
        ("bundles", c["id"]) for c in product["product"]
    ]
    children = [client.get(f"{PRODUCTS}/{c['id']}").json() for c in product["product"]]
    assert [
        (c["isBundle"], c["productOffering"]["id"], [s["id"] for s in c["realizingService"]], c["status"])
        for c in children
    ] == [
        (False, offerings["Business Fibre 1G"], [fibre["id"]], "active"),
        (False, offerings["Hosted Voice Seat"], [voice["id"]], "active"),
    ]
    assert children[1]["place"] == place
    assert children[1]["productRelationship"][0]["relationshipType"] == "bundledIn"
    assert client.get(f"{PRODUCTS}/{product['id']}-3").status_code == 404

    # When the voice seat alone is disconnected
    allocated_before = _allocated(session_factory)
    disconnect = post(
        client,
        ORDERS,
        {
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [{"id": "1", "action": "delete", "product": {"id": voice["id"]}}],
        },
    )
    assert _final(client, disconnect["id"])["state"] == "completed"
    # Then its number ages and its handset, out at the customer's site, is asked back (a CPE return, see
    # tests/workflows/test_fulfilment.py); the fibre service keeps all of its own
    with session_factory() as s:
        number = s.get(TelephoneNumber, number_id)
        assert number is not None and (number.state, number.service_id) == ("aging", None)
        assert [(b.state, b.service_id) for b in (s.get(LogicalBlock, i) for i in blocks) if b] == [
            ("allocated", fibre["id"])
        ] * 3
    assert _stock(session_factory, handset["id"]) == ("shipped", "ship", [1])
    assert _stock(session_factory, router["id"]) == ("issued", "technician", [1])
    assert _allocated(session_factory) == allocated_before  # both left the warehouse when handed over
    with session_factory() as s:
        returns = [
            e.payload["event"]["cpeReturn"]
            for e in s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "CpeReturnRequestedEvent"))
        ]
    assert [(r["serviceId"], [u.get("allocationId") for u in r["units"]]) for r in returns] == [
        (voice["id"], [handset["id"]])
    ]
    assert client.get(f"{SERVICES}/{voice['id']}").json()["state"] == "terminated"
    fibre_after = client.get(f"{SERVICES}/{fibre['id']}").json()
    assert fibre_after["state"] == "active"
    assert fibre_after["supportingResource"] == fibre["supportingResource"]
    children = [client.get(f"{PRODUCTS}/{c['id']}").json()["status"] for c in product["product"]]
    assert children == ["active", "terminated"]


def test_each_unit_of_a_quantity_two_item_gets_its_own_resources(
    client: TestClient, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    # Given an accepted quote for two Hosted Voice Seats
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    order_id = _accepted_order(client, customer_id, site_id, offerings["Hosted Voice Seat"], quantity=2)
    # When the handsets are delivered and the order runs
    _report_waits(client, order_id)
    assert _final(client, order_id)["state"] == "completed"
    # Then each seat's service has its own number and its own handset allocation of one
    seats = _services(client, order_id)["Hosted Voice Seat"]
    assert len(seats) == 2
    assert [_kinds(s) for s in seats] == [
        [("physicalAllocation", "HANDSET-NW-DESK-2"), ("telephoneNumber", None)]
    ] * 2
    numbers = [
        r["value"] for s in seats for r in s["supportingResource"] if r["resourceType"] == "telephoneNumber"
    ]
    allocations = [_allocation(s)["id"] for s in seats]
    assert len(set(numbers)) == 2 and len(set(allocations)) == 2
    assert [_stock(session_factory, a) for a in allocations] == [("shipped", "ship", [1])] * 2
    assert all(s["place"][0]["id"] == site_id for s in seats)


def test_cancelling_a_bundle_order_before_it_starts_gives_back_every_component_s_resources(
    client: TestClient, session_factory: sessionmaker[Session], dbos_schema_cleanup: None
) -> None:
    # Given an accepted Fibre + Voice order (no worker running: it has not started)
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    order_id = _accepted_order(client, customer_id, site_id, offerings["Fibre + Voice"])
    assert _allocated(session_factory) == 2
    # When it is cancelled
    cancelled = post(
        client, "/tmf-api/productOrderingManagement/v4/cancelProductOrder", {"productOrder": {"id": order_id}}
    )
    assert cancelled["state"] == "done"
    # Then both services are terminated, each having given back its own lines: no stock allocated or
    # reserved, the number aging, every block released
    services = _services(client, order_id)
    (fibre,), (voice,) = services["Business Fibre Access"], services["Hosted Voice Seat"]
    assert (fibre["state"], voice["state"]) == ("terminated", "terminated")
    assert _kinds(voice) == [("physicalAllocation", "HANDSET-NW-DESK-2"), ("telephoneNumber", None)]
    assert _allocated(session_factory) == 0
    with session_factory() as s:
        assert sum(s.scalars(select(StockLevel.reserved)).all()) == 0
        number_id = next(
            r["id"] for r in voice["supportingResource"] if r["resourceType"] == "telephoneNumber"
        )
        number = s.get(TelephoneNumber, number_id)
        assert number is not None and number.state == "aging"
        blocks = [r["id"] for r in fibre["supportingResource"] if r["resourceType"] == "logicalResource"]
        assert len(blocks) == 3
        assert all(b is not None and b.state != "allocated" for b in (s.get(LogicalBlock, i) for i in blocks))
