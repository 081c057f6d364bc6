"""What a user reads of orders and services: the events an order waits for (``awaitedEvent``), plan items
naming the caller's order item id, the ``turnup orders`` / ``turnup services`` CLI groups (filters,
pagination, never-cut ids, JSON / CSV), and CLI hrefs that follow the served URL. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.cli.main import _record_served_url, app
from turnup.kernel import endpoint, hrefs
from turnup.kernel.settings import Settings, get_settings
from turnup.service_inventory.orm import Service
from turnup.testing import make_customer, make_offering, order_body

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
runner = CliRunner()
NARROW = {"COLUMNS": "40"}  # a narrow terminal width: output that is not a terminal must ignore it


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    for name in endpoint.URL_ENV:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    hrefs.use_server_url(None)
    get_settings.cache_clear()


@pytest.fixture
def waiting_offering(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as s:
        return make_offering(
            s,
            "Fibre with install",
            [
                {"kind": "shipment"},
                {"kind": "fieldVisit"},
                {"adapter": "network-simulator", "action": "activate-access", "parameters": {"mbps": 500}},
            ],
        )


@pytest.fixture
def plain_offering(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as s:
        return make_offering(
            s, "Hosted Voice Seat", [{"adapter": "voice-platform", "action": "create-seat", "parameters": {}}]
        )


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=NARROW)
    assert result.exit_code == code, result.output
    return result.output


def _order(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(ORDERS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_order_shows_the_events_it_awaits_and_plan_items_name_the_callers_item(
    client: TestClient,
    customer_id: str,
    waiting_offering: str,
    plain_offering: str,
    dbos_schema_cleanup: None,
) -> None:
    # Given an order whose item the caller calls "A-7", for an offering shipped and fitted on site
    body = order_body(customer_id, waiting_offering)
    body["productOrderItem"][0]["id"] = "A-7"
    order = _order(client, body)
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    # Then its plan items name that item id, and the order lists the two events it waits for, plainly
    assert [p["productOrderItemId"] for p in plan] == ["A-7", "A-7", "A-7"]
    expected = [
        {
            "eventType": "shipmentDelivered",
            "planItemId": plan[0]["id"],
            "state": "acknowledged",
            "kind": "shipment",
        },
        {
            "eventType": "technicianCompleted",
            "planItemId": plan[1]["id"],
            "state": "acknowledged",
            "kind": "fieldVisit",
        },
    ]
    assert order["awaitedEvent"] == expected
    assert client.get(f"{ORDERS}/{order['id']}").json()["awaitedEvent"] == expected
    # An order with nothing to wait for says so
    assert _order(client, order_body(customer_id, plain_offering))["awaitedEvent"] == []
    # And the OpenAPI document describes the extension on the order creation
    spec = client.get("/openapi.json").json()
    assert (
        "`awaitedEvent`: `[{eventType, planItemId, state, kind}]`"
        in spec["paths"][ORDERS]["post"]["description"]
    )


def test_orders_and_services_cli_lists_and_shows_with_whole_ids(
    client: TestClient,
    cli: None,
    customer_id: str,
    waiting_offering: str,
    plain_offering: str,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    # Given three orders of two customers (the last one for a plain offering)
    with session_factory() as s:
        other = make_customer(s, "Other Ltd")
    first = _order(client, order_body(customer_id, waiting_offering))
    second = _order(client, order_body(customer_id, plain_offering))
    third = _order(client, order_body(other, plain_offering))
    # When orders are listed on a narrow width into a pipe: every id whole, newest first
    listed = _run("orders", "list")
    for order in (first, second, third):
        assert order["id"] in listed
    as_json = json.loads(_run("orders", "list", "--output", "json"))
    assert [o["id"] for o in as_json] == [third["id"], second["id"], first["id"]]
    assert as_json[2] == {
        "id": first["id"],
        "state": "acknowledged",
        "customer": customer_id,
        "order date": first["orderDate"],
        "offerings": "Fibre with install",
        "awaiting": "shipmentDelivered, technicianCompleted",
    }
    # filters and pagination
    mine = json.loads(_run("orders", "list", "--customer", customer_id, "-o", "json"))
    assert [o["id"] for o in mine] == [second["id"], first["id"]]
    page = json.loads(_run("orders", "list", "--limit", "1", "--offset", "1", "-o", "json"))
    assert [o["id"] for o in page] == [second["id"]]
    by_offering = json.loads(_run("orders", "list", "--offering", waiting_offering, "-o", "json"))
    assert [o["id"] for o in by_offering] == [first["id"]]
    assert json.loads(_run("orders", "list", "--state", "completed", "-o", "json")) == []
    rows = list(csv.reader(io.StringIO(_run("orders", "list", "--customer", other, "-o", "csv"))))
    assert rows[0] == ["id", "state", "customer", "order date", "offerings", "awaiting"]
    assert rows[1][:3] == [third["id"], "acknowledged", other] and len(rows) == 2
    # show: items, plan and the awaited events with their plan item ids
    plan = client.get(f"{ORDERS}/{first['id']}/plan").json()
    shown = _run("orders", "show", first["id"])
    assert "Awaited events" in shown
    for p in plan:
        assert p["id"] in shown
    lines = [line for line in shown.splitlines() if "shipmentDelivered" in line]
    assert any(plan[0]["id"] in line and "acknowledged" in line for line in lines)
    document = json.loads(_run("orders", "show", first["id"], "-o", "json"))
    assert document["awaitedEvent"] == first["awaitedEvent"]
    assert [p["id"] for p in document["planItem"]] == [p["id"] for p in plan]
    assert "Awaits no events" in _run("orders", "show", second["id"])
    missing = _run("orders", "show", "no-such-order", code=1)
    assert "productOrder 'no-such-order' not found" in " ".join(missing.split())

    # Services: the designed services of those orders, with filters
    with session_factory() as s:
        services = {sv.id: sv for sv in s.scalars(select(Service))}
        assert s.scalar(select(func.count()).select_from(Service)) == 3
    listed = _run("services", "list")
    for service_id in services:
        assert service_id in listed
    theirs = json.loads(_run("services", "list", "--customer", other, "-o", "json"))
    assert [(x["customer"], x["state"], x["offering"]) for x in theirs] == [
        (other, "designed", "Hosted Voice Seat")
    ]
    assert json.loads(_run("services", "list", "--state", "active", "-o", "json")) == []
    assert len(json.loads(_run("services", "list", "--limit", "2", "-o", "json"))) == 2
    service_id = theirs[0]["id"]
    shown = _run("services", "show", service_id)
    assert service_id in shown and "designed" in shown
    assert json.loads(_run("services", "show", service_id, "-o", "json"))["id"] == service_id
    _run("services", "show", "nope", code=1)


def test_cli_hrefs_follow_the_url_the_server_recorded(
    client: TestClient,
    cli: None,
    db_url: str,
    customer_id: str,
    plain_offering: str,
    monkeypatch: pytest.MonkeyPatch,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    order = _order(client, order_body(customer_id, plain_offering))
    path = f"{ORDERS}/{order['id']}"
    # Given no server recorded its URL: the settings' host and port
    assert (
        json.loads(_run("orders", "show", order["id"], "-o", "json"))["href"]
        == f"http://127.0.0.1:8000{path}"
    )
    # When `turnup serve` records where it listens (a wildcard address shows as this machine's name)
    _record_served_url(Settings(database_url=db_url, host="0.0.0.0", port=9001))
    served = f"http://{socket.gethostname()}:9001"
    with session_factory() as s:
        assert endpoint.recorded(s) == served
    # Then CLI hrefs follow it
    assert json.loads(_run("orders", "show", order["id"], "-o", "json"))["href"] == served + path
    assert f"href {served}{path}" in _run("orders", "show", order["id"])
    # and a URL configured for the CLI itself wins
    monkeypatch.setenv("TURNUP_PUBLIC_URL", "https://turnup.example.net")
    get_settings.cache_clear()
    assert (
        json.loads(_run("orders", "show", order["id"], "-o", "json"))["href"]
        == f"https://turnup.example.net{path}"
    )
