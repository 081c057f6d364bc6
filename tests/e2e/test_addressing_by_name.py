"""Pools are addressed by their name and telephone numbers by their E.164 value wherever an id is taken
(API paths, reservation items, CLI); an unknown one is a 404 and a name two pools share a 409. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.cli.main import app
from turnup.inventory.logical.orm import LogicalBlock, TelephoneNumber
from turnup.kernel import clock
from turnup.kernel.settings import get_settings

POOLS = "/tmf-api/resourcePoolManagement/v4/resourcePool"
RESERVATIONS = "/tmf-api/resourcePoolManagement/v4/resourceReservation"
NUMBERS = "/tmf-api/resourceInventoryManagement/v4/telephoneNumber"
IMPORT = "/tmf-api/resourcePoolManagement/v4/numberImport"
runner = CliRunner()


def _post(client: TestClient, path: str, body: dict[str, Any], status: int = 201) -> Any:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    return response.json()


def _blocks(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return (
            s.scalar(select(func.count()).select_from(LogicalBlock).where(LogicalBlock.state == "allocated"))
            or 0
        )


@pytest.fixture
def pools(client: TestClient) -> dict[str, Any]:
    _post(client, POOLS, {"poolType": "ipAggregate", "name": "ten", "prefix": "10.0.0.0/8"})
    wan = _post(client, POOLS, {"poolType": "ipPool", "name": "dublin-wan", "prefix": "10.1.0.0/16"})
    vlan = _post(client, POOLS, {"poolType": "vlanPool", "name": "dublin-metro", "start": 100, "end": 199})
    return {"wan": wan, "vlan": vlan}


def test_pools_by_name_in_api_paths_and_reservations(
    client: TestClient, pools: dict[str, Any], session_factory: sessionmaker[Session]
) -> None:
    wan = pools["wan"]
    # GET, utilization, allocate and PATCH take the name as well as the id
    assert client.get(f"{POOLS}/dublin-wan").json()["id"] == wan["id"]
    assert (
        client.get(f"{POOLS}/dublin-wan/utilization").json()
        == client.get(f"{POOLS}/{wan['id']}/utilization").json()
    )
    block = _post(client, f"{POOLS}/dublin-wan/allocate", {"prefixLength": 29})
    assert block["value"] == "10.1.0.0/29"
    patched = client.patch(
        f"{POOLS}/dublin-wan",
        json={"description": "customer WAN, Dublin"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200 and patched.json()["id"] == wan["id"]
    # a reservation item names its pool by name
    reservation = _post(
        client,
        RESERVATIONS,
        {
            "validFor": {"endDateTime": (clock.now() + timedelta(hours=2)).isoformat()},
            "relatedParty": "c1",
            "reservationItem": [{"resourceType": "vlan", "poolId": "dublin-metro"}],
        },
    )
    assert [i["resource"]["value"] for i in reservation["reservationItem"]] == ["100"]
    assert _blocks(session_factory) == 1
    # unknown names are 404s naming what was asked for, and nothing is taken
    missing = client.get(f"{POOLS}/no-such-pool")
    assert missing.status_code == 404 and "'no-such-pool' not found" in missing.json()["message"]
    assert client.post(f"{POOLS}/no-such-pool/allocate", json={"prefixLength": 29}).status_code == 404
    assert _blocks(session_factory) == 1
    # a name two pools share (different resource types) is a 409 listing both ids
    twin = _post(client, POOLS, {"poolType": "vlanPool", "name": "dublin-wan", "start": 300, "end": 399})
    ambiguous = client.get(f"{POOLS}/dublin-wan")
    assert ambiguous.status_code == 409
    assert wan["id"] in ambiguous.json()["message"] and twin["id"] in ambiguous.json()["message"]
    assert client.get(f"{POOLS}/{wan['id']}").json()["name"] == "dublin-wan"  # the id still works


def test_numbers_by_e164_value(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    _post(client, IMPORT, {"thousandsBlock": "+12125551", "numberClass": "business"})
    with session_factory() as s:
        number_id = s.scalars(select(TelephoneNumber.id).where(TelephoneNumber.digits == "12125551234")).one()
    shown = client.get(f"{NUMBERS}/+12125551234").json()
    assert (shown["id"], shown["value"]) == (number_id, "+12125551234")
    assert client.get(f"{NUMBERS}/12125551234").json()["id"] == number_id  # the '+' may be left out
    assigned = client.patch(
        f"{NUMBERS}/+12125551234",
        json={"status": "assigned", "serviceId": "s1"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert assigned.status_code == 200 and assigned.json()["id"] == number_id
    assert client.get(f"{NUMBERS}/{number_id}").json()["lifecycleState"] == "assigned"
    unknown = client.get(f"{NUMBERS}/+12125559999")
    assert unknown.status_code == 404 and "'+12125559999' not found" in unknown.json()["message"]
    refused = client.patch(
        f"{NUMBERS}/+12125559999",
        json={"status": "assigned", "serviceId": "s1"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert refused.status_code == 404
    with session_factory() as s:
        assert (
            s.scalar(
                select(func.count()).select_from(TelephoneNumber).where(TelephoneNumber.state == "assigned")
            )
            == 1
        )


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def test_cli_takes_pool_names_and_e164_numbers(
    client: TestClient, pools: dict[str, Any], cli: None, session_factory: sessionmaker[Session]
) -> None:
    assert "10.1.0.0/29" in _run("ip", "allocate", "dublin-wan", "--length", "29")
    assert "100" in _run("pools", "allocate", "dublin-metro")
    assert _blocks(session_factory) == 2
    assert "resource pool 'nowhere' not found" in _run("ip", "allocate", "nowhere", "--length", "29", code=1)
    _post(client, IMPORT, {"thousandsBlock": "+12125551", "numberClass": "business"})
    _run("numbers", "set-status", "+12125551234", "assigned", "--service", "s1")
    with session_factory() as s:
        assert (
            s.scalars(select(TelephoneNumber.state).where(TelephoneNumber.digits == "12125551234")).one()
            == "assigned"
        )
    assert "telephoneNumber '+12125559999' not found" in _run(
        "numbers", "set-status", "+12125559999", "reserved", code=1
    )
