"""Move (new site): a modify order naming a new site deactivates the service at the old site, activates it
at the new one and updates the service's site; bad moves are refused; an aborted move is undone."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel.outbox import OutboxEvent
from turnup.provisioning.orm import SimulatorLedgerEntry
from turnup.testing import make_customer, wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"
SITES = "/tmf-api/geographicSiteManagement/v4/geographicSite"
FALLOUT = "/tmf-api/turnupOrchestration/v1/fallout"


def _site(client: TestClient, customer_id: str, name: str) -> str:
    created = client.post(SITES, json={"customerId": customer_id, "name": name, "country": "GB"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _item(action: str, **fields: Any) -> dict[str, Any]:
    return {"id": "1", "action": action, **fields}


def _order(client: TestClient, customer_id: str, item: dict[str, Any]) -> Any:
    return client.post(
        ORDERS, json={"relatedParty": [{"id": customer_id, "role": "customer"}], "productOrderItem": [item]}
    )


def _done(client: TestClient, order_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if client.get(f"{ORDERS}/{order_id}").json()["state"]
            in ("completed", "failed", "partial", "held")
            else None
        ),
        60,
        message="order end",
    )


def _active_at(client: TestClient, customer_id: str, offering: str, site: str) -> str:
    order = _order(
        client, customer_id, _item("add", productOffering={"id": offering}, product={"place": [{"id": site}]})
    )
    assert order.status_code == 201, order.text
    assert _done(client, order.json()["id"])["state"] == "completed"
    return str(client.get(f"{ORDERS}/{order.json()['id']}/plan").json()[0]["service"]["id"])


def _ledger(factory: sessionmaker[Session]) -> dict[str, tuple[str, str | None]]:
    with factory() as s:
        return {
            e.idempotency_key: (e.operation, e.parameters.get("siteId"))
            for e in s.scalars(select(SimulatorLedgerEntry))
        }


def test_a_move_deactivates_at_the_old_site_activates_at_the_new_and_updates_the_service(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an active fibre at the customer's old office
    old, new = _site(client, customer_id, "Old office"), _site(client, customer_id, "New office")
    service_id = _active_at(client, customer_id, catalog["fibre"], old)
    assert client.get(f"{SERVICES}/{service_id}").json()["place"][0]["id"] == old
    # When a modify order moves it to the new office
    moved = _order(client, customer_id, _item("modify", product={"id": service_id, "place": [{"id": new}]}))
    assert moved.status_code == 201, moved.text
    plan = client.get(f"{ORDERS}/{moved.json()['id']}/plan").json()
    assert [(p["action"], p["adapterAction"], p["parameters"]["siteId"]) for p in plan] == [
        ("moveOut", "deactivate", old),
        ("moveIn", "activate", new),
    ]
    assert plan[1]["dependsOn"] == [plan[0]["id"]]
    assert _done(client, moved.json()["id"])["state"] == "completed"
    # Then the network saw a deactivation at the old site and an activation at the new one, once each
    ledger = _ledger(session_factory)
    assert ledger[f"{plan[0]['id']}:deactivate"] == ("deactivate", old)
    assert ledger[f"{plan[1]['id']}:activate"] == ("activate", new)
    # and the service is active at the new site, its history recording the move
    service = client.get(f"{SERVICES}/{service_id}").json()
    assert service["state"] == "active" and service["place"][0]["id"] == new
    assert [h["itemAction"] for h in service["serviceOrderItem"]][-2:] == ["moveOut", "moveIn"]
    with session_factory() as s:
        moves = [
            e.payload["event"]["serviceDelivery"]
            for e in s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "ServiceMovedEvent"))
        ]
    assert [(m["serviceId"], m["previousSiteId"], m["siteId"]) for m in moves] == [(service_id, old, new)]


def test_bad_moves_are_refused(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    old = _site(client, customer_id, "Office")
    service_id = _active_at(client, customer_id, catalog["fibre"], old)
    with session_factory() as s:
        stranger = make_customer(s, "Other Ltd")
    theirs = _site(client, stranger, "Their office")
    cases = [
        (
            _item("modify", product={"id": service_id, "place": [{"id": old}]}),
            400,
            f"productOrderItem[0].product.place[0].id: service {service_id} is already at site {old}",
        ),
        (
            _item("modify", product={"id": service_id, "place": [{"id": "nope"}]}),
            400,
            "productOrderItem[0].product.place[0].id: unknown geographic site 'nope'",
        ),
        (
            _item("modify", product={"id": service_id, "place": [{"id": theirs}]}),
            400,
            f"productOrderItem[0].product.place[0].id: site '{theirs}' belongs to another customer",
        ),
        (
            _item("delete", product={"id": service_id, "place": [{"id": theirs}]}),
            400,
            "productOrderItem[0].product.place: a move is a 'modify' item with only product.place",
        ),
        (
            _item("add", productOffering={"id": catalog["fibre"]}, product={"place": [{"id": theirs}]}),
            400,
            f"productOrderItem[0].product.place[0].id: site '{theirs}' belongs to another customer",
        ),
    ]
    for item, status, message in cases:
        response = _order(client, customer_id, item)
        assert (response.status_code, response.json().get("message")) == (status, message), item
    assert client.get(f"{SERVICES}/{service_id}").json()["place"][0]["id"] == old


def test_an_aborted_move_puts_the_service_back_at_its_old_site(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an active link whose element refuses every activation at the new site (simulated outage)
    from turnup.testing import make_offering

    with session_factory() as s:
        offering = make_offering(
            s, "Link", [{"adapter": "network-simulator", "action": "activate", "parameters": {}}]
        )
    old, new = _site(client, customer_id, "Old"), _site(client, customer_id, "New")
    service_id = _active_at(client, customer_id, offering, old)
    with session_factory() as s:
        from turnup.service_inventory.orm import Service

        service = s.get(Service, service_id)
        assert service is not None
        service.characteristics = {"simulateFailFirst": 99}  # every later call fails
        s.commit()
    moved = _order(client, customer_id, _item("modify", product={"id": service_id, "place": [{"id": new}]}))
    entry = wait_until(
        lambda: (
            client.get(FALLOUT, params={"productOrder.id": moved.json()["id"], "state": "open"}).json()
            or [None]
        )[0],
        30,
    )
    assert entry["step"] == "activate"
    plan = client.get(f"{ORDERS}/{moved.json()['id']}/plan").json()
    assert entry["planItemId"] == plan[0]["id"]  # the deactivation at the old site failed
    # When staff abort
    assert client.post(f"{FALLOUT}/{entry['id']}/abort", json={"reason": "site not ready"}).status_code == 200
    # Then the order failed and the service is still active at the old site
    final = wait_until(
        lambda: (
            client.get(f"{ORDERS}/{moved.json()['id']}").json()
            if client.get(f"{ORDERS}/{moved.json()['id']}").json()["state"] == "failed"
            else None
        ),
        30,
    )
    assert [i["state"] for i in final["productOrderItem"]] == ["failed"]
    service_doc = client.get(f"{SERVICES}/{service_id}").json()
    assert service_doc["state"] == "active" and service_doc["place"][0]["id"] == old
