"""Issue 11, acceptance line 1: the demo operator sells and delivers its own offerings out of the box.

``turnup demo`` runs as a subprocess (as ``./run demo`` does), on SQLite and PostgreSQL. Using only the
tokens it prints and the calls of the README walkthrough, one quote holds every demo offering at a demo
customer's site, its 25% bundle discount is approved through the sales manager then finance (each with
their own token), the customer accepts, the events the plan names are reported, and the order completes with
every service active: each with its own resources and place, the stock it needed moved from the warehouse
to the customer's site, and the customer active.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.e2e.test_demo import _free_port, _read_until
from turnup.accounts.orm import Customer
from turnup.catalog.orm import ProductOffering
from turnup.inventory.logical.orm import LogicalSpace, TelephoneNumber
from turnup.inventory.physical.orm import Location, Sku, StockUnit
from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.ordering.orm import ProductOrder
from turnup.quoting.orm import ApprovalRule
from turnup.security.orm import User

API = "/tmf-api"
OFFERINGS = "/productCatalogManagement/v4/productOffering"
QUOTES = "/quoteManagement/v4/quote"
ORDERS = "/productOrderingManagement/v4/productOrder"
SERVICES = "/serviceInventory/v4/service"
WAIT_KINDS = ("fieldVisit", "shipment", "pickup", "projectMilestone")
SIGNER = {"signer": {"name": "Priya Natarajan", "email": "priya@brightwater-dental.example"}}


@pytest.fixture
def dbos_cleanup(db_url: str) -> Iterator[None]:
    yield
    from tests.workflows.conftest import drop_dbos_schema

    drop_dbos_schema(db_url)


def _env(db_url: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "TURNUP_DATABASE_URL": db_url,
        "TURNUP_PORT": str(port),
        "TURNUP_HOST": "127.0.0.1",
        "COLUMNS": "200",
    }


def _tokens(lines: list[str]) -> tuple[str, dict[str, str]]:
    """The admin token and the approvers' tokens by approval role, as the demo prints them."""
    admin = lines[-1].split("API token:", 1)[1].strip()
    approvers = {}
    for line in lines:
        if line.startswith("Approver token ("):
            role = line.split("(", 1)[1].split(",", 1)[0]
            approvers[role] = line.rsplit(": ", 1)[1].strip()
    return admin, approvers


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_walkthrough_quotes_approves_accepts_and_delivers_every_demo_offering(
    db_url: str, tmp_path: Path, dbos_cleanup: None
) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "turnup.cli.main", "demo"],
        env=_env(db_url, port),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = _read_until(proc, "API token:", time.monotonic() + 180)
        token, approver_tokens = _tokens(lines)
        _read_until(proc, f"http://127.0.0.1:{port}", time.monotonic() + 30)
        base = f"http://127.0.0.1:{port}{API}"
        admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        for _ in range(100):
            try:
                admin.get(OFFERINGS, params={"limit": 1})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        _walkthrough(lines, admin, base, approver_tokens)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _walkthrough(lines: list[str], admin: httpx.Client, base: str, approver_tokens: dict[str, str]) -> None:
    # given the demo as loaded: the summary, the events its delivered orders waited for, the approvers
    summary = next(line for line in lines if line.startswith("Demo operator loaded"))
    for part in ("6 product offerings", "3 customers", "3 delivered orders", "3 approval rules"):
        assert part in summary, summary
    reported = sorted(line.split("event reported: ", 1)[1] for line in lines if "event reported: " in line)
    assert reported == [
        "Business Fibre 1G: technicianCompleted (fieldVisit)",
        "Business Mobile Line: shipmentDelivered (shipment)",
        "Colocation Quarter Rack: pickedUp (pickup)",
        "Colocation Quarter Rack: technicianCompleted (fieldVisit)",
    ]
    assert set(approver_tokens) == {"salesManager", "finance", "commercialDirector"}
    customers = {c["name"]: c for c in _ok(admin.get("/customerManagement/v4/customer"))}
    assert set(customers) == {"Brightwater Dental Group", "Kestrel Logistics AG", "Mara Quinn"}
    # one delivered order per customer, completed through the order workflow during load
    delivered = _ok(admin.get(ORDERS))
    assert sorted((o["relatedParty"][0]["id"], o["state"]) for o in delivered) == sorted(
        (c["id"], "completed") for c in customers.values()
    )
    # the screening list has its fictional denied party, the demo customers are clear
    hit = _ok(admin.post("/turnupCompliance/v1/screening", json={"name": "Blackfen Maritime Holdings"}))
    assert hit["hit"] is True and hit["match"][0]["entryName"] == "Blackfen Maritime Holdings Ltd"
    clear = _ok(
        admin.post(
            "/turnupCompliance/v1/screening", json={"name": "Brightwater Dental Group", "country": "GB"}
        )
    )
    assert clear["hit"] is False

    # 1. the customer, its Leeds site and every offering
    customer = _ok(admin.get("/customerManagement/v4/customer", params={"name": "Brightwater Dental Group"}))
    cust = customer[0]["id"]
    site = _ok(admin.get("/geographicSiteManagement/v4/geographicSite", params={"name": "Leeds surgery"}))[0]
    assert site["region"] == "Yorkshire"
    offerings = _ok(admin.get(OFFERINGS, params={"fields": "id,name"}))
    names = {o["id"]: o["name"] for o in offerings}
    assert sorted(names.values()) == [
        "Business Fibre 1G",
        "Business Mobile Line",
        "Colocation Quarter Rack",
        "Fibre + Voice",
        "Hosted Voice Seat",
        "Managed Firewall",
    ]
    stock_before = _warehouse_stock(admin)
    # the demo's own delivered order already handed a router over to this site
    site_stock_before = _site_stock(admin, site["id"])

    # 2. one quote with a line per offering, 25% off the bundle, priced and held in the same request
    items = [
        {
            "id": str(i),
            "productOffering": {"id": o["id"]},
            "discountPercent": "25" if o["name"] == "Fibre + Voice" else "0",
            "product": {
                "place": [{"id": site["id"]}],
                "productCharacteristic": [{"name": "numberArea", "value": "0113"}],
            },
        }
        for i, o in enumerate(offerings, 1)
    ]
    quote = _ok(
        admin.post(
            QUOTES,
            json={
                "contractTermMonths": 24,
                "instantSyncQuote": True,
                "relatedParty": [{"id": cust, "role": "customer"}],
                "quoteItem": items,
            },
        ),
        201,
    )
    assert quote["state"] == "pending" and quote["holds"]["state"] == "held"
    totals = {t["priceType"]: t["price"]["dutyFreeAmount"]["value"] for t in quote["quoteTotalPrice"]}
    assert totals == {"recurring": "1167.75", "oneTime": "3149.25", "usage": "0.00"}
    assert quote["contractValue"] == {"unit": "GBP", "value": "31175.25"}
    held = {i["productOffering"]["name"]: i["reservedResource"] for i in quote["quoteItem"]}
    assert {name: sorted({h["resource"] for h in hs}) for name, hs in held.items()} == {
        "Business Fibre 1G": ["ipv4Prefix", "ipv6Prefix", "stock", "vlan"],
        "Business Mobile Line": ["phoneNumber", "stock"],
        "Colocation Quarter Rack": ["asn", "circuitId", "stock"],
        "Fibre + Voice": ["ipv4Prefix", "ipv6Prefix", "phoneNumber", "stock", "vlan"],
        "Hosted Voice Seat": ["phoneNumber", "stock"],
        "Managed Firewall": ["stock"],
    }
    every = [h for hs in held.values() for h in hs]
    # stock from the Yorkshire warehouse (region match), IPv4 from the Yorkshire pool (site match), numbers
    # in the asked area (0113) and the mobile line's own area (07)
    assert {h["location"] for h in every if h["resource"] == "stock"} == {"WH-YORKSHIRE"}
    yorkshire = ipaddress.ip_network("198.51.100.0/25")
    assert all(
        ipaddress.ip_network(h["value"]).subnet_of(yorkshire) for h in every if h["resource"] == "ipv4Prefix"
    )
    numbers = sorted(h["value"][:10] for h in every if h["resource"] == "phoneNumber")
    assert numbers == ["+441134960", "+441134960", "+447400960"]
    assert [(a["step"], a["name"], a["state"]) for a in quote["authorization"]] == [
        (1, "salesManager", "pending"),
        (2, "finance", "pending"),
    ]

    # 3. each approver decides its own step with its own token; out of order and beyond its rights: refused
    sales = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {approver_tokens['salesManager']}"}
    )
    finance = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {approver_tokens['finance']}"})
    decision = {"quoteId": quote["id"], "decision": "approved", "comment": "ok"}
    early = finance.post("/turnupApproval/v1/approvalDecision", json={**decision, "role": "finance"})
    assert early.status_code == 409 and "is for salesManager, not finance" in early.json()["message"]
    assert sales.post(f"{QUOTES}/{quote['id']}/accept", json=SIGNER).status_code == 403
    first = _ok(
        sales.post("/turnupApproval/v1/approvalDecision", json={**decision, "role": "salesManager"}), 201
    )
    assert first["state"] == "pending"
    second = _ok(
        finance.post("/turnupApproval/v1/approvalDecision", json={**decision, "role": "finance"}), 201
    )
    assert second["state"] == "approved"
    assert [(a["name"], a["state"], a["approver"]) for a in second["authorization"]] == [
        ("salesManager", "approved", "user:sam.sales"),
        ("finance", "approved", "user:fiona.finance"),
    ]

    # 4. the customer accepts: an agreement is signed and the order created
    accepted = _ok(admin.post(f"{QUOTES}/{quote['id']}/accept", json=SIGNER))
    assert accepted["state"] == "accepted"
    order_id = accepted["productOrder"]["id"]
    order_path = f"{ORDERS}/{order_id}"
    order = _ok(admin.get(order_path))
    assert sorted(i["productOffering"]["name"] for i in order["productOrderItem"]) == sorted(names.values())

    # 5. the plan names the events it waits for
    plan = _ok(admin.get(f"{order_path}/plan"))
    waits = [p for p in plan if p["kind"] in WAIT_KINDS]
    assert Counter((p["service"]["name"].split(" ")[0], p["kind"], p["adapterAction"]) for p in waits) == {
        ("Business", "fieldVisit", "technicianCompleted"): 2,  # fibre, the bundle's fibre
        ("Colocation", "pickup", "pickedUp"): 1,  # the cage access cards, collected from the store
        ("Colocation", "fieldVisit", "technicianCompleted"): 1,
        ("Mobile", "shipment", "shipmentDelivered"): 1,
        ("Hosted", "shipment", "shipmentDelivered"): 2,  # the voice seat, the bundle's voice seat
        ("Managed", "shipment", "shipmentDelivered"): 1,
        ("Managed", "projectMilestone", "milestoneAccepted"): 4,
    }

    # 6. report each of them
    for p in waits:
        body = {"eventType": p["adapterAction"], "planItemId": p["id"], "reference": "walkthrough"}
        assert _ok(admin.post(f"{order_path}/event", json=body), 201)["state"] == "completed"
    again = admin.post(f"{order_path}/event", json={"eventType": "technicianCompleted"})
    assert again.status_code == 409

    # 7. the order completes and every service is active
    state = order["state"]
    deadline = time.monotonic() + 90
    while state not in ("completed", "failed", "partial") and time.monotonic() < deadline:
        time.sleep(0.2)
        state = _ok(admin.get(order_path))["state"]
    assert state == "completed"
    services = [
        s
        for s in _ok(admin.get(SERVICES, params={"relatedParty.id": cust}))
        if any(h["serviceOrderId"] == order_id for h in s["serviceOrderItem"])
    ]
    assert sorted(s["name"] for s in services) == [
        "Business Fibre Access",
        "Business Fibre Access",
        "Colocation Rack Space",
        "Hosted Voice Seat",
        "Hosted Voice Seat",
        "Managed Firewall",
        "Mobile Line",
    ]
    assert {s["state"] for s in services} == {"active"}
    # every resource the quote held is assigned to a service of the order
    assigned = sorted(r["value"] for s in services for r in s["supportingResource"] if r.get("value"))
    assert assigned == sorted(h["value"] for h in every if h["resource"] != "stock")

    # a site no stock location serves: the 409 says how sites are matched
    manchester = _ok(
        admin.post(
            "/geographicSiteManagement/v4/geographicSite",
            json={"customerId": cust, "name": "Manchester surgery", "city": "Manchester", "country": "GB"},
        ),
        201,
    )
    fibre = next(o["id"] for o in offerings if o["name"] == "Business Fibre 1G")
    refused = admin.post(
        QUOTES,
        json={
            "instantSyncQuote": True,
            "relatedParty": [{"id": cust, "role": "customer"}],
            "quoteItem": [
                {
                    "id": "1",
                    "productOffering": {"id": fibre},
                    "product": {"place": [{"id": manchester["id"]}]},
                }
            ],
        },
    )
    assert refused.status_code == 409, refused.text
    message = refused.json()["message"]
    assert "no stock location serves site 'Manchester surgery' (region None, city 'Manchester'" in message
    assert (
        "a stock location matches a site when its region equals the site's region, else city, else "
        in message
    )
    assert "README § Site matching" in message

    # 8. each service has its own resources and place, the stock is at the customer's site, the customer
    # is active
    def own_resources_and_place() -> None:
        expected: Counter[tuple[str, tuple[str, ...]]] = Counter()
        for item in quote["quoteItem"]:
            by_spec: dict[str, list[str]] = {}
            for h in item["reservedResource"]:
                by_spec.setdefault(h["specification"], [])
                if h["resource"] != "stock":
                    by_spec[h["specification"]].append(h["value"])
            expected.update((spec, tuple(sorted(values))) for spec, values in by_spec.items())
        actual = Counter(
            (s["name"], tuple(sorted(r["value"] for r in s["supportingResource"] if r.get("value"))))
            for s in services
        )
        assert actual == expected, f"resources per service {dict(actual)} != {dict(expected)}"
        for s in services:
            assert [p["id"] for p in s["place"]] == [site["id"]], f"{s['name']} place {s['place']}"
            assert any(r["resourceType"] == "physicalAllocation" for r in s["supportingResource"]), s["name"]

    def stock_at_customer_site() -> None:
        locations = _ok(admin.get("/stock/v4/location", params={"siteId": site["id"]}))
        assert [loc["locationType"] for loc in locations] == ["customer_site"], "no customer-site location"
        held_qty: Counter[str] = Counter()
        for h in every:
            if h["resource"] == "stock":
                held_qty[h["sku"]] += h["quantity"]
        after = _warehouse_stock(admin)
        left = {sku: stock_before[sku] - after[sku] for sku in held_qty}
        assert left == dict(held_qty), f"stock left the warehouse {left} != held {dict(held_qty)}"
        at_site = _site_stock(admin, site["id"])
        at_site.subtract(site_stock_before)
        at_site = +at_site  # the SKUs whose on-hand quantity at the site grew, by how much
        assert at_site == held_qty, f"stock at the customer site {dict(at_site)} != {dict(held_qty)}"

    def customers_active() -> None:
        for name in ("Brightwater Dental Group", "Mara Quinn"):  # Mara Quinn starts prospective
            status = _ok(admin.get("/customerManagement/v4/customer", params={"name": name}))[0]["status"]
            assert status == "active", f"{name} is {status}"

    own_resources_and_place()
    stock_at_customer_site()
    customers_active()


