"""Logical inventory through the HTTP API: pools, allocations, TMF639 views, reservations, numbers,
bad input as TMF errors that change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory.logical.orm import LogicalBlock, LogicalSpace, ResourceReservation, TelephoneNumber
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.outbox import OutboxEvent

POOLS = "/tmf-api/resourcePoolManagement/v4/resourcePool"
RESERVATIONS = "/tmf-api/resourcePoolManagement/v4/resourceReservation"
RESOURCES = "/tmf-api/resourceInventoryManagement/v4/logicalResource"
NUMBERS = "/tmf-api/resourceInventoryManagement/v4/telephoneNumber"
IMPORT = "/tmf-api/resourcePoolManagement/v4/numberImport"


def _post(client: TestClient, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    return response.json()


def _state(factory: sessionmaker[Session]) -> tuple[int, ...]:
    with factory() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (LogicalSpace, LogicalBlock, ResourceReservation, TelephoneNumber, OutboxEvent)
        )


def _ip_pool(client: TestClient, prefix: str = "10.1.0.0/16", **extra: Any) -> dict[str, Any]:
    if client.get(POOLS, params={"name": "ten"}).headers["X-Total-Count"] == "0":
        _post(client, POOLS, {"poolType": "ipAggregate", "name": "ten", "prefix": "10.0.0.0/8"})
    return _post(
        client,
        POOLS,
        {
            "poolType": "ipPool",
            "name": f"pool {prefix}",
            "prefix": prefix,
            "purpose": "customer-wan",
            "site": "LDN1",
            **extra,
        },
    )


def test_ip_pool_allocate_view_and_release(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    pool = _ip_pool(client, quarantineSeconds=86400)
    assert pool["@type"] == "ResourcePool" and pool["poolType"] == "ipPool" and pool["size"] == 65536
    prefix = _post(client, f"{POOLS}/{pool['id']}/allocate", {"prefixLength": 29, "serviceId": "svc-9"})
    assert (prefix["@type"], prefix["value"], prefix["lifecycleState"]) == (
        "IpPrefix",
        "10.1.0.0/29",
        "allocated",
    )
    assert prefix["href"].endswith(f"{RESOURCES}/{prefix['id']}")
    listed = client.get(RESOURCES, params={"resourcePool.id": pool["id"], "serviceId": "svc-9"})
    assert [i["value"] for i in listed.json()] == ["10.1.0.0/29"] and listed.headers["X-Total-Count"] == "1"
    assert client.get(f"{RESOURCES}/{prefix['id']}", params={"fields": "value"}).json() == {
        "id": prefix["id"],
        "href": prefix["href"],
        "@type": "IpPrefix",
        "value": "10.1.0.0/29",
    }
    util = client.get(f"{POOLS}/{pool['id']}/utilization").json()
    assert (util["allocated"], util["total"]) == (8, 65536)
    assert client.delete(f"{RESOURCES}/{prefix['id']}").status_code == 204
    quarantined = client.get(f"{RESOURCES}/{prefix['id']}").json()
    assert quarantined["lifecycleState"] == "quarantine" and quarantined["quarantineUntil"].endswith("Z")
    again = client.delete(f"{RESOURCES}/{prefix['id']}")
    assert again.status_code == 409 and "id: logicalResource" in again.json()["message"]
    assert client.delete(f"{RESOURCES}/missing").status_code == 404
    # the quarantined /29 is not handed out again
    assert _post(client, f"{POOLS}/{pool['id']}/allocate", {"prefixLength": 29})["value"] == "10.1.0.8/29"
    with session_factory() as s:
        events = s.scalars(
            select(OutboxEvent.event_type).where(OutboxEvent.resource_id == prefix["id"])
        ).all()
        assert sorted(events) == ["ResourceCreateEvent", "ResourceStateChangeEvent"]
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == prefix["id"])).all()
        assert sorted(actions) == ["logicalResource.allocate", "logicalResource.release"]


def test_exhaustion_is_a_tmf_409(client: TestClient) -> None:
    pool = _ip_pool(client, "10.1.0.0/30")
    for _ in range(4):
        _post(client, f"{POOLS}/{pool['id']}/allocate", {})
    response = client.post(f"{POOLS}/{pool['id']}/allocate", json={})
    assert response.status_code == 409
    assert response.json()["reason"] == "Pool exhausted" and "prefixLength" in response.json()["message"]


def test_vlan_asn_and_identifier_pools(client: TestClient) -> None:
    vlans = _post(
        client,
        POOLS,
        {"poolType": "vlanPool", "name": "access", "routingDomain": "metro-1", "start": 100, "end": 103},
    )
    values = [_post(client, f"{POOLS}/{vlans['id']}/allocate", {})["value"] for _ in range(2)]
    assert values == ["100", "101"]
    assert _post(client, f"{POOLS}/{vlans['id']}/allocate", {"value": 103})["@type"] == "Vlan"
    taken = client.post(f"{POOLS}/{vlans['id']}/allocate", json={"value": 103})
    assert taken.status_code == 409 and "value: vlan 103 is not free" in taken.json()["message"]
    # the same VLAN ids in another domain are independent
    other = _post(
        client,
        POOLS,
        {"poolType": "vlanPool", "name": "access", "routingDomain": "metro-2", "start": 1, "end": 4094},
    )
    assert _post(client, f"{POOLS}/{other['id']}/allocate", {"value": 100})["value"] == "100"
    asns = _post(
        client, POOLS, {"poolType": "asnPool", "name": "private32", "start": 4200000000, "end": 4294967294}
    )
    assert _post(client, f"{POOLS}/{asns['id']}/allocate", {})["value"] == "4200000000"
    assert _post(client, f"{POOLS}/{asns['id']}/allocate", {"value": 4294967294})["number"] == 4294967294
    circuits = _post(
        client,
        POOLS,
        {"poolType": "identifierPool", "name": "circuits", "template": "LDN-ETH-{n:06d}", "start": 41},
    )
    assert _post(client, f"{POOLS}/{circuits['id']}/allocate", {})["value"] == "LDN-ETH-000041"


def test_bad_input_is_a_tmf_error_naming_the_field_and_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    pool = _ip_pool(client)
    _post(client, POOLS, {"poolType": "vlanPool", "name": "v", "start": 10, "end": 20})
    before = _state(session_factory)
    cases = [
        (POOLS, {"poolType": "ipAggregate", "name": "bad", "prefix": "10.0.0.0/33"}, 400, "prefix:"),
        (POOLS, {"poolType": "ipAggregate", "name": "bad", "prefix": "192.168.1.1/24"}, 400, "host bits set"),
        (
            POOLS,
            {"poolType": "ipAggregate", "name": "bad", "prefix": "10.128.0.0/9"},
            409,
            "prefix: 10.128.0.0/9 overlaps",
        ),
        (
            POOLS,
            {
                "poolType": "ipPool",
                "name": "bad",
                "prefix": "10.1.128.0/17",
                "parentId": pool["id"],
                "allocationPolicy": "worst-fit",
            },
            400,
            "allocationPolicy",
        ),
        (
            POOLS,
            {"poolType": "vlanPool", "name": "bad", "start": 0, "end": 5},
            400,
            "start: 0 is invalid: VLAN",
        ),
        (
            POOLS,
            {"poolType": "vlanPool", "name": "bad", "start": 5, "end": 4095},
            400,
            "end: 4095 is invalid",
        ),
        (
            POOLS,
            {"poolType": "vlanPool", "name": "bad", "start": 15, "end": 30},
            409,
            "start: range 15-30 overlaps",
        ),
        (
            POOLS,
            {"poolType": "asnPool", "name": "bad", "start": 0, "end": 5},
            400,
            "start: 0 is invalid: ASNs",
        ),
        (POOLS, {"poolType": "identifierPool", "name": "bad", "template": "{x}"}, 400, "template:"),
        (f"{POOLS}/{pool['id']}/allocate", {"prefixLength": 8}, 400, "prefixLength: /8 is outside pool"),
        (
            f"{POOLS}/{pool['id']}/allocate",
            {"prefix": "10.1.0.1/29"},
            400,
            "prefix: '10.1.0.1/29' has host bits",
        ),
        (f"{POOLS}/{pool['id']}/allocate", {"prefix": "11.0.0.0/24"}, 400, "prefix: 11.0.0.0/24 is outside"),
        (f"{POOLS}/{pool['id']}/allocate", {"colour": "red"}, 400, "colour"),
        (f"{POOLS}/missing/allocate", {}, 404, "poolId: resource pool 'missing' not found"),
        (IMPORT, {"start": "+44 1234"}, 400, "start: '+44 1234' is not a valid E.164"),
        (IMPORT, {"start": "07911 123456"}, 400, "start: '07911 123456' is a national number; give country"),
    ]
    for path, body, status, message in cases:
        response = client.post(path, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["@type"] == "Error" and message in response.json()["message"], response.json()
    vlan_pool = client.get(POOLS, params={"name": "v"}).json()[0]
    for value in (0, 4095):
        response = client.post(f"{POOLS}/{vlan_pool['id']}/allocate", json={"value": value})
        assert response.status_code == 400 and "value: " in response.json()["message"]
    assert _state(session_factory) == before


def test_reservation_is_all_or_nothing_then_extend_commit_release(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    pool = _ip_pool(client)
    vlans = _post(client, POOLS, {"poolType": "vlanPool", "name": "v", "start": 10, "end": 10})
    _post(client, IMPORT, {"start": "020 7946 0000", "end": "020 7946 0009", "country": "GB"})
    until = (clock.now() + timedelta(hours=2)).isoformat()
    before = _state(session_factory)
    # the VLAN line asks for a VLAN the pool does not have: nothing at all is reserved
    failed = client.post(
        RESERVATIONS,
        json={
            "validFor": {"endDateTime": until},
            "reservationItem": [
                {"resourceType": "ipPrefix", "poolId": pool["id"], "prefixLength": 30},
                {"resourceType": "vlan", "poolId": vlans["id"], "value": 11},
            ],
        },
    )
    assert (
        failed.status_code == 400
        and "reservationItem[1].value: 11 is outside pool" in failed.json()["message"]
    )
    assert _state(session_factory) == before
    body = {
        "validFor": {"endDateTime": until},
        "relatedParty": "quote-7",
        "reservationItem": [
            {"resourceType": "ipPrefix", "poolId": pool["id"], "prefixLength": 30},
            {"resourceType": "vlan", "poolId": vlans["id"]},
            {"resourceType": "telephoneNumber", "number": "+442079460007"},
        ],
    }
    reservation = _post(client, RESERVATIONS, body)
    assert reservation["reservationState"] == "reserved"
    assert [i["resource"]["value"] for i in reservation["reservationItem"]] == [
        "10.1.0.0/30",
        "10",
        "+442079460007",
    ]
    # the VLAN pool is now empty: a second reservation fails as a whole with 409
    second = client.post(RESERVATIONS, json=body)
    assert second.status_code == 409 and "reservationItem[1]" in second.json()["message"]
    later = (clock.now() + timedelta(days=1)).isoformat()
    extended = client.patch(f"{RESERVATIONS}/{reservation['id']}", json={"validFor": {"endDateTime": later}})
    assert extended.status_code == 200 and extended.json()["validFor"]["endDateTime"] is not None
    committed = client.patch(
        f"{RESERVATIONS}/{reservation['id']}", json={"reservationState": "committed", "serviceId": "svc-1"}
    )
    assert committed.status_code == 200 and committed.json()["reservationState"] == "committed"
    prefix_id = reservation["reservationItem"][0]["resource"]["id"]
    assert client.get(f"{RESOURCES}/{prefix_id}").json()["lifecycleState"] == "allocated"
    number_id = reservation["reservationItem"][2]["resource"]["id"]
    number = client.get(f"{NUMBERS}/{number_id}").json()
    assert (number["lifecycleState"], number["serviceId"]) == ("assigned", "svc-1")
    again = client.patch(f"{RESERVATIONS}/{reservation['id']}", json={"reservationState": "released"})
    assert again.status_code == 409


def test_expired_reservation_cannot_be_committed_and_its_resources_return(client: TestClient) -> None:
    pool = _ip_pool(client, "10.1.0.0/30")
    until = (clock.now() + timedelta(minutes=5)).isoformat()
    reservation = _post(
        client,
        RESERVATIONS,
        {
            "validFor": {"endDateTime": until},
            "reservationItem": [{"resourceType": "ipPrefix", "poolId": pool["id"], "prefixLength": 30}],
        },
    )
    clock.advance(timedelta(minutes=6))
    assert client.get(f"{RESERVATIONS}/{reservation['id']}").json()["reservationState"] == "expired"
    refused = client.patch(f"{RESERVATIONS}/{reservation['id']}", json={"reservationState": "committed"})
    assert refused.status_code == 409 and "expired" in refused.json()["message"]
    assert _post(client, f"{POOLS}/{pool['id']}/allocate", {"prefixLength": 30})["value"] == "10.1.0.0/30"


def test_numbers_search_lifecycle_and_pooling_report(client: TestClient) -> None:
    result = _post(client, IMPORT, {"thousandsBlock": "+12125551", "numberClass": "business"})
    assert result["count"] == 1000
    found = client.get(NUMBERS, params={"pattern": "*1CAB", "fields": "value,nationalFormat"})
    assert found.json() == [
        {
            "id": found.json()[0]["id"],
            "href": found.json()[0]["href"],
            "@type": "TelephoneNumber",
            "value": "+12125551222",
            "nationalFormat": "(212) 555-1222",
        }
    ]
    vanity = client.get(NUMBERS, params={"country": "US", "pattern": "*1CAB"}).json()
    assert [n["value"] for n in vanity] == ["+12125551222"]
    golden = client.get(NUMBERS, params={"country": "US", "minRepeat": 4}).json()
    assert [n["value"] for n in golden] == ["+12125551111"]
    assert client.get(NUMBERS, params={"colour": "red"}).status_code == 400
    number = golden[0]
    assigned = client.patch(f"{NUMBERS}/{number['id']}", json={"status": "assigned", "serviceId": "s1"})
    assert assigned.status_code == 200 and assigned.json()["lifecycleState"] == "assigned"
    aging = client.patch(f"{NUMBERS}/{number['id']}", json={"status": "aging"}).json()
    assert aging["agingUntil"] is not None
    early = client.patch(f"{NUMBERS}/{number['id']}", json={"status": "available"})
    assert early.status_code == 409 and "before its aging ends" in early.json()["message"]
    report = client.get("/tmf-api/resourcePoolManagement/v4/numberBlockPoolingReport").json()
    assert [(b["prefix"], b["used"], b["donatable"]) for b in report] == [("+12125551", 1, True)]
    assert (
        client.get(
            "/tmf-api/resourcePoolManagement/v4/numberBlockPoolingReport", params={"thresholdPercent": "0.05"}
        ).json()
        == []
    )
