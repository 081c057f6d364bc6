"""A move re-runs the site work: the new site's IP prefix (from the pool serving it) and a number in its
area are held with the order and assigned to the service before it moves, a field visit is planned when the
offering needs one, and the old site's prefix (quarantine) and number (aging) are given back once it has
moved. A move that cannot get its resources at the new site is refused with 409 naming the resource and the
site, writing nothing. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.catalog import publish_catalog
from turnup.catalog.orm import ProductOffering
from turnup.inventory.logical import reservations as logical
from turnup.inventory.logical.orm import LogicalBlock, ResourceReservation, TelephoneNumber
from turnup.inventory.logical.reservations import ReserveLine
from turnup.kernel import clock
from turnup.ordering import ProductOrderCreate, create_order
from turnup.ordering.orm import ProductOrder
from turnup.service_inventory.orm import Service
from turnup.testing import wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"
SITES = "/tmf-api/geographicSiteManagement/v4/geographicSite"
POOLS = "/tmf-api/resourcePoolManagement/v4"

CATALOG: dict[str, Any] = {
    "catalog": "Moves",
    "productSpecifications": [
        {
            "name": "Office Line",
            "deliveryRequirements": {
                "logicalResources": [
                    {"kind": "ipv4Prefix", "parameters": {"prefixLength": 29}},
                    {"kind": "phoneNumber", "parameters": {"area": "buyer"}},
                ],
                "fieldVisit": {"workType": "install", "skills": ["fibre-splicing"], "durationMinutes": 120},
                "provisioning": [{"adapter": "network-simulator", "action": "activate", "parameters": {}}],
            },
        }
    ],
    "productOfferings": [
        {
            "name": "Office Line",
            "productSpecifications": ["Office Line"],
            "prices": [
                {
                    "name": "Office Line monthly",
                    "priceType": "recurring",
                    "recurringChargePeriodType": "month",
                    "price": {"unit": "GBP", "value": "30.00"},
                }
            ],
        }
    ],
}


def _post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _seed(client: TestClient) -> dict[str, str]:
    """Pools serving Leeds and Sheffield (customer purpose), numbers in 0113 and 0114."""
    _post(
        client,
        f"{POOLS}/resourcePool",
        {"poolType": "ipAggregate", "name": "rfc1918", "prefix": "10.0.0.0/8"},
    )
    pools = {
        city: _post(
            client,
            f"{POOLS}/resourcePool",
            {
                "poolType": "ipPool",
                "name": f"{city} v4",
                "prefix": prefix,
                "purpose": "customer",
                "site": city,
                "quarantineSeconds": 86400,
            },
        )["id"]
        for city, prefix in (("Leeds", "10.20.0.0/24"), ("Sheffield", "10.40.0.0/24"))
    }
    _post(
        client, f"{POOLS}/numberImport", {"start": "0113 496 0000", "end": "0113 496 0009", "country": "GB"}
    )
    _post(
        client, f"{POOLS}/numberImport", {"start": "0114 496 0000", "end": "0114 496 0009", "country": "GB"}
    )
    return pools


def _site(client: TestClient, customer_id: str, city: str, area: str) -> str:
    return str(
        _post(
            client,
            SITES,
            {
                "customerId": customer_id,
                "name": f"{city} office",
                "city": city,
                "region": area,
                "country": "GB",
            },
        )["id"]
    )


def _offering(factory: sessionmaker[Session]) -> str:
    with factory() as s:
        result = publish_catalog(s, CATALOG, "test")
        offering = s.scalars(select(ProductOffering).where(ProductOffering.id.in_(result.offerings))).one()
        return offering.id


def _wait_state(client: TestClient, order_id: str, *states: str) -> dict[str, Any]:
    return dict(
        wait_until(
            lambda: (
                client.get(f"{ORDERS}/{order_id}").json()
                if client.get(f"{ORDERS}/{order_id}").json()["state"] in states
                else None
            ),
            60,
            message=f"order {states}",
        )
    )


def _technician(client: TestClient, order_id: str) -> None:
    def reported() -> bool:
        response = client.post(f"{ORDERS}/{order_id}/event", json={"eventType": "technicianCompleted"})
        return response.status_code == 201

    wait_until(reported, 60, message="field visit awaited")


def _active_line(
    client: TestClient,
    factory: sessionmaker[Session],
    customer_id: str,
    offering_id: str,
    site_id: str,
    pool_id: str,
) -> tuple[str, dict[str, str]]:
    """An active Office Line at ``site_id`` with a Leeds /29 and a 0113 number (as quote acceptance leaves
    an order: a hold committed to the order, assigned to the service by the plan)."""
    with factory() as s:
        held = logical.reserve(
            s,
            [
                ReserveLine("ipPrefix", {"poolId": pool_id, "prefixLength": 29}),
                ReserveLine("telephoneNumber", {"country": "GB", "pattern": "113*"}),
            ],
            clock.now() + timedelta(hours=1),
            "test",
        )
        body = {
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {
                    "id": "1",
                    "action": "add",
                    "quantity": 1,
                    "productOffering": {"id": offering_id},
                    "product": {"place": [{"id": site_id}]},
                }
            ],
            "reservation": [{"id": held.id, "@referredType": "ResourceReservation"}],
        }
        order = create_order(s, ProductOrderCreate.model_validate(body), "test", commit=False)
        logical.commit(s, held.id, "test", service_id=f"order:{order.id}", commit_now=False)
        s.commit()
        order_id = order.id
    _technician(client, order_id)
    assert _wait_state(client, order_id, "completed", "failed", "held")["state"] == "completed"
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    service_id = str(next(p for p in plan if p["kind"] == "serviceActivation")["service"]["id"])
    return service_id, _carried(factory, service_id)


def _carried(factory: sessionmaker[Session], service_id: str) -> dict[str, str]:
    with factory() as s:
        service = s.get(Service, service_id)
        assert service is not None
        return {str(e["resourceType"]): str(e["value"]) for e in service.resources}


def test_a_move_gets_the_new_sites_resources_a_field_visit_and_releases_the_old_ones(
    client: TestClient, customer_id: str, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    # Given an active line at the Leeds office carrying a Leeds prefix and a 0113 number
    pools = _seed(client)
    offering = _offering(session_factory)
    leeds, sheffield = (
        _site(client, customer_id, "Leeds", "0113"),
        _site(client, customer_id, "Sheffield", "0114"),
    )
    service_id, before = _active_line(client, session_factory, customer_id, offering, leeds, pools["Leeds"])
    assert before["logicalResource"].startswith("10.20.0.") and before["telephoneNumber"].startswith("+44113")
    with session_factory() as s:
        old_ids = {str(e["resourceType"]): str(e["id"]) for e in s.get(Service, service_id).resources}  # type: ignore[union-attr]
    # When it moves to the Sheffield office
    moved = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {"id": "1", "action": "modify", "product": {"id": service_id, "place": [{"id": sheffield}]}}
            ],
        },
    )
    assert moved.status_code == 201, moved.text
    order_id = moved.json()["id"]
    # Then its plan assigns the new site's resources, moves out, waits for the field visit, moves in, and
    # gives the old site's resources back, each after the last
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    assert [(p["kind"], p["action"], p["adapterAction"]) for p in plan] == [
        ("siteResources", "assign", "assign"),
        ("serviceActivation", "moveOut", "deactivate"),
        ("fieldVisit", "move", "technicianCompleted"),
        ("serviceActivation", "moveIn", "activate"),
        ("siteResources", "release", "release"),
    ]
    assert [p["dependsOn"] for p in plan] == [[]] + [[plan[i]["id"]] for i in range(4)]
    assert plan[0]["parameters"]["resources"] == [
        f"ipv4 prefix {before['logicalResource']}",
        f"telephone number {before['telephoneNumber']}",
    ]
    assert plan[2]["parameters"]["siteId"] == sheffield and plan[2]["parameters"]["workType"] == "move"
    # the new site's resources were held with the order (a Sheffield /29, a 0114 number; the workflow may
    # already have assigned them, so their state is checked at the end)
    with session_factory() as s:
        hold = s.get(ResourceReservation, plan[0]["parameters"]["reservation"]["id"])
        assert hold is not None
        held = sorted((i.resource_type, i.value) for i in hold.items)
    assert [kind for kind, _ in held] == ["ipPrefix", "telephoneNumber"]
    assert held[0][1].startswith("10.40.0.") and held[1][1].startswith("+44114")
    # When the technician reports the visit, the move completes
    _technician(client, order_id)
    assert _wait_state(client, order_id, "completed", "failed", "held")["state"] == "completed"
    # Then the service is at Sheffield with a Sheffield prefix and a 0114 number only
    service = client.get(f"{SERVICES}/{service_id}").json()
    assert service["state"] == "active" and service["place"][0]["id"] == sheffield
    after = _carried(session_factory, service_id)
    assert sorted(after) == ["logicalResource", "telephoneNumber"]
    assert after["logicalResource"].endswith("/29")
    assert (after["logicalResource"], after["telephoneNumber"]) == (held[0][1], held[1][1])
    # and the old ones were given back: the prefix into its pool's quarantine, the number aging
    with session_factory() as s:
        old_block = s.get(LogicalBlock, old_ids["logicalResource"])
        old_number = s.get(TelephoneNumber, old_ids["telephoneNumber"])
        assert old_block is not None and old_block.state == "quarantine" and old_block.until is not None
        assert old_number is not None and old_number.state == "aging" and old_number.service_id is None
        assert s.get(ResourceReservation, plan[0]["parameters"]["reservation"]["id"]).state == "committed"  # type: ignore[union-attr]


def test_a_move_to_a_site_no_pool_serves_is_refused_naming_the_resource_and_site(
    client: TestClient, customer_id: str, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    pools = _seed(client)
    offering = _offering(session_factory)
    leeds = _site(client, customer_id, "Leeds", "0113")
    york = _site(client, customer_id, "York", "01904")
    service_id, before = _active_line(client, session_factory, customer_id, offering, leeds, pools["Leeds"])
    with session_factory() as s:
        orders = s.scalar(select(func.count()).select_from(ProductOrder))
        holds = s.scalar(select(func.count()).select_from(ResourceReservation))
    refused = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {"id": "1", "action": "modify", "product": {"id": service_id, "place": [{"id": york}]}}
            ],
        },
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["message"] == (
        f"productOrderItem[0].product.place[0].id: service {service_id} cannot move to site 'York office': "
        f"no ipv4 pool with purpose 'customer' serves site 'York office' (needed to move ipv4 prefix "
        f"{before['logicalResource']})"
    )
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(ProductOrder)) == orders
        assert s.scalar(select(func.count()).select_from(ResourceReservation)) == holds
    assert client.get(f"{SERVICES}/{service_id}").json()["place"][0]["id"] == leeds


def test_a_move_with_no_number_free_in_the_new_area_is_refused_at_order_time(
    client: TestClient, customer_id: str, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    # Given the line at Leeds and an office served by the Sheffield pool, in an area (0115) without numbers
    pools = _seed(client)
    offering = _offering(session_factory)
    leeds = _site(client, customer_id, "Leeds", "0113")
    elsewhere = _site(client, customer_id, "Sheffield", "0115")
    service_id, before = _active_line(client, session_factory, customer_id, offering, leeds, pools["Leeds"])
    with session_factory() as s:
        counts = (
            s.scalar(select(func.count()).select_from(ProductOrder)),
            s.scalar(select(func.count()).select_from(ResourceReservation)),
        )
    refused = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {"id": "1", "action": "modify", "product": {"id": service_id, "place": [{"id": elsewhere}]}}
            ],
        },
    )
    # Then 409 naming the number and the site; no order, no hold
    assert refused.status_code == 409, refused.text
    assert refused.json()["reason"] == "Resource unavailable"
    assert refused.json()["message"].startswith(
        f"productOrderItem[0].product.place[0].id: service {service_id} cannot move to site "
        f"'Sheffield office': no replacement for telephone number {before['telephoneNumber']} is "
        "available there ("
    )
    with session_factory() as s:
        assert (
            s.scalar(select(func.count()).select_from(ProductOrder)),
            s.scalar(select(func.count()).select_from(ResourceReservation)),
        ) == counts


def test_an_aborted_move_gives_back_the_new_sites_resources_and_keeps_the_old(
    client: TestClient, customer_id: str, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    # Given the line at Leeds whose network element now refuses every call (simulated outage)
    pools = _seed(client)
    offering = _offering(session_factory)
    leeds, sheffield = (
        _site(client, customer_id, "Leeds", "0113"),
        _site(client, customer_id, "Sheffield", "0114"),
    )
    service_id, before = _active_line(client, session_factory, customer_id, offering, leeds, pools["Leeds"])
    with session_factory() as s:
        service = s.get(Service, service_id)
        assert service is not None
        service.characteristics = {"simulateFailFirst": 99}
        s.commit()
    # When a move gets its new resources, then fails moving out, and staff abort it
    moved = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {"id": "1", "action": "modify", "product": {"id": service_id, "place": [{"id": sheffield}]}}
            ],
        },
    )
    assert moved.status_code == 201, moved.text
    order_id = moved.json()["id"]
    fallout = "/tmf-api/turnupOrchestration/v1/fallout"
    entry = wait_until(
        lambda: (client.get(fallout, params={"productOrder.id": order_id, "state": "open"}).json() or [None])[
            0
        ],
        60,
        message="fallout",
    )
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    assert entry["planItemId"] == plan[1]["id"] and plan[0]["state"] == "completed"
    assert client.post(f"{fallout}/{entry['id']}/abort", json={"reason": "site not ready"}).status_code == 200
    assert _wait_state(client, order_id, "failed")["state"] == "failed"
    # Then the service is still at Leeds with only its Leeds resources; the Sheffield ones went back
    assert client.get(f"{SERVICES}/{service_id}").json()["place"][0]["id"] == leeds
    assert _carried(session_factory, service_id) == before
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    assert (plan[0]["state"], plan[0]["skipReason"]) == ("cancelled", "undone: order aborted")
    assert [p["state"] for p in plan[1:]] == ["failed", "cancelled", "cancelled", "cancelled"]
    with session_factory() as s:
        hold = s.get(ResourceReservation, plan[0]["parameters"]["reservation"]["id"])
        assert hold is not None
        new = {i.resource_type: i for i in hold.items}
        block = s.get(LogicalBlock, new["ipPrefix"].block_id)
        number = s.get(TelephoneNumber, new["telephoneNumber"].number_id)
        assert block is not None and block.state == "quarantine"
        assert number is not None and number.state == "aging" and number.service_id is None


def test_a_cancelled_move_leaks_nothing(
    client: TestClient, customer_id: str, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    # Given the line at Leeds and a move to Sheffield waiting for its field visit
    pools = _seed(client)
    offering = _offering(session_factory)
    leeds, sheffield = (
        _site(client, customer_id, "Leeds", "0113"),
        _site(client, customer_id, "Sheffield", "0114"),
    )
    service_id, before = _active_line(client, session_factory, customer_id, offering, leeds, pools["Leeds"])
    moved = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {"id": "1", "action": "modify", "product": {"id": service_id, "place": [{"id": sheffield}]}}
            ],
        },
    )
    order_id = moved.json()["id"]
    wait_until(
        lambda: client.get(f"{ORDERS}/{order_id}/plan").json()[2]["state"] == "inProgress",
        60,
        message="visit",
    )
    # When the order is cancelled
    cancel = client.post(
        "/tmf-api/productOrderingManagement/v4/cancelProductOrder",
        json={"productOrder": {"id": order_id}, "cancellationReason": "customer stays"},
    )
    assert cancel.status_code == 201, cancel.text
    assert _wait_state(client, order_id, "cancelled")["state"] == "cancelled"
    # Then the service is back at Leeds with only its Leeds resources and the Sheffield ones went back
    service = client.get(f"{SERVICES}/{service_id}").json()
    assert service["state"] == "active" and service["place"][0]["id"] == leeds
    assert _carried(session_factory, service_id) == before
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    with session_factory() as s:
        hold = s.get(ResourceReservation, plan[0]["parameters"]["reservation"]["id"])
        assert hold is not None
        new = {i.resource_type: i for i in hold.items}
        block = s.get(LogicalBlock, new["ipPrefix"].block_id)
        number = s.get(TelephoneNumber, new["telephoneNumber"].number_id)
        assert block is not None and block.state == "quarantine"
        assert number is not None and number.state == "aging" and number.service_id is None
