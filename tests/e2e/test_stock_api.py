"""Physical inventory through the HTTP API (TMF687 Stock): stock, serials, reservations, racks,
replenishment, bad input. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory.physical.orm import (
    Reservation,
    ReservationLine,
    StockLevel,
    StockMovement,
    StockUnit,
)
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.outbox import OutboxEvent

BASE = "/tmf-api/stock/v4"


def _post(client: TestClient, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post(f"{BASE}/{path}", json=body)
    assert response.status_code == status, response.text
    return response.json()


def _in(minutes: int) -> str:
    return (clock.now() + timedelta(minutes=minutes)).isoformat()


def _setup(client: TestClient) -> None:
    _post(client, "sku", {"code": "CABLE", "name": "Patch cable"})
    _post(client, "sku", {"code": "ONT", "name": "Optical network terminal", "serialised": True})
    _post(
        client,
        "location",
        {"code": "NORTH", "name": "North DC", "locationType": "data_centre", "region": "north"},
    )
    _post(
        client, "location", {"code": "WH1", "name": "Leeds", "locationType": "warehouse", "parent": "NORTH"}
    )
    _post(client, "location", {"code": "WH2", "name": "York", "locationType": "warehouse", "region": "north"})
    _post(client, "location", {"code": "VAN7", "name": "Van 7", "locationType": "van", "region": "north"})
    _post(
        client, "adjustProductStock", {"kind": "receipt", "sku": "CABLE", "location": "WH1", "quantity": 10}
    )
    _post(client, "adjustProductStock", {"kind": "receipt", "sku": "CABLE", "location": "WH2", "quantity": 4})
    _post(
        client,
        "adjustProductStock",
        {
            "kind": "receipt",
            "sku": "ONT",
            "location": "WH1",
            "units": [{"serial": f"ONT-{i}", "mac": f"00:11:22:33:44:{i:02d}"} for i in range(5)],
        },
    )


def _available(client: TestClient, sku: str, location: str) -> int:
    result = _post(client, "queryProductStock", {"skus": [sku], "locations": [location]})["searchResult"]
    return result[0]["availableQuantity"]["amount"] if result else 0


def _counts(factory: sessionmaker[Session]) -> tuple[int, int, int, int]:
    with factory() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0  # type: ignore[return-value]
            for m in (Reservation, ReservationLine, StockMovement, StockUnit)
        )


def test_receipts_build_levels_ledger_events_and_location_tree(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _setup(client)
    wh1 = client.get(f"{BASE}/location", params={"code": "WH1"}).json()[0]
    assert wh1["region"] == "north" and wh1["parent"] if "parent" in wh1 else wh1["parentId"]
    stock = client.get(f"{BASE}/productStock").json()
    by_name = {d["name"]: d for d in stock}
    assert by_name["CABLE @ WH1"]["stockedQuantity"] == {"amount": 10, "units": "each"}
    assert by_name["ONT @ WH1"]["availableQuantity"]["amount"] == 5
    assert by_name["CABLE @ WH2"]["@type"] == "ProductStock"
    with session_factory() as s:
        events = s.scalars(select(OutboxEvent.event_type).where(OutboxEvent.api == "stock")).all()
        assert events.count("ProductStockCreateEvent") == 3
        assert (
            s.scalar(select(func.count()).select_from(StockMovement).where(StockMovement.kind == "receipt"))
            == 2 + 5
        )  # 2 quantity rows, 5 unit rows
        assert (
            s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "stock.receipt"))
            == 3
        )


def test_reservation_all_or_nothing_and_refusal_lists_each_short_line(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _setup(client)
    held = _post(
        client,
        "reserveProductStock",
        {
            "reserveProductStockItem": [
                {"sku": "CABLE", "quantity": 12, "region": "north"},
                {"sku": "ONT", "serials": ["ONT-1", "ONT-2"]},
            ],
            "expiresAt": _in(60),
            "quoteId": "Q-1",
        },
    )
    assert held["reservationState"] == "held"
    places = held["reserveProductStockItem"][0]["places"]
    assert sorted((p["location"], p["quantity"]) for p in places) == [("WH1", 10), ("WH2", 2)]
    assert _available(client, "CABLE", "WH1") == 0
    before = _counts(session_factory)
    refused = client.post(
        f"{BASE}/reserveProductStock",
        json={
            "reserveProductStockItem": [
                {"sku": "CABLE", "quantity": 1, "location": "WH2"},
                {"sku": "CABLE", "quantity": 3, "location": "WH2"},
                {"sku": "ONT", "quantity": 4, "location": "WH1"},
                {"sku": "ONT", "serials": ["ONT-2"]},
            ],
            "expiresAt": _in(60),
        },
    )
    assert refused.status_code == 409
    body = refused.json()
    assert body["@type"] == "Error" and body["code"] == "ERR409" and body["reason"] == "Insufficient stock"
    assert body["details"] == [
        {"line": 1, "sku": "CABLE", "location": "WH2", "region": None, "requested": 3, "available": 1},
        {"line": 2, "sku": "ONT", "location": "WH1", "region": None, "requested": 4, "available": 3},
        {
            "line": 3,
            "sku": "ONT",
            "location": "WH1",
            "region": None,
            "requested": 1,
            "available": 0,
            "unavailableSerials": ["ONT-2"],
        },
    ]
    assert "lines[1] CABLE at WH2: requested 3, available 1" in body["message"]
    assert _counts(session_factory) == before  # nothing changed, not even line 0 which fitted
    assert _available(client, "CABLE", "WH2") == 2


def test_bad_input_names_the_line_and_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _setup(client)
    before = _counts(session_factory)
    cases = [
        ({"sku": "NOPE", "quantity": 1, "location": "WH1"}, 404, "lines[0].sku: unknown SKU 'NOPE'"),
        (
            {"sku": "CABLE", "quantity": 1, "location": "MARS"},
            404,
            "lines[0].location: unknown location 'MARS'",
        ),
        ({"sku": "CABLE", "quantity": 1, "region": "south"}, 404, "lines[0].region"),
        ({"sku": "CABLE", "quantity": 0, "location": "WH1"}, 400, "quantity"),
        ({"sku": "CABLE", "quantity": -2, "location": "WH1"}, 400, "quantity"),
        ({"sku": "CABLE", "quantity": 1}, 400, "location or region"),
        ({"sku": "ONT", "serials": ["ONT-X"]}, 404, "unknown serial 'ONT-X'"),
        ({"sku": "CABLE", "serials": ["A"]}, 400, "not serialised"),
    ]
    for line, status, text in cases:
        response = client.post(
            f"{BASE}/reserveProductStock", json={"reserveProductStockItem": [line], "expiresAt": _in(5)}
        )
        assert response.status_code == status, (line, response.text)
        assert text in response.json()["message"], (line, response.json())
    past = client.post(
        f"{BASE}/reserveProductStock",
        json={
            "reserveProductStockItem": [{"sku": "CABLE", "quantity": 1, "location": "WH1"}],
            "expiresAt": _in(-1),
        },
    )
    assert past.status_code == 400 and "expiresAt" in past.json()["message"]
    dup = client.post(
        f"{BASE}/adjustProductStock",
        json={
            "kind": "receipt",
            "sku": "ONT",
            "location": "WH2",
            "units": [{"serial": "ONT-9"}, {"serial": "ONT-3"}],
        },
    )
    assert dup.status_code == 409 and "units[1].serial: serial 'ONT-3' already used" in dup.json()["message"]
    mac = client.post(
        f"{BASE}/adjustProductStock",
        json={
            "kind": "receipt",
            "sku": "ONT",
            "location": "WH2",
            "units": [{"serial": "ONT-9", "mac": "00:11:22:33:44:01"}],
        },
    )
    assert mac.status_code == 409 and "MAC" in mac.json()["message"]
    too_many = client.post(
        f"{BASE}/adjustProductStock", json={"kind": "ship", "sku": "CABLE", "location": "WH2", "quantity": 5}
    )
    assert too_many.status_code == 409 and too_many.json()["details"][0]["available"] == 4
    assert _counts(session_factory) == before


def test_expired_hold_is_free_at_once_then_swept_and_commit_of_expired_is_refused(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _setup(client)
    first = _post(
        client,
        "reserveProductStock",
        {
            "reserveProductStockItem": [
                {"sku": "CABLE", "quantity": 4, "location": "WH2"},
                {"sku": "CABLE", "quantity": 10, "location": "WH1"},
            ],
            "expiresAt": _in(30),
        },
    )
    assert (
        client.post(
            f"{BASE}/reserveProductStock",
            json={
                "reserveProductStockItem": [{"sku": "CABLE", "quantity": 4, "location": "WH2"}],
                "expiresAt": _in(30),
            },
        ).status_code
        == 409
    )
    clock.advance(timedelta(minutes=31))
    # expired: available to the next quote immediately, before any sweep
    assert _available(client, "CABLE", "WH2") == 4
    check = _post(
        client,
        "checkProductStock",
        {"checkProductStockItem": [{"sku": "CABLE", "quantity": 14, "region": "north"}]},
    )
    assert check["checkProductStockItem"][0]["available"] == 14 and check["sufficient"] is True
    got = _post(
        client,
        "reserveProductStock",
        {
            "reserveProductStockItem": [{"sku": "CABLE", "quantity": 4, "location": "WH2"}],
            "expiresAt": _in(30),
        },
    )
    assert got["reservationState"] == "held"
    shown = client.get(f"{BASE}/reserveProductStock/{first['id']}").json()
    assert shown["reservationState"] == "expired"
    before = _counts(session_factory)
    late = client.patch(
        f"{BASE}/reserveProductStock/{first['id']}",
        json={"reservationState": "committed", "orderId": "ORD-1"},
    )
    assert late.status_code == 409 and "expired" in late.json()["message"]
    assert (
        client.patch(f"{BASE}/reserveProductStock/{first['id']}", json={"expiresAt": _in(60)}).status_code
        == 409
    )
    assert _counts(session_factory) == before
    # one sweeper run releases what is left (the WH1 line) and marks the reservation expired
    swept = client.post(f"{BASE}/sweepExpiredHolds")
    assert swept.status_code == 200 and swept.json() == {
        "linesReleased": 1,
        "reservationsExpired": 1,
        "rackHoldsExpired": 0,
    }
    with session_factory() as s:
        assert s.get(Reservation, first["id"]).status == "expired"  # type: ignore[union-attr]
        levels = {lv.on_hand: lv.reserved for lv in s.scalars(select(StockLevel))}
        assert levels == {10: 0, 4: 4, 5: 0}
        assert (
            "ReserveProductStockStateChangeEvent"
            in s.scalars(select(OutboxEvent.event_type).where(OutboxEvent.resource_id == first["id"])).all()
        )
    assert client.post(f"{BASE}/sweepExpiredHolds").json()["linesReleased"] == 0


def test_extend_release_commit_and_serialised_unit_lifecycle_history(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _setup(client)
    _post(client, "location", {"code": "SITE-1", "name": "Acme HQ", "locationType": "customer_site"})
    res = _post(
        client,
        "reserveProductStock",
        {
            "reserveProductStockItem": [
                {"sku": "ONT", "serials": ["ONT-0"]},
                {"sku": "ONT", "quantity": 1, "location": "WH1"},
                {"sku": "CABLE", "quantity": 2, "location": "WH1"},
            ],
            "expiresAt": _in(10),
        },
    )
    extended = client.patch(f"{BASE}/reserveProductStock/{res['id']}", json={"expiresAt": _in(120)})
    assert extended.status_code == 200 and extended.json()["expiresAt"] > res["expiresAt"]
    clock.advance(timedelta(minutes=30))  # past the original expiry, within the extension
    committed = client.patch(
        f"{BASE}/reserveProductStock/{res['id']}", json={"reservationState": "committed", "orderId": "ORD-7"}
    )
    assert committed.status_code == 200, committed.text
    doc = committed.json()
    assert doc["reservationState"] == "committed" and doc["allocation"]["orderId"] == "ORD-7"
    assert _available(client, "ONT", "WH1") == 3
    units = {u["serial"]: u for u in client.get(f"{BASE}/stockUnit").json()}
    allocated = sorted(s for s, u in units.items() if u["state"] == "allocated")
    assert len(allocated) == 2 and "ONT-0" in allocated  # the named serial plus one picked unit
    assert all(units[s]["orderId"] == "ORD-7" for s in allocated)
    shipped = client.post(
        f"{BASE}/allocation/{doc['allocation']['id']}/dispatch", json={"kind": "ship", "toLocation": "SITE-1"}
    )
    assert shipped.status_code == 200 and shipped.json()["status"] == "shipped"
    stock = _post(client, "queryProductStock", {"skus": ["ONT", "CABLE"], "locations": ["WH1"]})[
        "searchResult"
    ]
    assert {d["name"]: (d["stockedQuantity"]["amount"], d["allocatedQuantity"]["amount"]) for d in stock} == {
        "CABLE @ WH1": (8, 0),
        "ONT @ WH1": (3, 0),
    }
    for kind, extra in (
        ("install", {"toLocation": "SITE-1"}),
        ("return", {"location": "WH1"}),
        ("refurbish", {"location": "WH1"}),
    ):
        response = client.post(
            f"{BASE}/adjustProductStock", json={"kind": kind, "sku": "ONT", "serials": ["ONT-0"], **extra}
        )
        assert response.status_code == 201, response.text
    history = client.get(f"{BASE}/stockUnit/{units['ONT-0']['id']}/history").json()
    assert [(h["kind"], h["unitState"]) for h in history] == [
        ("receipt", "in_stock"),
        ("reserve", "reserved"),
        ("commit", "allocated"),
        ("ship", "shipped"),
        ("install", "installed"),
        ("return", "returned"),  # out of the customer site's stock
        ("return", "returned"),  # into quarantine at WH1
        ("refurbish", "in_stock"),
    ]
    assert [h["location"] for h in history[-3:]] == ["SITE-1", "WH1", "WH1"]
    assert [(h["onHandDelta"], h["quarantinedDelta"]) for h in history[-4:]] == [
        (1, 0),
        (-1, 0),
        (0, 1),
        (1, -1),
    ]
    assert _available(client, "ONT", "WH1") == 4
    # a second commit or a release of a committed reservation is refused
    assert (
        client.patch(
            f"{BASE}/reserveProductStock/{res['id']}", json={"reservationState": "cancelled"}
        ).status_code
        == 409
    )
    # release gives the stock back
    other = _post(
        client,
        "reserveProductStock",
        {
            "reserveProductStockItem": [{"sku": "CABLE", "quantity": 8, "location": "WH1"}],
            "expiresAt": _in(10),
        },
    )
    assert _available(client, "CABLE", "WH1") == 0
    released = client.patch(
        f"{BASE}/reserveProductStock/{other['id']}", json={"reservationState": "cancelled"}
    )
    assert released.json()["reservationState"] == "released" and _available(client, "CABLE", "WH1") == 8


def test_transfer_issue_scrap_and_cycle_count(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _setup(client)
    _post(
        client,
        "adjustProductStock",
        {"kind": "transfer", "sku": "CABLE", "location": "WH1", "toLocation": "VAN7", "quantity": 3},
    )
    _post(
        client,
        "adjustProductStock",
        {"kind": "transfer", "sku": "ONT", "location": "WH1", "toLocation": "VAN7", "serials": ["ONT-4"]},
    )
    assert (_available(client, "CABLE", "WH1"), _available(client, "CABLE", "VAN7")) == (7, 3)
    _post(
        client,
        "adjustProductStock",
        {"kind": "issue", "sku": "ONT", "location": "VAN7", "toLocation": "VAN7", "serials": ["ONT-4"]},
    )
    _post(
        client,
        "adjustProductStock",
        {
            "kind": "scrap",
            "sku": "CABLE",
            "location": "WH1",
            "quantity": 1,
            "fromQuarantine": False,
            "reason": "damaged",
        },
    )
    assert _available(client, "CABLE", "WH1") == 6
    _post(
        client,
        "reserveProductStock",
        {
            "reserveProductStockItem": [{"sku": "CABLE", "quantity": 5, "location": "WH1"}],
            "expiresAt": _in(60),
        },
    )
    counted = _post(
        client,
        "adjustProductStock",
        {
            "kind": "count_adjustment",
            "sku": "CABLE",
            "location": "WH1",
            "countedQuantity": 5,
            "reason": "cycle count",
        },
    )
    assert counted["productStock"][0]["stockedQuantity"]["amount"] == 5
    assert counted["productStock"][0]["availableQuantity"]["amount"] == 0
    below = client.post(
        f"{BASE}/adjustProductStock",
        json={
            "kind": "count_adjustment",
            "sku": "CABLE",
            "location": "WH1",
            "countedQuantity": 4,
            "reason": "cycle count",
        },
    )
    assert below.status_code == 409 and "countedQuantity" in below.json()["message"]
    no_reason = client.post(
        f"{BASE}/adjustProductStock",
        json={"kind": "count_adjustment", "sku": "CABLE", "location": "WH1", "countedQuantity": 6},
    )
    assert no_reason.status_code == 400
    with session_factory() as s:
        adj = s.scalars(select(StockMovement).where(StockMovement.kind == "count_adjustment")).all()
        assert [(m.on_hand_delta, m.reason) for m in adj] == [(-1, "cycle count")]


def test_replenishment_request_opens_below_reorder_point_and_receipt_closes_it(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _setup(client)
    policy = _post(
        client,
        "productStock",
        {"sku": "CABLE", "location": "WH1", "reorderPoint": 5, "reorderQuantity": 20, "leadTimeDays": 3},
    )
    assert policy["reorderPoint"] == 5
    _post(
        client,
        "reserveProductStock",
        {
            "reserveProductStockItem": [{"sku": "CABLE", "quantity": 6, "location": "WH1"}],
            "expiresAt": _in(60),
        },
    )
    open_ = client.get(f"{BASE}/replenishmentRequest", params={"status": "open"}).json()
    assert [(r["quantity"], r["productStockId"]) for r in open_] == [(20, policy["id"])]
    expected = open_[0]["expectedAt"]
    check = _post(
        client,
        "checkProductStock",
        {"checkProductStockItem": [{"sku": "CABLE", "quantity": 6, "location": "WH1"}]},
    )["checkProductStockItem"][0]
    assert check["sufficient"] is False and check["available"] == 4
    assert check["replenishment"] == [{"location": "WH1", "quantity": 20, "expectedAt": expected}]
    # still below: no second request
    _post(
        client,
        "reserveProductStock",
        {
            "reserveProductStockItem": [{"sku": "CABLE", "quantity": 1, "location": "WH1"}],
            "expiresAt": _in(60),
        },
    )
    assert client.get(f"{BASE}/replenishmentRequest").headers["X-Total-Count"] == "1"
    _post(
        client, "adjustProductStock", {"kind": "receipt", "sku": "CABLE", "location": "WH1", "quantity": 20}
    )
    assert client.get(f"{BASE}/replenishmentRequest", params={"status": "open"}).json() == []
    with session_factory() as s:
        types = s.scalars(
            select(OutboxEvent.event_type).where(OutboxEvent.resource_type == "replenishmentRequest")
        ).all()
        assert sorted(types) == ["ReplenishmentRequestCreateEvent", "ReplenishmentRequestStateChangeEvent"]


def test_rack_space_contiguous_units_power_headroom_and_expiry(client: TestClient) -> None:
    _post(client, "location", {"code": "DC1", "name": "DC", "locationType": "data_centre"})
    _post(client, "location", {"code": "CAGE1", "name": "Cage 1", "locationType": "cage", "parent": "DC1"})
    rack = _post(
        client,
        "location",
        {
            "code": "R1",
            "name": "Rack 1",
            "locationType": "rack",
            "parent": "CAGE1",
            "rackUnits": 10,
            "powerBudgetWatts": 1000,
        },
    )
    assert rack["rackUnits"] == 10
    a = _post(
        client, "rackSpaceReservation", {"rack": "R1", "units": 4, "powerWatts": 400, "expiresAt": _in(30)}
    )
    b = _post(
        client,
        "rackSpaceReservation",
        {"rack": "R1", "units": 2, "powerWatts": 300, "startU": 7, "expiresAt": _in(120)},
    )
    assert (a["startU"], a["endU"], b["startU"], b["endU"]) == (1, 4, 7, 8)
    no_room = client.post(
        f"{BASE}/rackSpaceReservation",
        json={"rack": "R1", "units": 3, "powerWatts": 100, "expiresAt": _in(30)},
    )
    assert no_room.status_code == 409
    assert no_room.json()["details"] == [{"rack": "R1", "requestedUnits": 3, "largestFreeBlock": 2}]
    no_power = client.post(
        f"{BASE}/rackSpaceReservation",
        json={"rack": "R1", "units": 2, "powerWatts": 301, "expiresAt": _in(30)},
    )
    assert no_power.status_code == 409 and no_power.json()["details"][0]["availablePowerWatts"] == 300
    overlap = client.post(
        f"{BASE}/rackSpaceReservation",
        json={"rack": "R1", "units": 2, "powerWatts": 1, "startU": 4, "expiresAt": _in(30)},
    )
    assert overlap.status_code == 409
    assert (
        client.post(
            f"{BASE}/rackSpaceReservation",
            json={"rack": "DC1", "units": 1, "powerWatts": 1, "expiresAt": _in(30)},
        ).status_code
        == 400
    )
    clock.advance(timedelta(minutes=31))  # a expired: its units and power are free at once
    c = _post(
        client,
        "rackSpaceReservation",
        {"rack": "R1", "units": 6, "powerWatts": 700, "startU": 1, "expiresAt": _in(30)},
    )
    assert (c["startU"], c["endU"]) == (1, 6)
    assert client.get(f"{BASE}/rackSpaceReservation/{a['id']}").json()["reservationState"] == "expired"
    committed = client.patch(
        f"{BASE}/rackSpaceReservation/{b['id']}", json={"reservationState": "committed", "orderId": "ORD-R"}
    )
    assert committed.json()["reservationState"] == "committed"
    clock.advance(timedelta(hours=5))
    swept = client.post(f"{BASE}/sweepExpiredHolds").json()
    assert swept["rackHoldsExpired"] == 1  # c expired; b is committed and stays
    assert client.get(f"{BASE}/location/{rack['id']}").json()["powerReservedWatts"] == 300


def test_customer_site_location_references_an_accounts_site(client: TestClient) -> None:
    customer = client.post("/tmf-api/customerManagement/v4/customer", json={"name": "Acme"}).json()
    site = client.post(
        "/tmf-api/geographicSiteManagement/v4/geographicSite",
        json={"customerId": customer["id"], "name": "HQ", "country": "GB"},
    ).json()
    loc = _post(
        client,
        "location",
        {"code": "ACME-HQ", "name": "Acme HQ", "locationType": "customer_site", "siteId": site["id"]},
    )
    assert loc["siteId"] == site["id"]
    missing = client.post(
        f"{BASE}/location", json={"code": "X", "name": "X", "locationType": "customer_site", "siteId": "nope"}
    )
    assert missing.status_code == 404 and "siteId" in missing.json()["message"]
    wrong = client.post(
        f"{BASE}/location", json={"code": "Y", "name": "Y", "locationType": "warehouse", "siteId": site["id"]}
    )
    assert wrong.status_code == 400
    dup = client.post(f"{BASE}/location", json={"code": "ACME-HQ", "name": "again", "locationType": "store"})
    assert dup.status_code == 409


def test_huge_integers_are_refused_at_the_edge_and_change_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    """Found by API fuzzing: integers beyond the 32-bit columns were a 500 (SQLite OverflowError)."""
    _setup(client)
    huge = 42304619396092638789632
    rack = {"code": "R1", "name": "Rack 1", "locationType": "rack", "rackUnits": 42, "powerBudgetWatts": 5000}
    before = client.get(f"{BASE}/location").headers["X-Total-Count"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("location", {**rack, "powerBudgetWatts": huge}, "powerBudgetWatts"),
        ("location", {**rack, "powerBudgetWatts": 10**9 + 1}, "powerBudgetWatts"),
        ("location", {**rack, "rackUnits": huge}, "rackUnits"),
        ("productStock", {"sku": "CABLE", "location": "WH1", "reorderPoint": huge}, "reorderPoint"),
        ("productStock", {"sku": "CABLE", "location": "WH1", "reorderQuantity": huge}, "reorderQuantity"),
        ("productStock", {"sku": "CABLE", "location": "WH1", "leadTimeDays": huge}, "leadTimeDays"),
        (
            "adjustProductStock",
            {"kind": "receipt", "sku": "CABLE", "location": "WH1", "quantity": huge},
            "quantity",
        ),
        (
            "adjustProductStock",
            {
                "kind": "count_adjustment",
                "sku": "CABLE",
                "location": "WH1",
                "countedQuantity": huge,
                "reason": "count",
            },
            "countedQuantity",
        ),
        (
            "reserveProductStock",
            {
                "reserveProductStockItem": [{"sku": "CABLE", "quantity": huge, "location": "WH1"}],
                "expiresAt": _in(60),
            },
            "quantity",
        ),
        (
            "rackSpaceReservation",
            {"rack": "R1", "units": 1, "powerWatts": huge, "expiresAt": _in(60)},
            "powerWatts",
        ),
        (
            "rackSpaceReservation",
            {"rack": "R1", "units": 1, "powerWatts": 1, "startU": huge, "expiresAt": _in(60)},
            "startU",
        ),
    ]
    counts = _counts(session_factory)
    for path, body, field in cases:
        response = client.post(f"{BASE}/{path}", json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["@type"] == "Error" and field in response.json()["message"], response.json()
    assert client.get(f"{BASE}/location").headers["X-Total-Count"] == before
    assert _counts(session_factory) == counts
    # the largest accepted budget is stored and returned as given
    created = _post(client, "location", {**rack, "powerBudgetWatts": 10**9})
    assert created["powerBudgetWatts"] == 10**9 and created["rackUnits"] == 42