def _warehouse_stock(admin: httpx.Client) -> Counter[str]:
    """On-hand quantity per SKU in the Yorkshire warehouse."""
    warehouse = _ok(admin.get("/stock/v4/location", params={"code": "WH-YORKSHIRE"}))
    assert len(warehouse) == 1
    levels = _ok(admin.get("/stock/v4/productStock", params={"locationId": warehouse[0]["id"], "limit": 100}))
    return Counter({lv["stockedProduct"]["code"]: lv["stockedQuantity"]["amount"] for lv in levels})


def _site_stock(admin: httpx.Client, site_id: str) -> Counter[str]:
    """On-hand quantity per SKU at the customer-site location(s) of a site (none yet: empty)."""
    at_site: Counter[str] = Counter()
    for loc in _ok(admin.get("/stock/v4/location", params={"siteId": site_id})):
        for level in _ok(admin.get("/stock/v4/productStock", params={"locationId": loc["id"], "limit": 100})):
            at_site[level["stockedProduct"]["code"]] += level["stockedQuantity"]["amount"]
    return at_site


def _counts(db_url: str) -> dict[str, int]:
    models = {
        "user": User,
        "offering": ProductOffering,
        "customer": Customer,
        "sku": Sku,
        "location": Location,
        "unit": StockUnit,
        "pool": LogicalSpace,
        "number": TelephoneNumber,
        "rule": ApprovalRule,
        "order": ProductOrder,
    }
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            found = {k: s.scalar(select(func.count()).select_from(m)) or 0 for k, m in models.items()}
            # the pools and aggregates the operator created (not the roots the IPAM adds per domain)
            found["pool"] = s.scalar(select(func.count()).where(LogicalSpace.role != "root")) or 0
            return found
    finally:
        engine.dispose()


