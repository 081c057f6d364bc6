"""Issue 14, acceptance (revenue part): the demo's Fibre + Voice order, quoted and accepted, activates through
the order workflow; its revenue contract has one obligation per distinct promise (fibre access and voice
over time, the installation at a point in time, usage as used) with the price allocated by SSP; the
activation starts the ratable schedules on the activation date (a mid-month first period), the field
visit recognises the installation, the month-end close posts the ended periods to a balanced ledger, and a
disconnect stops both schedules. Both databases, through the API and the durable consumers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    QUOTES,
    SIGNER,
    customer_and_site,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from turnup.kernel import clock
from turnup.kernel.consumers import ConsumerInbox, ConsumerWorker
from turnup.testing import wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
REVENUE = "/tmf-api/turnupRevenue/v1"
CONSUMERS = ("revenue.contracts", "revenue.earned_triggers")


def _settled(factory: sessionmaker[Session]) -> None:
    def owed() -> bool:
        ConsumerWorker(factory).drain()
        with factory() as s:
            return not s.scalar(
                select(ConsumerInbox.seq)
                .where(ConsumerInbox.consumer.in_(CONSUMERS), ConsumerInbox.status != "done")
                .limit(1)
            )

    wait_until(owed, 30, message="revenue consumers settled")


def _final(client: TestClient, order_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        order = client.get(f"{ORDERS}/{order_id}").json()
        return order if order["state"] in ("completed", "failed", "partial") else None

    result: dict[str, Any] = wait_until(done, 60, message="order final")
    return result


def _contract(client: TestClient, order_id: str) -> dict[str, Any]:
    found = client.get(f"{REVENUE}/contract", params={"productOrderId": order_id}).json()
    assert len(found) == 1, found
    detail: dict[str, Any] = client.get(f"{REVENUE}/contract/{found[0]['id']}").json()
    return detail


def test_fibre_voice_order_has_revenue_schedules_per_obligation_and_a_disconnect_stops_them(
    client: TestClient, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    clock.freeze(datetime(2026, 9, 16, 10, 0, tzinfo=UTC))
    # given the demo catalog and a 24-month Fibre + Voice quote (automatic 10% term discount), accepted
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"]))
    post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)
    accepted = post(client, f"{QUOTES}/{quote['id']}/accept", SIGNER, 200)
    order_id = accepted["productOrder"]["id"]

    # when the consumers run: the contract exists, obligations allocated, nothing earned yet
    _settled(session_factory)
    contract = _contract(client, order_id)
    assert (contract["status"], contract["termMonths"], contract["currency"]) == ("active", 24, "GBP")
    # 224.10 x 24 + 179.10 installation
    assert (contract["transactionPrice"], contract["allocationMethod"]) == ("5557.50", "relative")
    obligations = {(o["product"], o["kind"]): o for o in contract["performanceObligation"]}
    assert {
        k: (o["standaloneSellingPrice"], o["allocatedAmount"], o["state"]) for k, o in obligations.items()
    } == {
        # SSP: fibre 199/month (revenueRecognition), voice 15/month (its list price), installation 350
        ("Business Fibre 1G", "service"): ("4776.00", "4838.25", "pending"),
        ("Hosted Voice Seat", "service"): ("360.00", "364.69", "pending"),
        ("Business Fibre 1G", "installation"): ("350.00", "354.56", "pending"),
        ("Fibre + Voice", "usage"): (None, "0.00", "pending"),
    }
    assert all(o["schedule"] == [] for o in obligations.values())

    # when the field visit and the handset delivery are reported and the services activate (16 Sep 2026)
    wait_until(
        lambda: len(client.get(f"{ORDERS}/{order_id}").json()["awaitedEvent"]) == 2, 30, message="waits"
    )
    for event, reference in [("technicianCompleted", "JOB-1"), ("shipmentDelivered", "TRK-1")]:
        post(client, f"{ORDERS}/{order_id}/event", {"eventType": event, "reference": reference})
    assert _final(client, order_id)["state"] == "completed"
    _settled(session_factory)

    # then each over-time obligation has a ratable schedule from the activation date: 15 days of September
    # then calendar months, 24 months to 16 Sep 2028 (731 days), summing exactly to its allocation
    contract = _contract(client, order_id)
    obligations = {(o["product"], o["kind"]): o for o in contract["performanceObligation"]}
    fibre = obligations[("Business Fibre 1G", "service")]
    voice = obligations[("Hosted Voice Seat", "service")]
    for o in (fibre, voice):
        assert (o["state"], o["startDate"], o["serviceId"] is not None) == ("inProgress", "2026-09-16", True)
        assert [line["period"] for line in o["schedule"]][:2] == ["2026-09", "2026-10"]
        assert o["schedule"][-1]["period"] == "2028-09"
        assert (o["schedule"][0]["days"], o["schedule"][-1]["days"]) == (15, 15)
        assert sum(line["days"] for line in o["schedule"]) == 731
        assert sum(D(line["amount"]) for line in o["schedule"]) == D(o["allocatedAmount"])
        assert {line["status"] for line in o["schedule"]} == {"scheduled"}
    assert fibre["schedule"][0]["amount"] == "99.28"  # 4838.25 x 15 / 731
    assert fibre["schedule"][1]["amount"] == "205.18"  # 4838.25 x 31 / 731
    assert fibre["serviceId"] != voice["serviceId"]
    # and the installation was recognised at the field visit, ahead of billing: a contract asset
    install = obligations[("Business Fibre 1G", "installation")]
    assert install["state"] == "satisfied" and install["recognisedAmount"] == "354.56"
    assert [(line["source"], line["status"], line["amount"]) for line in install["schedule"]] == [
        ("pointInTime", "posted", "354.56")
    ]
    assert (contract["contractAsset"], contract["contractLiability"]) == ("354.56", "0.00")

    # when the usage and billing slots are filled (rated usage, the first bill) and September is closed
    from turnup import revenue

    with session_factory() as s:
        revenue.record_usage(
            s, service_id=voice["serviceId"], amount=D("4.20"), used_on=datetime(2026, 9, 20).date(), ref="u1"
        )
        revenue.record_billing(
            s,
            service_id=fibre["serviceId"],
            amount=D("400.00"),
            billed_on=datetime(2026, 9, 30).date(),
            ref="b1",
        )
        revenue.record_billing(
            s,
            service_id=fibre["serviceId"],
            amount=D("400.00"),
            billed_on=datetime(2026, 9, 30).date(),
            ref="b1",
        )  # again: the same bill is recorded once
        s.commit()
    closed = client.post(f"{REVENUE}/close", json={"through": "2026-09-30"})
    assert closed.status_code == 200, closed.text
    assert closed.json() == {"through": "2026-09-30", "postedPeriods": 2}
    again = client.post(f"{REVENUE}/close", json={"through": "2026-09-30"})
    assert again.json()["postedPeriods"] == 0
    contract = _contract(client, order_id)
    september = {
        o["product"]: o["schedule"][0] for o in contract["performanceObligation"] if o["kind"] == "service"
    }
    assert {p: (line["period"], line["status"]) for p, line in september.items()} == {
        "Business Fibre 1G": ("2026-09", "posted"),
        "Hosted Voice Seat": ("2026-09", "posted"),
    }
    # recognised 354.56 + 4.20 + 99.28 + voice's 7.48 = 465.52; billed 400.00 -> contract asset 65.52
    assert september["Hosted Voice Seat"]["amount"] == "7.48"
    assert (contract["contractAsset"], contract["contractLiability"]) == ("65.52", "0.00")
    report = client.get(f"{REVENUE}/report").json()
    assert report == [
        {"kind": "installation", "product": "Business Fibre 1G", "revenue": "354.56"},
        {"kind": "service", "product": "Business Fibre 1G", "revenue": "99.28"},
        {"kind": "service", "product": "Hosted Voice Seat", "revenue": "7.48"},
        {"kind": "usage", "product": "Fibre + Voice", "revenue": "4.20"},
    ]
    # the GL export balances, in CSV and Parquet
    rows = list(csv.DictReader(io.StringIO(client.get(f"{REVENUE}/export").text)))
    assert len({r["entryId"] for r in rows}) == 5  # installation, usage, bill, two September periods
    assert sum(D(r["debit"]) for r in rows) == sum(D(r["credit"]) for r in rows)
    parquet = client.get(f"{REVENUE}/export", params={"format": "parquet"})
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == len(rows)
    assert sum(table.column("debit").to_pylist()) == sum(table.column("credit").to_pylist())
    waterfall = {(r["period"], r["kind"]): r for r in client.get(f"{REVENUE}/waterfall").json()}
    assert waterfall[("2026-09", "service")]["recognised"] == "106.76"
    assert waterfall[("2026-10", "service")]["deferred"] == "220.65"  # 205.18 fibre + 15.47 voice
    assert voice["schedule"][1]["amount"] == "15.47"

    # when both services are disconnected on 10 November 2026
    clock.advance(timedelta(days=55))
    disconnect = post(
        client,
        ORDERS,
        {
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {"id": str(n), "action": "delete", "product": {"id": o["serviceId"]}}
                for n, o in enumerate((fibre, voice), 1)
            ],
        },
    )
    assert _final(client, disconnect["id"])["state"] == "completed"
    _settled(session_factory)

    # then both schedules stop: October kept, 9 days of November, nothing after
    contract = _contract(client, order_id)
    for o in contract["performanceObligation"]:
        if o["kind"] != "service":
            continue
        assert (o["state"], o["stopDate"]) == ("stopped", "2026-11-10")
        live = [line for line in o["schedule"] if line["status"] != "cancelled"]
        assert [(line["period"], line["days"]) for line in live] == [
            ("2026-09", 15),
            ("2026-10", 31),
            ("2026-11", 9),
        ]
        assert {line["status"] for line in o["schedule"][3:]} == {"cancelled"}
    fibre_after = next(o for o in contract["performanceObligation"] if o["key"] == fibre["key"])
    assert fibre_after["schedule"][2]["amount"] == "59.57"  # 4838.25 x 9 / 731
    # and the disconnect order opened no contract of its own
    assert client.get(f"{REVENUE}/contract", params={"productOrderId": disconnect["id"]}).json() == []
