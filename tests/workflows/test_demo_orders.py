"""Acceptance: the demo operator's fibre, voice and colocation orders go from accepted to active through the
API; their field visits and shipments (from the demo catalog's delivery requirements) are reported by API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import turnup.demo
from turnup.catalog import load_catalog_file, publish_catalog
from turnup.provisioning.orm import SimulatorLedgerEntry
from turnup.testing import wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
OFFERINGS = "/tmf-api/productCatalogManagement/v4/productOffering"
SERVICES = "/tmf-api/serviceInventory/v4/service"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
SITES = "/tmf-api/geographicSiteManagement/v4/geographicSite"
DEMO_CATALOG = Path(turnup.demo.__file__).parent / "catalog.yaml"


def _offering(client: TestClient, name: str) -> str:
    found = client.get(OFFERINGS, params={"name": name}).json()
    assert len(found) == 1, found
    return str(found[0]["id"])


def _plan(client: TestClient, order_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"{ORDERS}/{order_id}/plan").json())


def test_demo_fibre_voice_and_colocation_orders_go_from_accepted_to_active(
    client: TestClient,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given the demo catalog published, and a customer with a site created through the API
    with session_factory() as s:
        publish_catalog(s, load_catalog_file(DEMO_CATALOG), "test")
    customer = client.post(CUSTOMERS, json={"name": "Harbour Dental", "status": "active"})
    assert customer.status_code == 201, customer.text
    site = client.post(
        SITES,
        json={
            "customerId": customer.json()["id"],
            "name": "Harbour Dental HQ",
            "city": "Bristol",
            "postcode": "BS1 4DJ",
            "country": "GB",
        },
    )
    assert site.status_code == 201, site.text
    offerings = {
        key: _offering(client, name)
        for key, name in [
            ("fibre", "Business Fibre 1G"),
            ("voice", "Hosted Voice Seat"),
            ("colo", "Colocation Quarter Rack"),
        ]
    }
    # When one order per offering is placed at that site
    orders = {}
    for key, offering_id in offerings.items():
        created = client.post(
            ORDERS,
            json={
                "relatedParty": [{"id": customer.json()["id"], "role": "customer"}],
                "productOrderItem": [
                    {
                        "id": "1",
                        "action": "add",
                        "productOffering": {"id": offering_id},
                        "product": {"place": [{"id": site.json()["id"], "role": "installationAddress"}]},
                    }
                ],
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["state"] == "acknowledged"
        orders[key] = created.json()["id"]
    # Then each plan shows the outside work the catalog asks for before the activation
    plans = {key: _plan(client, order_id) for key, order_id in orders.items()}
    assert [(p["kind"], p["adapterAction"]) for p in plans["fibre"]] == [
        ("fieldVisit", "technicianCompleted"),
        ("serviceActivation", "activate-access"),
    ]
    assert plans["fibre"][0]["parameters"]["workType"] == "install"
    assert [(p["kind"], p["adapterAction"]) for p in plans["voice"]] == [
        ("shipment", "shipmentDelivered"),
        ("serviceActivation", "create-seat"),
    ]
    assert plans["voice"][0]["parameters"]["items"] == [{"sku": "HANDSET-NW-DESK-2", "quantity": 1}]
    assert [(p["kind"], p["adapterAction"]) for p in plans["colo"]] == [
        ("pickup", "pickedUp"),
        ("fieldVisit", "technicianCompleted"),
        ("serviceActivation", "patch-cross-connect"),
    ]
    assert plans["colo"][0]["parameters"]["items"] == [{"sku": "CAGE-ACCESS-CARD", "quantity": 2}]
    assert plans["colo"][1]["parameters"]["items"] == [
        {"sku": "RACK-UNIT-1U", "quantity": 4},
        {"sku": "PDU-16A-METERED", "quantity": 1},
    ]
    # and the orders wait for that work: in progress, nothing activated
    for order_id in orders.values():
        wait_until(lambda o=order_id: _plan(client, o)[0]["state"] == "inProgress", 30, message="waiting")
        assert client.get(f"{ORDERS}/{order_id}").json()["state"] == "inProgress"
    with session_factory() as s:
        assert s.scalars(select(SimulatorLedgerEntry)).all() == []
    # When the field and shipping work is reported through the API
    for key, event, reference in [
        ("fibre", "technicianCompleted", "JOB-1"),
        ("voice", "shipmentDelivered", "TRK-9"),
        ("colo", "pickedUp", "DESK-1"),
        ("colo", "technicianCompleted", "JOB-2"),
    ]:
        reported = client.post(
            f"{ORDERS}/{orders[key]}/event", json={"eventType": event, "reference": reference}
        )
        assert reported.status_code == 201, reported.text
    # Then every order completes and its service is active at the site, for the customer, in the inventory
    for key, order_id in orders.items():
        final = wait_until(
            lambda o=order_id: (
                client.get(f"{ORDERS}/{o}").json()
                if client.get(f"{ORDERS}/{o}").json()["state"] in ("completed", "failed", "partial")
                else None
            ),
            30,
            message=f"{key} order final",
        )
        assert final["state"] == "completed", (key, final)
        assert final["productOrderItem"][0]["state"] == "completed"
        service_id = plans[key][-1]["service"]["id"]
        service = client.get(f"{SERVICES}/{service_id}").json()
        assert service["state"] == "active" and service["startDate"] is not None
        assert service["relatedParty"][0]["id"] == customer.json()["id"]
        assert service["place"] == [
            {"id": site.json()["id"], "role": "installationAddress", "@referredType": "GeographicSite"}
        ]
    active = client.get(SERVICES, params={"relatedParty.id": customer.json()["id"], "state": "active"}).json()
    assert sorted(s["id"] for s in active) == sorted(plans[k][-1]["service"]["id"] for k in orders)
    with session_factory() as s:
        ledger = s.scalars(select(SimulatorLedgerEntry)).all()
    assert sorted((e.operation, e.calls) for e in ledger) == [("activate", 1)] * 3
    # and the customer has three active products (TMF637), at the site, each realised by its service
    products = client.get(
        "/tmf-api/productInventory/v4/product", params={"relatedParty.id": customer.json()["id"]}
    ).json()
    assert sorted(
        (p["name"], p["status"], p["place"][0]["id"], p["realizingService"][0]["id"]) for p in products
    ) == sorted(
        (name, "active", site.json()["id"], plans[key][-1]["service"]["id"])
        for key, name in [
            ("fibre", "Business Fibre 1G"),
            ("voice", "Hosted Voice Seat"),
            ("colo", "Colocation Quarter Rack"),
        ]
    )
    # and each plan item is readable as a completed TMF641 service order of its product order
    service_orders = client.get(
        "/tmf-api/serviceOrdering/v4/serviceOrder", params={"productOrder.id": orders["fibre"]}
    )
    assert service_orders.headers["X-Total-Count"] == "2"
    assert [(o["@type"], o["state"], o["serviceOrderItem"][0]["kind"]) for o in service_orders.json()] == [
        ("ServiceOrder", "completed", "fieldVisit"),
        ("ServiceOrder", "completed", "serviceActivation"),
    ]
    one = client.get(f"/tmf-api/serviceOrdering/v4/serviceOrder/{plans['fibre'][1]['id']}")
    assert one.status_code == 200 and one.json()["productOrder"]["id"] == orders["fibre"]
    assert client.get("/tmf-api/serviceOrdering/v4/serviceOrder/nope").status_code == 404


def test_demo_managed_firewall_waits_for_each_project_milestone(
    client: TestClient,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given the demo catalog and a customer
    with session_factory() as s:
        publish_catalog(s, load_catalog_file(DEMO_CATALOG), "test")
    customer = client.post(CUSTOMERS, json={"name": "Harbour Dental", "status": "active"}).json()
    firewall = _offering(client, "Managed Firewall")
    # When a managed firewall is ordered
    created = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer["id"], "role": "customer"}],
            "productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": firewall}}],
        },
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    # Then its plan holds the shipment, the implementation project's four milestones, then the activation
    plan = _plan(client, order_id)
    assert [(p["kind"], p["parameters"].get("milestone")) for p in plan] == [
        ("shipment", None),
        ("projectMilestone", "Design workshop"),
        ("projectMilestone", "Policy build"),
        ("projectMilestone", "Cut-over"),
        ("projectMilestone", "Handover"),
        ("serviceActivation", None),
    ]
    assert [p["parameters"].get("revenuePercent") for p in plan[1:5]] == ["20", "30", "40", "10"]
    # When the shipment and each milestone are reported through the API, in order
    events = ["shipmentDelivered"] + ["milestoneAccepted"] * 4
    for n, event in enumerate(events):
        wait_until(lambda i=n: _plan(client, order_id)[i]["state"] == "inProgress", 30, message=f"step {n}")
        reported = client.post(f"{ORDERS}/{order_id}/event", json={"eventType": event, "reference": f"R{n}"})
        assert reported.status_code == 201, reported.text
        assert reported.json()["id"] == plan[n]["id"]
    # Then the order completes with the firewall policy pushed once
    final = wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if client.get(f"{ORDERS}/{order_id}").json()["state"] in ("completed", "failed", "partial")
            else None
        ),
        30,
        message="order final",
    )
    assert final["state"] == "completed"
    extra = client.post(f"{ORDERS}/{order_id}/event", json={"eventType": "milestoneAccepted"})
    assert extra.status_code == 409
    with session_factory() as s:
        assert [(e.operation, e.calls) for e in s.scalars(select(SimulatorLedgerEntry))] == [("activate", 1)]
