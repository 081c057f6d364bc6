"""Issue acceptance: a hub subscriber receives each catalog event exactly once by eventId even when it
fails the first 3 deliveries of every event; delivery attempts are visible through the API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import turnup.demo
from tests.fakes.subscriber import FakeSubscriber, loopback_settings
from turnup.catalog import load_catalog_file, publish_catalog
from turnup.kernel import clock
from turnup.kernel.delivery import DeliveryWorker
from turnup.kernel.outbox import OutboxEvent
from turnup.kernel.settings import Settings

HUB = "/tmf-api/productCatalogManagement/v4/hub"
DEMO_CATALOG = Path(turnup.demo.__file__).parent / "catalog.yaml"


@pytest.fixture
def subscriber() -> Iterator[FakeSubscriber]:
    with FakeSubscriber(fail_first_per_event=3) as sub:
        yield sub


@pytest.fixture
def settings(db_url: str) -> Settings:
    """The fake subscriber listens on 127.0.0.1: allowed explicitly (loopback is refused otherwise)."""
    return loopback_settings(db_url)


def test_catalog_subscriber_failing_three_times_gets_each_event_exactly_once(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    clock.freeze(datetime(2030, 3, 1, 12, 0, tzinfo=UTC))
    # Given a subscriber to every catalog event that fails the first 3 deliveries of each event
    hub = client.post(HUB, json={"callback": subscriber.url})
    assert hub.status_code == 201, hub.text
    # When the demo catalog is published (many Create events) and one offering changes state
    with session_factory() as s:
        publish_catalog(s, load_catalog_file(DEMO_CATALOG), "test")
    with session_factory() as s:
        event_ids = sorted(
            s.scalars(select(OutboxEvent.id).where(OutboxEvent.api == "productCatalogManagement"))
        )
    assert len(event_ids) > 20
    worker = DeliveryWorker(
        session_factory,
        settings.model_copy(
            update={"delivery_backoff_base_seconds": 2.0, "delivery_backoff_cap_seconds": 600.0}
        ),
        worker_id="w1",
    )
    attempts_per_run = []
    for _ in range(6):  # the first run plus backoffs of 2, 4 and 8 seconds, then nothing is owed
        attempts_per_run.append(worker.run_once())
        clock.advance(timedelta(seconds=10))
    # Then every event was accepted exactly once, after exactly 3 refusals each
    assert Counter(subscriber.accepted) == Counter({eid: 1 for eid in event_ids})
    assert attempts_per_run == [len(event_ids)] * 4 + [0, 0]
    for eid in event_ids[:5]:
        assert [r.status for r in subscriber.requests_for(eid)] == [503, 503, 503, 200]
    # And the attempts are visible through the hub's delivery endpoint
    listed = client.get(f"{HUB}/{hub.json()['id']}/delivery", params={"limit": 1000})
    assert listed.status_code == 200
    assert listed.headers["X-Total-Count"] == str(len(event_ids))
    assert {(d["status"], d["attempts"]) for d in listed.json()} == {("delivered", 4)}
    assert sorted(d["eventId"] for d in listed.json()) == event_ids