def test_demo_empty_is_a_bare_operator_and_the_full_demo_loads_once(
    db_url: str, tmp_path: Path, dbos_cleanup: None
) -> None:
    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "turnup.cli.main", "demo", "--no-serve", *args],
            env=_env(db_url, _free_port()),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    # --empty: the admin and its token, nothing else
    empty = run("--empty")
    assert "API token: tu_" in empty and "Approver token" not in empty
    assert _counts(db_url) == {
        "user": 1,
        "offering": 0,
        "customer": 0,
        "sku": 0,
        "location": 0,
        "unit": 0,
        "pool": 0,
        "number": 0,
        "rule": 0,
        "order": 0,
    }
    # the full demo on top of it: the business, its delivered orders run to completion without serving
    full = run()
    loaded = _counts(db_url)
    assert loaded == {
        "user": 4,
        "offering": 6,
        "customer": 3,
        "sku": 8,
        "location": 6,  # 3 stock locations + the 3 customer sites the delivered orders handed stock over to
        "unit": 86,
        "pool": 9,
        "number": 700,
        "rule": 3,
        "order": 3,
    }
    assert full.count("Approver token (") == 3
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            assert set(s.scalars(select(ProductOrder.state))) == {"completed"}
    finally:
        engine.dispose()
    # and again: nothing is loaded twice, fresh tokens are printed
    rerun = run()
    assert "nothing new" in rerun and rerun.count("Approver token (") == 3
    assert _counts(db_url) == loaded
