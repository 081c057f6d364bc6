"""Issue 14, billing acceptance end to end (both databases): the demo's Fibre + Voice bundle is quoted
(24-month term: 10% off, 249.00 -> 224.10 a month, 199.00 -> 179.10 installation), accepted, and delivered
by the order workflow on 10 March 2026 (the clock moved there); the field visit and the shipment are
reported through the API. The billing consumer starts each member's share of the bundle (by standalone
selling price, else recurring list price: fibre 199, voice 15; monthly 208.39 + 15.71, installation
166.55 + 12.55) on the activation date; the March bill run bills the prorated first period; the services
are disconnected on 20 March and the April bill credits the unused days of both."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
from turnup import billing
from turnup.kernel import clock
from turnup.kernel.consumers import ConsumerInbox, ConsumerWorker
from turnup.testing import wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
BILLS = "/tmf-api/customerBillManagement/v4"
USAGE = "/tmf-api/usageManagement/v4/usage"
WAITS = ("fieldVisit", "shipment", "pickup", "projectMilestone")


def move_clock_to(moment: str) -> None:
    """Let time run on from ``moment`` (the workflow's own timers keep working)."""
    target = datetime.fromisoformat(moment)
    clock.advance(target - clock.now())


def settled(factory: sessionmaker[Session]) -> None:
    names = ("billing.triggers", "usage.service_periods")

    def done() -> bool:
        ConsumerWorker(factory, names=names).drain()
        with factory() as s:
            return not s.scalar(
                select(ConsumerInbox.seq)
                .where(ConsumerInbox.consumer.in_(names), ConsumerInbox.status != "done")
                .limit(1)
            )

    wait_until(done, 30, message="billing consumer settled")


def completed(client: TestClient, order_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        order = client.get(f"{ORDERS}/{order_id}").json()
        return order if order["state"] in ("completed", "failed", "partial") else None

    order = wait_until(final, 90, message=f"order {order_id} final")
    assert order["state"] == "completed", order
    return dict(order)


def lines(client: TestClient, bill_id: str) -> list[tuple[str, str, str, str]]:
    bill = client.get(f"{BILLS}/customerBill/{bill_id}").json()
    return sorted(
        (line["type"], line["description"], line["taxExcludedAmount"]["value"], line["taxAmount"]["value"])
        for line in bill["billLine"]
    )


def test_fibre_and_voice_charges_start_on_activation_are_billed_prorated_and_stop_on_disconnect(
    client: TestClient, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    move_clock_to("2026-03-10T08:00:00+00:00")
    # Given the demo catalog, stock and pools, a GB customer, 20% GB tax, and an accepted Fibre + Voice quote
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    post(client, f"{BILLS}/taxRate", {"country": "GB", "taxCategory": "standard", "rate": "0.20"})
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"]))
    priced = post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)
    assert priced["state"] == "approved"
    order_id = post(client, f"{QUOTES}/{quote['id']}/accept", SIGNER, 200)["productOrder"]["id"]
    # When the order's field visit and shipment are reported and the workflow activates both services
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    waits = sorted({p["adapterAction"] for p in plan if p["kind"] in WAITS})
    assert waits == ["shipmentDelivered", "technicianCompleted"]
    wait_until(
        lambda: client.get(f"{ORDERS}/{order_id}").json()["state"] == "inProgress", 60, message="start"
    )
    for event in waits:
        reported = client.post(f"{ORDERS}/{order_id}/event", json={"eventType": event, "reference": "REF-1"})
        assert reported.status_code == 201, reported.text
    completed(client, order_id)
    services = {p["service"]["name"]: p["service"]["id"] for p in plan if p["kind"] == "serviceActivation"}
    assert len(services) == 2
    fibre, voice = (
        next(sid for name, sid in services.items() if name.startswith(k)) for k in ("Business", "Hosted")
    )
    settled(session_factory)

    # Then each service's charges start on the activation date: its share of the bundle's monthly price
    # (fibre 208.39, voice 15.71) for 22 of March's 31 days, and its share of the installation
    def charges(service_id: str) -> list[tuple[str, str, str | None]]:
        found = client.get(f"{BILLS}/appliedCustomerBillingRate", params={"service.id": service_id}).json()
        return sorted(
            (c["type"], c["taxExcludedAmount"]["value"], c["periodCoverage"]["startDateTime"]) for c in found
        )

    assert charges(fibre) == [("oneTime", "166.55", None), ("recurring", "147.89", "2026-03-10")]
    assert charges(voice) == [("oneTime", "12.55", None), ("recurring", "11.15", "2026-03-10")]
    with session_factory() as s:
        assert billing.services_with_running_charges(s, datetime(2026, 3, 11, tzinfo=UTC)) == {fibre, voice}
    # and the installation shares were charged on the hand-over / installation milestones
    one_time = client.get(f"{BILLS}/appliedCustomerBillingRate", params={"type": "oneTime"}).json()
    assert sorted((c["service"]["id"], c["source"]) for c in one_time) == sorted(
        [(fibre, "technicianCompleted"), (voice, "shipmentDelivered")]
    )

    # When March is billed
    run = post(client, f"{BILLS}/billRun", {"billCycleDay": 1, "period": "2026-03"})
    (march,) = run["customerBill"]
    # Then the bill has the prorated first period of both, the installation, 20% tax, exact totals
    assert lines(client, march["id"]) == sorted(
        [
            ("recurring", "Fibre + Voice monthly (Business Fibre 1G)", "147.89", "29.58"),
            ("recurring", "Fibre + Voice monthly (Hosted Voice Seat)", "11.15", "2.23"),
            ("oneTime", "Fibre + Voice one-time (Business Fibre 1G)", "166.55", "33.31"),
            ("oneTime", "Fibre + Voice one-time (Hosted Voice Seat)", "12.55", "2.51"),
        ]
    )
    bill = client.get(f"{BILLS}/customerBill/{march['id']}").json()
    assert (bill["taxExcludedAmount"]["value"], bill["taxItem"][0]["taxAmount"]["value"]) == (
        "338.14",
        "67.63",
    )
    assert bill["amountDue"] == {"unit": "GBP", "value": "405.77"}
    assert client.get(f"{BILLS}/customerBill/{march['id']}/pdf").content.startswith(b"%PDF-")

    # When 120 minutes of the voice seat's usage on 15 March are recorded (rated at the agreed tiers: 0.02)
    used = post(
        client,
        USAGE,
        {
            "id": "CDR-0001",
            "usageDate": "2026-03-15T10:00:00+00:00",
            "usageType": "minute",
            "relatedService": {"id": voice},
            "usageCharacteristic": [{"name": "quantity", "value": "120"}],
        },
    )
    assert used["status"] == "rated"

    # When both services are disconnected on 20 March
    move_clock_to("2026-03-20T08:00:00+00:00")
    for service_id in (fibre, voice):
        disconnect = post(
            client,
            ORDERS,
            {
                "relatedParty": [{"id": customer_id, "role": "customer"}],
                "productOrderItem": [{"id": "1", "action": "delete", "product": {"id": service_id}}],
            },
        )
        completed(client, disconnect["id"])
    settled(session_factory)
    # Then both charges stop: nothing runs any more, and the 12 unused days of each are credited
    with session_factory() as s:
        assert billing.services_with_running_charges(s, datetime(2026, 3, 21, tzinfo=UTC)) == set()
    assert ("credit", "-80.67", "2026-03-20") in charges(fibre)
    assert ("credit", "-6.08", "2026-03-20") in charges(voice)

    # When April is billed: the credits, and no April recurring charge
    move_clock_to("2026-04-01T08:00:00+00:00")
    (april,) = post(client, f"{BILLS}/billRun", {"billCycleDay": 1, "period": "2026-04"})["customerBill"]
    # and March's usage, in arrears, taken from usage rating through the bill run's usage slot
    assert lines(client, april["id"]) == [
        ("credit", "Fibre + Voice monthly (Business Fibre 1G) (terminated)", "-80.67", "-16.13"),
        ("credit", "Fibre + Voice monthly (Hosted Voice Seat) (terminated)", "-6.08", "-1.22"),
        ("usage", "minute usage 120 on 2026-03-15", "2.40", "0.48"),
    ]
    # -80.67 - 6.08 + 2.40 - 16.13 - 1.22 + 0.48
    assert client.get(f"{BILLS}/customerBill/{april['id']}").json()["amountDue"]["value"] == "-101.22"
    # and the usage record is billed on that account's April bill run, once: a re-run bills nothing more
    assert client.get(f"{USAGE}/CDR-0001").json()["status"] == "billed"
    again = post(client, f"{BILLS}/billRun", {"billCycleDay": 1, "period": "2026-04"})
    assert again["customerBill"] == []
