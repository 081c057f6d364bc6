"""Usage (TMF635): accepting records through the API and files, de-duplication by id, tiered rating per
service and month whatever the arrival order, the review queue for usage outside a service's active period,
bad input, and the bill-run hook (``usage.unbilled_rated_usage`` / ``usage.mark_billed``). Both databases.

The services are made through the service inventory face and moved through their states at fixed times;
their delivery events reach ``usage.service_periods`` when the consumers are drained.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import publish_demo_catalog
from turnup import service_inventory, usage
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.consumers import PENDING, ConsumerInbox, ConsumerWorker
from turnup.kernel.errors import Conflict
from turnup.kernel.ids import new_id
from turnup.usage.orm import UsageRecord, UsageServiceChange

BASE = "/tmf-api/usageManagement/v4"
USAGE, IMPORT, REVIEW = f"{BASE}/usage", f"{BASE}/usageImport", f"{BASE}/usageReview"
ACTIVATED = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def at(day: int, month: int = 3, hour: int = 12) -> str:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def drain(factory: sessionmaker[Session]) -> None:
    ConsumerWorker(factory).drain()


def move(factory: sessionmaker[Session], service_id: str, state: str, when: datetime, action: str) -> None:
    clock.freeze(when)
    try:
        with factory() as s:
            service = service_inventory.get_service(s, service_id)
            service_inventory.change_state(
                s, service, state, order_id="order-test", order_item_id="item-test", action=action
            )
            s.commit()
    finally:
        clock.freeze(None)


def make_service(
    factory: sessionmaker[Session], customer_id: str, offering_id: str, *, activate: bool = True
) -> str:
    service_id = new_id()
    clock.freeze(datetime(2026, 3, 1, tzinfo=UTC))
    try:
        with factory() as s:
            service_inventory.design_service(
                s,
                service_id=service_id,
                name="Hosted voice seat",
                customer_id=customer_id,
                offering_id=offering_id,
                offering_name="Hosted Voice Seat",
                specification_id=None,
                adapter="simulator",
                characteristics={},
                order_id="order-test",
                order_item_id="item-test",
            )
            s.commit()
    finally:
        clock.freeze(None)
    if activate:
        move(factory, service_id, "active", ACTIVATED, "add")
        drain(factory)
    return service_id


@pytest.fixture
def voice(client: TestClient, session_factory: sessionmaker[Session]) -> dict[str, str]:
    """A customer, and the demo catalog's Hosted Voice Seat (minutes: 0.02 to 1000, 0.015 to 10000, then
    0.01), its offering id."""
    offerings = publish_demo_catalog(session_factory)
    customer = client.post("/tmf-api/customerManagement/v4/customer", json={"name": "Usage Ltd"}).json()
    return {"customer": customer["id"], "offering": offerings["Hosted Voice Seat"]}


def record(rid: str, service_id: str, when: str, minutes: Any, **extra: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "usageDate": when,
        "usageType": "minute",
        "relatedService": {"id": service_id},
        "usageCharacteristic": [{"name": "quantity", "value": minutes}],
        **extra,
    }


def csv_file(rows: list[tuple[str, str, str, str, str]]) -> str:
    return "id,usageDate,usageType,quantity,serviceId\n" + "".join(",".join(r) + "\n" for r in rows)


def import_csv(client: TestClient, text: str) -> dict[str, Any]:
    response = client.post(IMPORT, content=text.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def import_json(client: TestClient, docs: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(IMPORT, content=json.dumps(docs), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def amounts(client: TestClient, service_id: str) -> dict[str, str]:
    """usageDate -> rated amount of the service's records."""
    docs = client.get(USAGE, params={"relatedService.id": service_id, "limit": 1000}).json()
    return {
        d["usageDate"]: d["ratedProductUsage"][0]["taxExcludedRatingAmount"]["value"]
        for d in docs
        if d["ratedProductUsage"]
    }


