"""Professional services by percent complete through real orders: the demo's Managed Firewall (a project with
four milestones weighted 20/30/40/10, SSP 3400.00, plus 275.00 a month of management) is ordered without a
quote (12 months); each ``milestoneAccepted`` reported on the order recognises the project's allocated price
up to the accepted milestones' percent (cumulative catch-up), at the time it is reported; the management
service starts its ratable schedule when the service activates. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.workflows.test_demo_orders import DEMO_CATALOG, _offering
from turnup.catalog import load_catalog_file, publish_catalog
from turnup.kernel import clock
from turnup.kernel.consumers import ConsumerInbox, ConsumerWorker
from turnup.testing import wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
REVENUE = "/tmf-api/turnupRevenue/v1"


def _settled(factory: sessionmaker[Session]) -> None:
    def owed() -> bool:
        ConsumerWorker(factory).drain()
        with factory() as s:
            return not s.scalar(
                select(ConsumerInbox.seq)
                .where(ConsumerInbox.consumer.like("revenue.%"), ConsumerInbox.status != "done")
                .limit(1)
            )

    wait_until(owed, 30, message="revenue consumers settled")


def _obligations(client: TestClient, order_id: str) -> dict[str, dict[str, Any]]:
    (contract,) = client.get(f"{REVENUE}/contract", params={"productOrderId": order_id}).json()
    detail = client.get(f"{REVENUE}/contract/{contract['id']}").json()
    assert detail["status"] == "active", detail
    return {o["kind"]: o for o in detail["performanceObligation"]}


def _report(client: TestClient, order_id: str, event: str) -> None:
    wait_until(
        lambda: any(
            a["eventType"] == event for a in client.get(f"{ORDERS}/{order_id}").json()["awaitedEvent"]
        ),
        30,
        message=f"awaiting {event}",
    )
    reported = client.post(f"{ORDERS}/{order_id}/event", json={"eventType": event, "reference": event})
    assert reported.status_code == 201, reported.text


def test_a_project_is_recognised_by_accepted_milestones(
    client: TestClient, customer_id: str, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    clock.freeze(datetime(2026, 10, 5, 9, 0, tzinfo=UTC))
    with session_factory() as s:
        publish_catalog(s, load_catalog_file(DEMO_CATALOG), "test")
    created = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {"id": "1", "action": "add", "productOffering": {"id": _offering(client, "Managed Firewall")}}
            ],
        },
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    _settled(session_factory)
    # given the contract: 275 x 12 + 2400 = 5700.00 over the project (SSP 3400) and management (275 x 12)
    obligations = _obligations(client, order_id)
    project, service = obligations["professionalServices"], obligations["service"]
    assert (project["standaloneSellingPrice"], project["allocatedAmount"]) == ("3400.00", "2892.54")
    assert (service["standaloneSellingPrice"], service["allocatedAmount"]) == ("3300.00", "2807.46")
    assert [(m["name"], m["revenuePercent"], m["accepted"]) for m in project["milestone"]] == [
        ("Design workshop", "20", False),
        ("Policy build", "30", False),
        ("Cut-over", "40", False),
        ("Handover", "10", False),
    ]

    # when the appliance is delivered and the first milestone is accepted: 20% of 2892.54
    _report(client, order_id, "shipmentDelivered")
    _report(client, order_id, "milestoneAccepted")
    _settled(session_factory)
    project = _obligations(client, order_id)["professionalServices"]
    assert (project["state"], project["recognisedAmount"]) == ("inProgress", "578.51")
    # when the second is accepted (a week later): up to 50% -> 1446.27, so 867.76 more
    clock.freeze(datetime(2026, 10, 12, 9, 0, tzinfo=UTC))
    _report(client, order_id, "milestoneAccepted")
    _settled(session_factory)
    project = _obligations(client, order_id)["professionalServices"]
    assert project["recognisedAmount"] == "1446.27"
    assert [(line["period"], line["source"], line["amount"]) for line in project["schedule"]] == [
        ("2026-10", "percentComplete", "578.51"),
        ("2026-10", "percentComplete", "867.76"),
    ]
    # when the last two are accepted: all of it, the obligation satisfied; the service activates
    _report(client, order_id, "milestoneAccepted")
    _report(client, order_id, "milestoneAccepted")
    final = wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if client.get(f"{ORDERS}/{order_id}").json()["state"] in ("completed", "failed", "partial")
            else None
        ),
        60,
        message="order final",
    )
    assert final["state"] == "completed"
    _settled(session_factory)
    obligations = _obligations(client, order_id)
    project, service = obligations["professionalServices"], obligations["service"]
    assert (project["state"], project["recognisedAmount"]) == ("satisfied", "2892.54")
    assert all(m["accepted"] for m in project["milestone"])
    assert (service["state"], service["startDate"]) == ("inProgress", "2026-10-12")
    assert service["schedule"][0]["period"] == "2026-10"
    # revenue by type, from the ledger
    report = client.get(f"{REVENUE}/report").json()
    assert report == [{"kind": "professionalServices", "product": "Managed Firewall", "revenue": "2892.54"}]
