"""Hub subscriptions end to end: API changes -> outbox -> delivery worker -> a real local HTTP subscriber.

Time is moved with ``turnup.kernel.clock.advance`` between worker runs; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.fakes.subscriber import FakeSubscriber, loopback_settings
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.delivery import DeliveryWorker
from turnup.kernel.outbox import DeliveryAttempt, EventDelivery, HubSubscription, OutboxEvent
from turnup.kernel.settings import Settings

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
SITES = "/tmf-api/geographicSiteManagement/v4/geographicSite"
HUB = "/tmf-api/customerManagement/v4/hub"
SITE_HUB = "/tmf-api/geographicSiteManagement/v4/hub"


@pytest.fixture(autouse=True)
def _frozen_clock() -> None:
    """Time only moves when a test says so (conftest resets the clock afterwards)."""
    clock.freeze(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))


@pytest.fixture
def subscriber() -> Iterator[FakeSubscriber]:
    with FakeSubscriber() as sub:
        yield sub


@pytest.fixture
def settings(db_url: str) -> Settings:
    """The fake subscriber listens on 127.0.0.1: allowed explicitly (loopback is refused otherwise)."""
    return loopback_settings(db_url)


def _worker(session_factory: sessionmaker[Session], settings: Settings, **overrides: Any) -> DeliveryWorker:
    values = {
        "delivery_backoff_base_seconds": 2.0,
        "delivery_backoff_cap_seconds": 600.0,
        "delivery_max_attempts": 30,
        "delivery_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return DeliveryWorker(session_factory, settings.model_copy(update=values), worker_id="test-worker")


def _subscribe(client: TestClient, callback: str, query: str | None = None, hub: str = HUB) -> dict[str, Any]:
    body: dict[str, Any] = {"callback": callback}
    if query is not None:
        body["query"] = query
    response = client.post(hub, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _customer(client: TestClient, name: str = "Acme Widgets Ltd") -> dict[str, Any]:
    response = client.post(CUSTOMERS, json={"name": name, "customerType": "organization", "country": "GB"})
    assert response.status_code == 201, response.text
    return response.json()


def _event_ids(factory: sessionmaker[Session], event_type: str | None = None) -> list[str]:
    with factory() as s:
        stmt = select(OutboxEvent.id).where(OutboxEvent.api == "customerManagement")
        if event_type:
            stmt = stmt.where(OutboxEvent.event_type == event_type)
        return sorted(s.scalars(stmt))


def _count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _deliveries(client: TestClient, hub_id: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{HUB}/{hub_id}/delivery", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_subscriber_failing_three_times_gets_every_event_exactly_once_after_backoff(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    # Given a subscriber that answers 503 to the first 3 deliveries of every event
    subscriber.fail_first_per_event = 3
    hub = _subscribe(client, subscriber.url)
    first, _second, _third = (_customer(client, f"Customer {i}") for i in range(3))
    patched = client.patch(f"{CUSTOMERS}/{first['id']}", json={"status": "active"})
    assert patched.status_code == 200
    published = _event_ids(session_factory)
    assert len(published) == 4
    worker = _worker(session_factory, settings)

    # When the worker runs, with the clock moved by the backoff between runs (2s, 4s, 8s)
    runs = [worker.run_once()]
    for wait in (2, 4, 8):
        clock.advance(timedelta(seconds=wait - 1))
        runs.append(worker.run_once())  # one second early: nothing is due yet
        clock.advance(timedelta(seconds=1))
        runs.append(worker.run_once())
    runs.append(worker.run_once())

    # Then each event was attempted 4 times and accepted exactly once
    assert runs == [4, 0, 4, 0, 4, 0, 4, 0]
    assert sorted(subscriber.accepted) == published
    assert len(subscriber.accepted) == len(set(subscriber.accepted))
    for event_id in published:
        received = subscriber.requests_for(event_id)
        assert [r.attempt for r in received] == [1, 2, 3, 4]
        assert [r.status for r in received] == [503, 503, 503, 200]
        assert {r.header_event_id for r in received} == {event_id}
        assert {r.path for r in received} == {"/listener"}
    bodies = [r.body for r in subscriber.received if r.status == 200]
    assert sorted(b["eventType"] for b in bodies if b) == [
        "CustomerCreateEvent",
        "CustomerCreateEvent",
        "CustomerCreateEvent",
        "CustomerStateChangeEvent",
    ]
    assert _count(session_factory, DeliveryAttempt) == 16

    # And the delivery endpoint shows it, attempt by attempt
    response = client.get(f"{HUB}/{hub['id']}/delivery")
    assert response.headers["X-Total-Count"] == "4"
    listed = response.json()
    assert sorted(d["eventId"] for d in listed) == published
    for d in listed:
        assert d["@type"] == "EventDelivery"
        assert (d["status"], d["attempts"]) == ("delivered", 4)
        assert (d["lastError"], d["nextAttemptAt"]) == (None, None)
        assert d["deliveredAt"].endswith("Z")
        assert [a["attemptNo"] for a in d["attempt"]] == [1, 2, 3, 4]
        assert [a["statusCode"] for a in d["attempt"]] == [503, 503, 503, 200]
        assert [a["error"] for a in d["attempt"]] == ["HTTP 503: temporarily unavailable"] * 3 + [None]
        assert d["href"].endswith(f"{HUB}/{hub['id']}/delivery/{d['id']}")
    state_change = _deliveries(client, hub["id"], eventType="CustomerStateChangeEvent", fields="eventId")
    assert state_change == [
        {
            "id": state_change[0]["id"],
            "href": state_change[0]["href"],
            "@type": "EventDelivery",
            "eventId": _event_ids(session_factory, "CustomerStateChangeEvent")[0],
        }
    ]
    one = client.get(f"{HUB}/{hub['id']}/delivery/{listed[0]['id']}")
    assert one.status_code == 200 and one.json() == listed[0]


def test_subscriber_down_for_ten_minutes_loses_nothing(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    # Given a registered subscriber that then goes down (its port refuses connections)
    hub = _subscribe(client, subscriber.url)
    subscriber.stop()
    for i in range(3):
        _customer(client, f"Customer {i}")
    published = _event_ids(session_factory)
    worker = _worker(session_factory, settings)

    # When the worker keeps running for 10 simulated minutes
    failed_attempts = 0
    for _ in range(20):
        failed_attempts += worker.run_once()
        clock.advance(timedelta(seconds=30))
    # Then nothing was delivered, every attempt was recorded with its error, and nothing was given up
    # (attempts at t=0, 30, 60, 90, 120, 180, 270 and 420 seconds: backoff 2, 4, … 256s)
    assert failed_attempts == 3 * 8
    with session_factory() as s:
        assert set(s.scalars(select(EventDelivery.status))) == {"pending"}
        errors = list(s.scalars(select(DeliveryAttempt.error)))
    assert len(errors) == failed_attempts
    assert all(e and e.startswith("connection failed") for e in errors)
    assert subscriber.received == []

    # When it comes back on the same port and the worker keeps going
    subscriber.start()
    for _ in range(30):
        if len(subscriber.accepted) == len(published):
            break
        clock.advance(timedelta(seconds=60))
        worker.run_once()

    # Then every event arrived exactly once, and the history shows the outage
    assert sorted(subscriber.accepted) == published
    assert len(subscriber.accepted) == len(set(subscriber.accepted))
    for d in _deliveries(client, hub["id"]):
        assert d["status"] == "delivered"
        assert d["attempts"] == len(d["attempt"]) == 9
        assert [a["attemptNo"] for a in d["attempt"]] == list(range(1, d["attempts"] + 1))
        assert all(a["error"].startswith("connection failed") for a in d["attempt"][:-1])
        assert (d["attempt"][-1]["statusCode"], d["attempt"][-1]["error"]) == (200, None)
    assert worker.run_once() == 0


def test_query_filters_event_types_and_delete_stops_new_events(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    # Given a subscription to customer creations only
    hub = _subscribe(client, subscriber.url, query="eventType=CustomerCreateEvent")
    assert hub["query"] == "eventType=CustomerCreateEvent"
    customer = _customer(client)
    changed = client.patch(f"{CUSTOMERS}/{customer['id']}", json={"status": "active", "name": "Renamed"})
    assert changed.status_code == 200
    site = client.post(SITES, json={"customerId": customer["id"], "name": "HQ", "country": "GB"})
    assert site.status_code == 201
    worker = _worker(session_factory, settings)

    # When the worker runs
    assert worker.run_once() == 1

    # Then only the creation was delivered; the state/attribute changes and the site event were not
    assert [r.event_type for r in subscriber.received] == ["CustomerCreateEvent"]
    assert subscriber.accepted == _event_ids(session_factory, "CustomerCreateEvent")
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 4
        assert s.scalar(select(func.count()).select_from(EventDelivery)) == 1

    # When the subscription is deleted and another customer is created
    assert client.delete(f"{HUB}/{hub['id']}").status_code == 204
    _customer(client, "Second Ltd")

    # Then no delivery is owed for the new event and nothing more is sent
    assert _count(session_factory, EventDelivery) == 0  # the subscription's history went with it
    assert worker.run_once() == 0
    assert len(subscriber.received) == 1
    assert client.get(f"{HUB}/{hub['id']}").status_code == 404
    assert client.get(f"{HUB}/{hub['id']}/delivery").status_code == 404
    with session_factory() as s:
        audits = s.scalars(
            select(AuditEntry.action).where(AuditEntry.resource_id == hub["id"]).order_by(AuditEntry.at)
        ).all()
    assert audits == ["hub.subscribe", "hub.unsubscribe"]


def test_attribute_query_filter_matches_resource_fields(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    _subscribe(client, subscriber.url, query="eventType=CustomerCreateEvent&event.customer.name=Wanted Ltd")
    _customer(client, "Unwanted Ltd")
    wanted = _customer(client, "Wanted Ltd")
    assert _worker(session_factory, settings).run_once() == 1
    assert [r.body["event"]["customer"]["id"] for r in subscriber.received if r.body] == [wanted["id"]]


def test_failed_request_writes_no_event_and_no_delivery(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    # Given a subscriber and one delivered customer event
    _subscribe(client, subscriber.url)
    customer = _customer(client)
    worker = _worker(session_factory, settings)
    assert worker.run_once() == 1
    before = (_count(session_factory, OutboxEvent), _count(session_factory, EventDelivery))
    assert before == (1, 1)

    # When requests fail: invalid input (400) and an illegal transition (409)
    bad = client.post(CUSTOMERS, json={"name": "x", "customerType": "company"})
    assert bad.status_code == 400
    illegal = client.patch(f"{CUSTOMERS}/{customer['id']}", json={"status": "suspended", "name": "New"})
    assert illegal.status_code == 409
    clock.advance(timedelta(hours=1))

    # Then no event and no delivery was written, and the worker has nothing to send
    assert (_count(session_factory, OutboxEvent), _count(session_factory, EventDelivery)) == before
    assert worker.run_once() == 0
    assert len(subscriber.received) == 1


def test_max_attempts_dead_letters_and_redeliver_requeues(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    # Given a subscriber that always fails and a worker allowed 3 attempts
    subscriber.fail_always = True
    hub = _subscribe(client, subscriber.url)
    _customer(client)
    (event_id,) = _event_ids(session_factory)
    worker = _worker(session_factory, settings, delivery_max_attempts=3)

    # When the worker has tried 3 times
    for _ in range(3):
        assert worker.run_once() == 1
        clock.advance(timedelta(minutes=15))

    # Then the delivery is failed (a dead letter), still visible, and no longer retried
    (dead,) = _deliveries(client, hub["id"])
    assert (dead["status"], dead["attempts"], dead["nextAttemptAt"]) == ("failed", 3, None)
    assert dead["lastError"] == "HTTP 503: temporarily unavailable"
    assert _deliveries(client, hub["id"], status="failed")[0]["id"] == dead["id"]
    assert _deliveries(client, hub["id"], status="pending") == []
    clock.advance(timedelta(days=1))
    assert worker.run_once() == 0
    assert subscriber.accepted == []

    # When the subscriber is fixed and the delivery redelivered
    subscriber.fail_always = False
    redeliver = f"{HUB}/{hub['id']}/delivery/{dead['id']}/redeliver"
    requeued = client.post(redeliver)
    assert requeued.status_code == 200, requeued.text
    assert (requeued.json()["status"], requeued.json()["attempts"]) == ("pending", 3)
    assert worker.run_once() == 1

    # Then it is delivered once, as attempt 4, and the redeliver was audited
    (done,) = _deliveries(client, hub["id"])
    assert (done["status"], done["attempts"]) == ("delivered", 4)
    assert [a["statusCode"] for a in done["attempt"]] == [503, 503, 503, 200]
    assert subscriber.accepted == [event_id]
    assert [r.attempt for r in subscriber.received] == [1, 2, 3, 4]
    with session_factory() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "hub.redeliver")).all()
    assert [(a.actor, a.resource_id, a.details["eventId"]) for a in audit] == [
        ("user:admin", dead["id"], event_id)
    ]

    # And a delivered one cannot be redelivered
    again = client.post(redeliver)
    assert again.status_code == 409
    assert "only failed deliveries" in again.json()["message"]


def test_redeliver_gives_a_fresh_retry_budget(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    subscriber.fail_always = True
    hub = _subscribe(client, subscriber.url)
    _customer(client)
    worker = _worker(session_factory, settings, delivery_max_attempts=2)
    for _ in range(2):
        worker.run_once()
        clock.advance(timedelta(minutes=1))
    (dead,) = _deliveries(client, hub["id"], status="failed")
    assert client.post(f"{HUB}/{hub['id']}/delivery/{dead['id']}/redeliver").status_code == 200
    # two more failures are allowed after the requeue (backoff restarts at the base: 2s)
    assert worker.run_once() == 1
    (retrying,) = _deliveries(client, hub["id"])
    assert (retrying["status"], retrying["attempts"]) == ("pending", 3)
    clock.advance(timedelta(seconds=2))
    assert worker.run_once() == 1
    (dead_again,) = _deliveries(client, hub["id"])
    assert (dead_again["status"], dead_again["attempts"]) == ("failed", 4)
    assert [r.attempt for r in subscriber.received] == [1, 2, 3, 4]


def test_bad_hub_input_is_tmf_400_and_creates_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    cases: list[dict[str, Any]] = [
        {"json": {}},
        {"json": {"query": "eventType=CustomerCreateEvent"}},
        {"json": {"callback": "not a url"}},
        {"json": {"callback": "ftp://example.com/listener"}},
        {"json": {"callback": "http://"}},
        {"json": {"callback": 42}},
        {"json": {"callback": "http://127.0.0.1:9/listener", "colour": "red"}},
        {"json": {"callback": "http://127.0.0.1:9/listener", "query": "eventType"}},
        {"json": {"callback": "http://127.0.0.1:9/listener", "query": "=x"}},
        {"content": b'{"callback": ', "headers": {"Content-Type": "application/json"}},
    ]
    for case in cases:
        response = client.post(HUB, **case)
        assert response.status_code == 400, (case, response.text)
        body = response.json()
        assert body["@type"] == "Error" and body["status"] == "400" and body["code"] == "ERR400"
        assert body["message"]
    missing = client.post(HUB, json={}).json()
    assert "callback" in missing["message"]
    unknown = client.post(HUB, json={"callback": "http://127.0.0.1:9/l", "colour": "red"}).json()
    assert "colour" in unknown["message"]
    assert _count(session_factory, HubSubscription) == 0


def test_unknown_hub_and_delivery_ids_are_tmf_404(client: TestClient, subscriber: FakeSubscriber) -> None:
    hub = _subscribe(client, subscriber.url)
    for method, path in (
        ("GET", f"{HUB}/nope"),
        ("DELETE", f"{HUB}/nope"),
        ("GET", f"{HUB}/nope/delivery"),
        ("GET", f"{HUB}/{hub['id']}/delivery/nope"),
        ("POST", f"{HUB}/nope/delivery/x/redeliver"),
        ("POST", f"{HUB}/{hub['id']}/delivery/nope/redeliver"),
        # a customerManagement subscription is not visible under another API's hub
        ("GET", f"{SITE_HUB}/{hub['id']}"),
        ("DELETE", f"{SITE_HUB}/{hub['id']}"),
        ("GET", f"{SITE_HUB}/{hub['id']}/delivery"),
    ):
        response = client.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["@type"] == "Error"
    assert client.get(f"{HUB}/{hub['id']}").status_code == 200


def test_delivery_of_another_subscription_is_404(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    subscriber.fail_always = True
    first = _subscribe(client, subscriber.url)
    second = _subscribe(client, subscriber.url + "/other")
    _customer(client)
    worker = _worker(session_factory, settings, delivery_max_attempts=1)
    assert worker.run_once() == 2
    (of_first,) = _deliveries(client, first["id"])
    assert of_first["status"] == "failed"
    wrong = client.post(f"{HUB}/{second['id']}/delivery/{of_first['id']}/redeliver")
    assert wrong.status_code == 404
    assert client.get(f"{HUB}/{second['id']}/delivery/{of_first['id']}").status_code == 404
    assert _deliveries(client, first["id"])[0]["status"] == "failed"


def test_viewer_cannot_see_or_redeliver_hub_deliveries(
    client: TestClient,
    anon_client: TestClient,
    session_factory: sessionmaker[Session],
    subscriber: FakeSubscriber,
) -> None:
    from turnup.security import create_api_token, create_user

    hub = _subscribe(client, subscriber.url)
    with session_factory() as s:
        create_user(s, username="val", roles=["viewer"])
        token = create_api_token(s, username="val")
    headers = {"Authorization": f"Bearer {token}"}
    listed = anon_client.get(f"{HUB}/{hub['id']}/delivery", headers=headers)
    assert listed.status_code == 403 and "accounts:subscribe" in listed.json()["message"]
    assert anon_client.post(f"{HUB}/{hub['id']}/delivery/x/redeliver", headers=headers).status_code == 403
    assert anon_client.get(f"{HUB}/{hub['id']}/delivery").status_code == 401


CATALOG_HUB = "/tmf-api/productCatalogManagement/v4/hub"
CATEGORIES = "/tmf-api/productCatalogManagement/v4/category"


def test_catalog_events_reach_a_catalog_subscriber_exactly_once(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    subscriber: FakeSubscriber,
) -> None:
    # Given a catalog subscriber interested in category state changes only, which fails twice per event
    subscriber.fail_first_per_event = 2
    hub = _subscribe(client, subscriber.url, query="eventType=CategoryStateChangeEvent", hub=CATALOG_HUB)
    created = client.post(CATEGORIES, json={"name": "Broadband"})
    assert created.status_code == 201, created.text
    activated = client.patch(
        f"{CATEGORIES}/{created.json()['id']}",
        json={"lifecycleStatus": "active"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert activated.status_code == 200, activated.text
    bad = client.post(CATEGORIES, json={"name": "X", "lifecycleStatus": "bogus"})
    assert bad.status_code == 400
    worker = _worker(session_factory, settings)

    # When the worker runs through the backoff
    runs = [worker.run_once()]
    for wait in (2, 4):
        clock.advance(timedelta(seconds=wait))
        runs.append(worker.run_once())

    # Then only the state change was delivered, once, after 3 attempts
    assert runs == [1, 1, 1]
    with session_factory() as s:
        state_changes = list(
            s.scalars(select(OutboxEvent.id).where(OutboxEvent.event_type == "CategoryStateChangeEvent"))
        )
    assert subscriber.accepted == state_changes
    (received,) = [r for r in subscriber.received if r.status == 200]
    assert received.body is not None
    assert received.body["event"]["category"]["lifecycleStatus"] == "active"
    (d,) = client.get(f"{CATALOG_HUB}/{hub['id']}/delivery").json()
    assert (d["eventType"], d["status"], d["attempts"]) == ("CategoryStateChangeEvent", "delivered", 3)