def usage_rows(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(UsageRecord)) or 0)


# March for one service: 500 (12th), 600 (20th), 300 (25th) minutes = 1400; April: 200 (2nd).
MARCH_APRIL = {
    at(12): "10.00",  # 500 @ 0.02
    at(20): "11.50",  # 500 @ 0.02 + 100 @ 0.015 (crosses 1000)
    at(25): "4.50",  # 300 @ 0.015
    at(2, 4): "4.00",  # a new month: 200 @ 0.02 again
}


def file_a(service_id: str, prefix: str) -> str:
    return csv_file(
        [
            (f"{prefix}-20", at(20), "minute", "600", service_id),
            (f"{prefix}-25", at(25), "minute", "300", service_id),
        ]
    )


def file_b(service_id: str, prefix: str) -> list[dict[str, Any]]:
    return [
        record(f"{prefix}-12", service_id, at(12), 500),
        record(f"{prefix}-02", service_id, at(2, 4), "200"),
    ]


def test_tiers_are_cumulative_per_month_whatever_the_arrival_order_and_files(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    # given two active voice services
    first = make_service(session_factory, voice["customer"], voice["offering"])
    second = make_service(session_factory, voice["customer"], voice["offering"])
    # when the first gets file A (the 20th, the 25th) then file B (the 12th, out of order, and April)
    report_a = import_csv(client, file_a(first, "x"))
    report_b = import_json(client, file_b(first, "x"))
    # and the second gets the same usage, file B first
    import_json(client, file_b(second, "y"))
    import_csv(client, file_a(second, "y"))
    # then both are rated as if the month's minutes had arrived in date order, in one file
    assert (report_a["accepted"], report_a["rated"], report_a["rejectedCount"]) == (2, 2, 0)
    assert (report_b["accepted"], report_b["rated"]) == (2, 2)
    assert amounts(client, first) == MARCH_APRIL
    assert amounts(client, second) == MARCH_APRIL
    # and March's amounts sum to the tiered charge of 1400 minutes exactly
    with session_factory() as s:
        march = usage.unbilled_rated_usage(
            s, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), service_ids=[first]
        )
    assert [u.amount for u in march] == [Decimal("10.00"), Decimal("11.50"), Decimal("4.50")]
    assert sum(u.amount for u in march) == Decimal("26.00")  # 1000 @ 0.02 + 400 @ 0.015
    # and the list filters by usage date range, customer and service
    march_first = client.get(
        USAGE,
        params={
            "usageDate.gte": "2026-03-01T00:00:00Z",
            "usageDate.lt": "2026-04-01T00:00:00Z",
            "relatedParty.id": voice["customer"],
            "relatedService.id": first,
        },
    )
    assert [d["id"] for d in march_first.json()] == ["x-12", "x-20", "x-25"]
    assert march_first.headers["X-Total-Count"] == "3"
    tiers = client.get(f"{USAGE}/x-20").json()["ratedProductUsage"][0]["tier"]
    assert tiers == [
        {"from": "0", "to": "1000", "rate": "0.02", "quantity": "500"},
        {"from": "1000", "to": "10000", "rate": "0.015", "quantity": "100"},
    ]


