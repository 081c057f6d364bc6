"""A priced change order is a contract modification treated prospectively (docs/revenue.md): an active
Flex service (45.50 a month, 12 months from 16 Sep 2026, no quote) is raised to 1000 Mbps on 11 Oct 2026
(79.99 a month: +34.49, and a 150.00 activation): what was earned before the day is kept, the rest of the
schedule carries what was not yet earned plus the added consideration, by day. Once per event. Both
databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.workflows.test_change_orders import ORDERS, _active_service, _final, _modify, _offerings
from turnup.kernel import clock
from turnup.kernel.consumers import ConsumerInbox, ConsumerWorker
from turnup.testing import wait_until

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


def _obligation(client: TestClient) -> dict[str, Any]:
    everything = client.get(f"{REVENUE}/contract").json()
    contracts = [c for c in everything if c["transactionPrice"] != "0.00"]
    assert len(contracts) == 1, [(c["status"], c["reviewReason"], c["transactionPrice"]) for c in everything]
    detail = client.get(f"{REVENUE}/contract/{contracts[0]['id']}").json()
    (obligation,) = detail["performanceObligation"]
    return {**obligation, "transactionPrice": detail["transactionPrice"]}


def test_a_priced_upgrade_is_recognised_prospectively(
    client: TestClient, customer_id: str, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    clock.freeze(datetime(2026, 9, 16, 9, 0, tzinfo=UTC))
    offerings = _offerings(session_factory)
    flex = _active_service(client, customer_id, offerings["Business Fibre Flex"])
    _settled(session_factory)
    before = _obligation(client)
    assert (before["allocatedAmount"], before["startDate"], before["state"]) == (
        "546.00",
        "2026-09-16",
        "inProgress",
    )
    october = before["schedule"][1]
    assert (october["period"], october["days"], october["amount"]) == ("2026-10", 31, "46.37")  # 546 x 31/365

    # when the service is upgraded on 11 October 2026
    clock.advance(timedelta(days=25))
    change = client.post(ORDERS, json=_modify(customer_id, flex, bandwidthMbps=1000))
    assert change.status_code == 201, change.text
    assert _final(client, change.json()["id"])["state"] == "completed"
    _settled(session_factory)

    # then: 10 October days kept at the old rate (46.37 x 10/31 = 14.96); the 340 days left carry what was
    # not yet earned (546.00 - 22.44 September - 14.96 = 508.60) plus 34.49 x 12 x 340/365 = 385.53 and the
    # 150.00 activation: 1044.13 over 340 days
    after = _obligation(client)
    assert after["modification"] == [
        {
            "eventId": after["modification"][0]["eventId"],
            "treatment": "prospective",
            "effective": "2026-10-11",
            "added": "535.53",
            "productOrderId": change.json()["id"],
        }
    ]
    assert (after["allocatedAmount"], after["transactionPrice"]) == ("1081.53", "1081.53")
    schedule = after["schedule"]
    assert schedule[0] == before["schedule"][0]  # September untouched (22.44)
    assert schedule[0]["amount"] == "22.44"
    # October: 14.96 kept + 21 of the 340 days of 1044.13 (64.49)
    assert schedule[1]["amount"] == "79.45"
    assert sum(D(line["amount"]) for line in schedule) == D("1081.53")
    assert len(schedule) == len(before["schedule"]) == 13
    # and a redelivered event changes nothing
    with session_factory() as s:
        from turnup.kernel.consumers import Event
        from turnup.kernel.outbox import OutboxEvent
        from turnup.revenue.consumers import earned_triggers

        row = s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "ServiceModifiedEvent")).one()
        earned_triggers(
            s,
            Event(
                id=row.id,
                api=row.api,
                event_type=row.event_type,
                event_time=row.event_time,
                resource_type=row.resource_type,
                resource_id=row.resource_id,
                payload=row.payload,
            ),
        )
        s.commit()
    assert _obligation(client) == after
