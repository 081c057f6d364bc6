"""Webhook hygiene (issue 15, item 5): callbacks to internal addresses are refused at subscription and at
delivery (DNS rebinding), deliveries are HMAC-signed with a timestamp and a per-subscription secret that is
never stored, and what a subscriber answered is truncated and shown to admins only. SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

import turnup.models
from tests.fakes.subscriber import FakeSubscriber
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.delivery import DeliveryWorker
from turnup.kernel.outbox import DeliveryAttempt, EventDelivery, HubSubscription
from turnup.kernel.settings import Settings
from turnup.security import create_api_token, create_user
from turnup.security.permissions import ROLE_PERMISSIONS

HUB = "/tmf-api/customerManagement/v4/hub"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
KEY = "test-webhook-signing-key"

REFUSED_CALLBACKS = [
    ("http://127.0.0.1:8080/cb", "loopback"),
    ("http://127.9.9.9/cb", "loopback"),
    ("http://localhost:9/cb", "loopback"),
    ("http://[::1]/cb", "loopback"),
    ("http://10.1.2.3/cb", "private"),
    ("http://172.16.0.1/cb", "private"),
    ("http://192.168.1.1/cb", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[fe80::1]/cb", "link-local"),
    ("http://[fd00::1]/cb", "private"),
    ("http://224.0.0.1/cb", "multicast"),
    ("http://0.0.0.0/cb", "unspecified"),
    ("http://[::]/cb", "unspecified"),
    ("http://[::ffff:127.0.0.1]/cb", "loopback"),
    ("http://100.64.0.1/cb", "non-public"),
]


@pytest.fixture(autouse=True)
def _frozen_clock() -> None:
    clock.freeze(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(db_url: str) -> Settings:
    """No network is allowed: the default. Tests that need the local fake allow it explicitly."""
    return Settings(database_url=db_url, run_worker=False, webhook_signing_key=KEY)


def _allowing(settings: Settings, networks: str) -> Settings:
    return settings.model_copy(update={"webhook_allowed_networks": networks})


def _worker(factory: sessionmaker[Session], settings: Settings) -> DeliveryWorker:
    return DeliveryWorker(factory, settings.model_copy(update={"delivery_max_attempts": 3}), worker_id="w")


def _counts(factory: sessionmaker[Session]) -> tuple[int, int]:
    with factory() as s:
        subs = s.scalar(select(func.count()).select_from(HubSubscription)) or 0
        audits = s.scalar(select(func.count()).select_from(AuditEntry)) or 0
    return subs, audits


@pytest.mark.parametrize(("callback", "kind"), REFUSED_CALLBACKS)
def test_callbacks_to_internal_addresses_are_refused_and_nothing_is_recorded(
    client: TestClient, session_factory: sessionmaker[Session], callback: str, kind: str
) -> None:
    before = _counts(session_factory)
    # When a callback points at a loopback, private, link-local, multicast or unspecified address
    response = client.post(HUB, json={"callback": callback})
    # Then: 400 TMF Error naming the callback and the kind of address, and no subscription, no audit row
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["@type"] == "Error" and body["status"] == "400"
    assert body["message"].startswith("callback: callback refused: ")
    assert kind in body["message"] and "TURNUP_WEBHOOK_ALLOWED_NETWORKS" in body["message"]
    assert _counts(session_factory) == before == (0, before[1])


def test_configured_networks_are_allowed_and_only_those(
    settings: Settings, engine: Any, admin_token: str
) -> None:
    from turnup.app import create_app

    app = create_app(_allowing(settings, "127.0.0.1/32, 10.20.0.0/16"), engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {admin_token}"
        assert c.post(HUB, json={"callback": "http://127.0.0.1:9/cb"}).status_code == 201
        assert c.post(HUB, json={"callback": "http://10.20.3.4/cb"}).status_code == 201
        assert c.post(HUB, json={"callback": "http://10.21.0.1/cb"}).status_code == 400
        assert c.post(HUB, json={"callback": "http://127.0.0.2/cb"}).status_code == 400


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _subscribe_and_publish(client: TestClient, callback: str) -> dict[str, Any]:
    hub = client.post(HUB, json={"callback": callback})
    assert hub.status_code == 201, hub.text
    created = client.post(CUSTOMERS, json={"name": "Acme", "country": "GB", "segment": "smb"})
    assert created.status_code == 201, created.text
    return dict(hub.json())


def test_a_name_rebound_to_loopback_after_subscribing_is_refused_at_delivery(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeSubscriber() as sub:
        # Given a callback whose name resolves to a public address when the subscription is made
        _fake_dns(monkeypatch, {"hooks.rebind.test": "93.184.216.34"})
        hub = _subscribe_and_publish(client, f"http://hooks.rebind.test:{sub.port}/listener")
        # When the name now resolves to the loopback address where an internal service (the fake) listens
        _fake_dns(monkeypatch, {"hooks.rebind.test": "127.0.0.1"})
        assert _worker(session_factory, settings).run_once() == 1
        # Then nothing reached it, and the attempt says why
        assert sub.received == []
    with session_factory() as s:
        attempt = s.scalars(select(DeliveryAttempt)).one()
        delivery = s.scalars(select(EventDelivery)).one()
    assert delivery.subscription_id == hub["id"] and delivery.status == "pending"
    assert attempt.status_code is None
    assert attempt.error == (
        "connection failed: callback refused: hooks.rebind.test resolves to 127.0.0.1 is a loopback address; "
        "webhooks may only go to public addresses (or to networks listed in TURNUP_WEBHOOK_ALLOWED_NETWORKS)"
    )


def test_a_subscription_made_while_allowed_is_refused_once_the_network_is_no_longer_allowed(
    settings: Settings, engine: Any, admin_token: str, session_factory: sessionmaker[Session]
) -> None:
    from turnup.app import create_app

    with FakeSubscriber() as sub:
        app = create_app(_allowing(settings, "127.0.0.1/32"), engine)
        with TestClient(app, raise_server_exceptions=False) as c:
            c.headers["Authorization"] = f"Bearer {admin_token}"
            _subscribe_and_publish(c, sub.url)
        assert _worker(session_factory, settings).run_once() == 1  # the worker allows nothing
        assert sub.received == []
    with session_factory() as s:
        error = s.scalars(select(DeliveryAttempt.error)).one()
    assert error is not None and error.startswith(
        "connection failed: callback refused: 127.0.0.1 is a loopback"
    )


def test_the_worker_connects_to_the_address_it_checked(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A name only the (fake) resolver knows: delivery works only if the checked address is the one used.
    _fake_dns(monkeypatch, {"hooks.internal.test": "93.184.216.34"})
    with FakeSubscriber() as sub:
        _subscribe_and_publish(client, f"http://hooks.internal.test:{sub.port}/listener")
        _fake_dns(monkeypatch, {"hooks.internal.test": "127.0.0.1"})
        assert _worker(session_factory, _allowing(settings, "127.0.0.1/32")).run_once() == 1
        assert [r.status for r in sub.received] == [200]


def test_deliveries_are_signed_with_the_secret_returned_once_at_subscription(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_dns(monkeypatch, {"hooks.partner.test": "93.184.216.34"})
    with FakeSubscriber(require_signature=True) as sub:
        # Given a subscription: its answer carries the secret (64 hex digits); reading it back does not
        hub = _subscribe_and_publish(client, f"http://hooks.partner.test:{sub.port}/listener")
        secret = hub["secret"]
        assert len(secret) == 64 and int(secret, 16) >= 0
        assert "secret" not in client.get(f"{HUB}/{hub['id']}").json()
        assert all("secret" not in h for h in client.get(HUB).json())
        sub.trust(secret)
        _fake_dns(monkeypatch, {"hooks.partner.test": "127.0.0.1"})
        # When the worker delivers
        assert _worker(session_factory, _allowing(settings, "127.0.0.1/32")).run_once() == 1
        # Then the receiver verified the signature: timestamp + HMAC-SHA256(secret, "<ts>.<body>")
        [received] = sub.received
    assert received.status == 200 and received.signature_ok is True
    assert received.timestamp == str(int(datetime(2030, 1, 7, 9, 0, tzinfo=UTC).timestamp()))
    assert received.body is not None
    with session_factory() as s:
        payload = s.scalars(select(EventDelivery)).one().event.payload
    raw = _raw(payload)
    expected = hmac.new(secret.encode(), f"{received.timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    assert received.signature == f"v1={expected}"


def _raw(payload: dict[str, Any]) -> bytes:
    import json

    return json.dumps(payload, separators=(",", ":")).encode()


def test_a_receiver_refuses_a_delivery_signed_with_another_secret(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_dns(monkeypatch, {"hooks.partner.test": "93.184.216.34"})
    with FakeSubscriber(require_signature=True) as sub:
        hub = _subscribe_and_publish(client, f"http://hooks.partner.test:{sub.port}/listener")
        sub.trust(hub["secret"][::-1])  # not the subscription's secret
        _fake_dns(monkeypatch, {"hooks.partner.test": "127.0.0.1"})
        assert _worker(session_factory, _allowing(settings, "127.0.0.1/32")).run_once() == 1
        assert [(r.status, r.signature_ok) for r in sub.received] == [(401, False)]


def test_the_subscription_secret_is_stored_nowhere(
    client: TestClient, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_dns(monkeypatch, {"hooks.partner.test": "93.184.216.34"})
    hub = _subscribe_and_publish(client, "http://hooks.partner.test/listener")
    assert _rows_containing(session_factory, hub["secret"]) == []


def _rows_containing(factory: sessionmaker[Session], needle: str) -> list[str]:
    """Every table whose text (any column, any row) contains ``needle``."""
    found = []
    with factory() as s:
        for table in turnup.models.metadata.sorted_tables:
            for row in s.execute(select(table)).all():
                if any(needle in str(value) for value in row):
                    found.append(table.name)
                    break
    return found


@pytest.fixture
def integrator_token(session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> str:
    """A role that manages customer hub subscriptions but is not an administrator."""
    monkeypatch.setitem(ROLE_PERMISSIONS, "integrator", {"accounts:subscribe", "accounts:write"})
    with session_factory() as s:
        create_user(s, username="ines", password="Harbour-Violet-Anvil-19", roles=["integrator"])
        return create_api_token(s, username="ines")


def test_response_bodies_are_truncated_and_shown_to_admins_only(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    integrator_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret_page = b"internal: " + b"x" * 1000
    _fake_dns(monkeypatch, {"hooks.partner.test": "93.184.216.34"})
    with FakeSubscriber(fail_first_global=1, fail_status=500, fail_body=secret_page) as sub:
        hub = _subscribe_and_publish(client, f"http://hooks.partner.test:{sub.port}/listener")
        _fake_dns(monkeypatch, {"hooks.partner.test": "127.0.0.1"})
        assert _worker(session_factory, _allowing(settings, "127.0.0.1/32")).run_once() == 1
    deliveries = f"{HUB}/{hub['id']}/delivery"
    # The admin sees the first 300 characters of what the subscriber said
    [admin_view] = client.get(deliveries).json()
    stored = "HTTP 500: internal: " + "x" * 290
    assert admin_view["lastError"] == stored and admin_view["attempt"][0]["error"] == stored
    with session_factory() as s:
        assert s.scalars(select(DeliveryAttempt.error)).one() == stored
    # Anyone else with access to the subscription sees the status alone, in the list and the single view
    other = {"Authorization": f"Bearer {integrator_token}"}
    [integrator_view] = client.get(deliveries, headers=other).json()
    single = client.get(f"{deliveries}/{admin_view['id']}", headers=other).json()
    for view in (integrator_view, single):
        assert view["lastError"] == "HTTP 500"
        assert [(a["statusCode"], a["error"]) for a in view["attempt"]] == [(500, "HTTP 500")]
        assert "internal" not in str(view)


def test_stored_response_bodies_are_at_most_300_characters_in_every_table(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = "Z" * 400
    _fake_dns(monkeypatch, {"hooks.partner.test": "93.184.216.34"})
    with FakeSubscriber(fail_first_global=1, fail_body=marker.encode()) as sub:
        _subscribe_and_publish(client, f"http://hooks.partner.test:{sub.port}/listener")
        _fake_dns(monkeypatch, {"hooks.partner.test": "127.0.0.1"})
        _worker(session_factory, _allowing(settings, "127.0.0.1/32")).run_once()
    assert _rows_containing(session_factory, "Z" * 301) == []
    assert sorted(_rows_containing(session_factory, "Z" * 300)) == ["delivery_attempt", "event_delivery"]


def test_the_database_holds_the_callback_but_no_signing_key(
    client: TestClient, session_factory: sessionmaker[Session], engine: Any
) -> None:
    _fake_dns_free = client.post(HUB, json={"callback": "http://listener.example/cb"})
    assert _fake_dns_free.status_code == 201
    assert _rows_containing(session_factory, KEY) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT callback FROM hub_subscription")).scalar_one() == (
            "http://listener.example/cb"
        )


def test_an_idempotent_replay_of_the_subscription_neither_stores_nor_repeats_the_secret(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    headers = {"Idempotency-Key": "sub-1"}
    first = client.post(HUB, json={"callback": "http://listener.example/cb"}, headers=headers)
    assert first.status_code == 201 and len(first.json()["secret"]) == 64
    replay = client.post(HUB, json={"callback": "http://listener.example/cb"}, headers=headers)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == {k: v for k, v in first.json().items() if k != "secret"}
    assert _rows_containing(session_factory, first.json()["secret"]) == []
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(HubSubscription)) == 1