def test_the_same_file_twice_is_accepted_once(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    service = make_service(session_factory, voice["customer"], voice["offering"])
    text = file_a(service, "d")
    first = import_csv(client, text)
    before = amounts(client, service)
    again = import_csv(client, text)
    assert (first["accepted"], first["duplicates"]) == (2, 0)
    assert (again["received"], again["accepted"], again["duplicates"], again["rejectedCount"]) == (2, 0, 2, 0)
    assert amounts(client, service) == before == {at(20): "12.00", at(25): "6.00"}  # 600, 300 @ 0.02
    assert usage_rows(session_factory) == 2
    # the same record POSTed again is the stored one (200), not a new one
    one = record("d-20", service, at(20), "600.000")
    response = client.post(USAGE, json=one)
    assert response.status_code == 200, response.text
    assert usage_rows(session_factory) == 2


def test_usage_outside_the_active_period_goes_to_review_and_is_never_billed(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    # given a service active from the 10th, suspended the 15th, resumed the 18th, terminated the 28th
    service = make_service(session_factory, voice["customer"], voice["offering"])
    move(session_factory, service, "inactive", datetime(2026, 3, 15, tzinfo=UTC), "suspend")
    move(session_factory, service, "active", datetime(2026, 3, 18, tzinfo=UTC), "resume")
    move(session_factory, service, "terminated", datetime(2026, 3, 28, tzinfo=UTC), "delete")
    drain(session_factory)
    # when usage arrives for before, during and after its active periods
    report = import_json(
        client,
        [
            record("r-05", service, at(5), 100),
            record("r-16", service, at(16), 100),
            record("r-20", service, at(20), 100),
            record("r-29", service, at(29), 100),
        ],
    )
    # then only the usage of the active period is rated; the rest waits in the review queue with its reason
    assert (report["accepted"], report["rated"], report["review"]) == (4, 1, 3)
    queue = client.get(REVIEW).json()
    assert {d["id"]: d["review"]["reason"] for d in queue} == {
        "r-05": "beforeActivation",
        "r-16": "suspended",
        "r-29": "afterTermination",
    }
    assert all(d["status"] == "guided" and d["ratedProductUsage"] == [] for d in queue)
    with session_factory() as s:
        unbilled = usage.unbilled_rated_usage(
            s, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), service_ids=[service]
        )
    assert [(u.id, u.amount) for u in unbilled] == [("r-20", Decimal("2.00"))]
    # when an operator re-rates one without force: still not billable (409, unchanged)
    refused = client.post(f"{REVIEW}/r-16/rerate", json={})
    assert refused.status_code == 409, refused.text
    assert refused.json()["@type"] == "Error" and "suspended" in refused.json()["message"]
    # with force it is rated (after r-20's 100 minutes? no: in date order, the 16th comes first)
    forced = client.post(f"{REVIEW}/r-16/rerate", json={"force": True, "note": "agreed with the customer"})
    assert forced.status_code == 200, forced.text
    assert forced.json()["status"] == "rated" and forced.json()["review"]["state"] == "resolved"
    # and a write-off takes one out of the queue for good
    written = client.post(f"{REVIEW}/r-29/writeOff", json={"note": "after termination"})
    assert written.status_code == 200 and written.json()["status"] == "rejected"
    assert [d["id"] for d in client.get(REVIEW).json()] == ["r-05"]
    with session_factory() as s:
        unbilled = usage.unbilled_rated_usage(
            s, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), service_ids=[service]
        )
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("usage.review.%")).order_by(AuditEntry.at)
        ).all()
    assert [u.id for u in unbilled] == ["r-16", "r-20"]
    assert actions == ["usage.review.rerate", "usage.review.writeOff"]


def test_usage_that_arrives_before_the_activation_is_known_is_rated_when_it_is(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    # given a service activated on the 10th whose delivery event usage has not handled yet
    service = make_service(session_factory, voice["customer"], voice["offering"], activate=False)
    move(session_factory, service, "active", ACTIVATED, "add")
    # when its usage arrives: held for review (usage does not know it is active)
    created = client.post(USAGE, json=record("early-1", service, at(11), 50))
    assert created.status_code == 201, created.text
    assert (created.json()["status"], created.json()["review"]["reason"]) == ("guided", "beforeActivation")
    # then once the event is handled it is rated and leaves the queue
    drain(session_factory)
    doc = client.get(f"{USAGE}/early-1").json()
    assert doc["status"] == "rated" and doc["review"]["state"] == "resolved"
    assert doc["ratedProductUsage"][0]["taxExcludedRatingAmount"] == {"unit": "GBP", "value": "1.00"}
    assert client.get(REVIEW).json() == []
    # and handling every event again changes nothing
    with session_factory() as s:
        redelivered = s.execute(
            update(ConsumerInbox)
            .where(ConsumerInbox.consumer == "usage.service_periods")
            .values(status=PENDING, done_at=None)
        ).rowcount
        s.commit()
    assert redelivered == 1
    drain(session_factory)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(UsageServiceChange)) == 1
    assert client.get(f"{USAGE}/early-1").json() == doc


def test_bad_records_are_refused_and_write_nothing(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    service = make_service(session_factory, voice["customer"], voice["offering"])
    assert client.post(USAGE, json=record("ok-1", service, at(12), 10)).status_code == 201
    with session_factory() as s:
        audits_before = s.scalar(select(func.count()).select_from(AuditEntry))
    cases = [
        (record("b-1", "no-such-service", at(12), 10), 400, "relatedService.id: unknown service"),
        (record("b-2", service, at(12), -5), 400, "quantity cannot be negative"),
        (record("b-3", service, "2026-13-45T99:00:00Z", 5), 400, "usageDate"),
        (record("b-4", service, "2026-03-12T10:00:00", 5), 400, "usageDate"),  # no timezone
        (record("b-5", service, at(12), "ten"), 400, "is not a number"),
        (record("ok-1", service, at(12), 11), 409, "already received with other content"),
        (
            record("b-6", service, at(12), 1, relatedParty=[{"id": "someone-else", "role": "customer"}]),
            400,
            "does not own service",
        ),
        (
            {
                "id": "b-7",
                "usageDate": at(12),
                "usageType": "minute",
                "usageCharacteristic": [{"name": "quantity", "value": 1}],
            },
            400,
            "relatedService",
        ),
    ]
    for body, status, text in cases:
        response = client.post(USAGE, json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()
        assert error["@type"] == "Error" and text in error["message"], (body, error)
    # nothing was written: one record, its amount unchanged, no audit entry
    assert usage_rows(session_factory) == 1
    assert client.get(f"{USAGE}/ok-1").json()["usageCharacteristic"][0]["value"] == "10"
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == audits_before


def test_an_import_reports_each_rejected_line_and_keeps_the_good_ones(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    service = make_service(session_factory, voice["customer"], voice["offering"])
    text = (
        csv_file(
            [
                ("f-1", at(12), "minute", "100", service),
                ("f-2", at(12), "minute", "-1", service),
                ("f-3", "yesterday", "minute", "1", service),
                ("f-4", at(13), "minute", "1", "unknown-service"),
                ("f-1", at(12), "minute", "999", service),  # same id, other content, same file
                ("f-5", at(13), "minute", "200", service),
            ]
        )
        + "f-6,too,few\n"
    )
    report = import_csv(client, text)
    assert (report["received"], report["accepted"], report["rated"], report["rejectedCount"]) == (7, 2, 2, 5)
    assert [(r["line"], r["id"], r["field"], r["status"]) for r in report["rejected"]] == [
        (3, "f-2", "usageCharacteristic[0].value", 400),
        (4, "f-3", "usageDate", 400),
        (8, None, "line", 400),
        (6, "f-1", "id", 409),
        (5, "f-4", "relatedService.id", 400),
    ]
    assert sorted(d["id"] for d in client.get(USAGE).json()) == ["f-1", "f-5"]
    # a file that cannot be read at all is a TMF Error, and writes nothing
    bad = client.post(IMPORT, content=b"id,when\nx,y\n", headers={"Content-Type": "text/csv"})
    assert bad.status_code == 400 and bad.json()["@type"] == "Error" and "header" in bad.json()["message"]
    assert usage_rows(session_factory) == 2


def test_bill_runs_take_rated_usage_once(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    service = make_service(session_factory, voice["customer"], voice["offering"])
    import_json(client, [record("m-12", service, at(12), 800), record("m-14", service, at(14), 300)])
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    with session_factory() as s:
        lines = usage.unbilled_rated_usage(s, *march, billing_account_id=f"BA-{voice['customer']}")
        assert [(u.id, u.amount, u.currency) for u in lines] == [
            ("m-12", Decimal("16.00"), "GBP"),
            ("m-14", Decimal("5.50"), "GBP"),  # 200 @ 0.02 + 100 @ 0.015
        ]
        assert usage.mark_billed(s, [u.id for u in lines], "bill-1") == 2
        assert usage.mark_billed(s, ["m-12", "m-14"], "bill-1") == 0  # idempotent
        s.commit()
    with session_factory() as s:
        assert usage.unbilled_rated_usage(s, *march) == []
        with pytest.raises(Conflict, match="already billed on 'bill-1'"):
            usage.mark_billed(s, ["m-12"], "bill-2")
    # a late record of the billed month is rated after the billed ones: the month still sums exactly
    import_json(client, [record("m-05", service, at(11), 100)])
    with session_factory() as s:
        late = usage.unbilled_rated_usage(s, *march)
    assert [(u.id, u.amount) for u in late] == [("m-05", Decimal("1.50"))]  # minutes 1100-1200
    assert Decimal("16.00") + Decimal("5.50") + Decimal("1.50") == Decimal("23.00")  # 1000@.02 + 200@.015
    billed = client.get(USAGE, params={"status": "billed"}).json()
    assert {d["id"]: d["ratedProductUsage"][0]["billRef"] for d in billed} == {
        "m-12": "bill-1",
        "m-14": "bill-1",
    }


def test_usage_of_a_type_the_offering_has_no_price_for_waits_for_review(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    service = make_service(session_factory, voice["customer"], voice["offering"])
    # the service named by a serviceId characteristic, the file wrapped as {"usage": [...]}
    sms = {
        "id": "s-1",
        "usageDate": at(12),
        "usageType": "sms",
        "usageCharacteristic": [{"name": "quantity", "value": 3}, {"name": "serviceId", "value": service}],
    }
    response = client.post(IMPORT, json={"usage": [sms, record("s-2", service, at(12), 30)]})
    assert response.status_code == 200, response.text
    assert (response.json()["rated"], response.json()["review"]) == (1, 1)
    held = client.get(f"{USAGE}/s-1").json()
    assert (held["status"], held["review"]["reason"], held["ratedProductUsage"]) == (
        "guided",
        "noUsagePrice",
        [],
    )
    assert held["relatedService"]["id"] == service
    # re-rating cannot help while there is no price: 409, still held
    refused = client.post(f"{REVIEW}/s-1/rerate", json={"force": True})
    assert refused.status_code == 409 and "no usage price for 'sms'" in refused.json()["message"]
    assert client.get(f"{USAGE}/s-1").json() == held


def test_a_suspension_learnt_late_takes_its_usage_back_to_review(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    # given rated usage on the 12th (600 minutes) and the 16th (600 minutes: crosses the 1000 tier)
    service = make_service(session_factory, voice["customer"], voice["offering"])
    import_json(client, [record("late-12", service, at(12), 600), record("late-16", service, at(16), 600)])
    assert amounts(client, service) == {at(12): "12.00", at(16): "11.00"}  # 400 @ 0.02 + 200 @ 0.015
    # when usage learns that the service was suspended on the 15th
    move(session_factory, service, "inactive", datetime(2026, 3, 15, tzinfo=UTC), "suspend")
    drain(session_factory)
    # then the 16th's usage is held for review and no longer offered to a bill run; the 12th is unchanged
    held = client.get(f"{USAGE}/late-16").json()
    assert (held["status"], held["review"]["reason"], held["ratedProductUsage"]) == (
        "guided",
        "suspended",
        [],
    )
    with session_factory() as s:
        unbilled = usage.unbilled_rated_usage(
            s, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), service_ids=[service]
        )
    assert [(u.id, u.amount) for u in unbilled] == [("late-12", Decimal("12.00"))]
