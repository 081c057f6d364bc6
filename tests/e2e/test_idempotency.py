"""Issue 12 hardening: ``Idempotency-Key`` on every POST. The same key and body replay the first response
(status and body) without a second effect; the same key with another body is a 409; keys are per user; they
are kept for a configurable time and swept by housekeeping; concurrent requests with one key never both run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import turnup.api.idempotency as http_idempotency
from turnup.accounts.orm import Customer
from turnup.kernel import clock, housekeeping
from turnup.kernel.idempotency import IdempotencyRecord
from turnup.ordering.orm import ProductOrder
from turnup.testing import make_customer, make_offering, order_body, wait_until

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
ACME = {"name": "Acme Ltd", "status": "active"}


@pytest.fixture
def dbos_cleanup(db_url: str) -> Iterator[None]:
    """Order creation enqueues a DBOS workflow: drop DBOS's schema of this PostgreSQL test afterwards."""
    yield
    from tests.workflows.conftest import drop_dbos_schema

    drop_dbos_schema(db_url)


def _count(factory: sessionmaker[Session], model: Any) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _post(client: TestClient, key: str, body: dict[str, Any], path: str = CUSTOMERS) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": key})


def test_the_same_key_and_body_replay_the_first_response_and_another_body_is_refused(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # Given a customer created with key K
    first = _post(client, "K", ACME)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    # When the same request is sent again with K, then the first response comes back and nothing is created
    again = _post(client, "K", ACME)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert _count(session_factory, Customer) == 1

    # When K comes with another body, then it is a 409 and nothing is created
    other = _post(client, "K", {**ACME, "name": "Other plc"})
    assert other.status_code == 409
    assert other.json()["message"] == "Idempotency-Key: key 'K' was already used with another request"
    # nor may K be used on another path
    elsewhere = _post(client, "K", ACME, path="/tmf-api/customerManagement/v4/contact")
    assert elsewhere.status_code == 409
    assert _count(session_factory, Customer) == 1

    # When another key or no key is used, then each request has its effect
    assert _post(client, "L", ACME).status_code == 201
    assert client.post(CUSTOMERS, json=ACME).status_code == 201
    assert client.post(CUSTOMERS, json=ACME).status_code == 201
    assert _count(session_factory, Customer) == 4


def test_an_error_response_is_replayed_too_and_a_bad_key_is_refused(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    refused = _post(client, "bad", {"name": ""})
    assert refused.status_code == 400
    again = _post(client, "bad", {"name": ""})
    assert (again.status_code, again.json()) == (400, refused.json())
    assert again.headers["idempotent-replayed"] == "true"

    too_long = _post(client, "k" * 256, ACME)
    assert too_long.status_code == 400
    assert too_long.json()["message"] == "Idempotency-Key: must be 1 to 255 characters"
    assert _count(session_factory, Customer) == 0
    assert _count(session_factory, IdempotencyRecord) == 1


def test_keys_are_scoped_per_user(
    client: TestClient, app: Any, session_factory: sessionmaker[Session]
) -> None:
    from turnup.security import create_api_token, create_user

    with session_factory() as s:
        create_user(s, username="second", password="Pebble-Comet-Willow-73", roles=["admin"])
        token = create_api_token(s, username="second")
    first = _post(client, "K", ACME)
    with TestClient(app, raise_server_exceptions=False) as other:
        other.headers["Authorization"] = f"Bearer {token}"
        theirs = _post(other, "K", ACME)
    assert (first.status_code, theirs.status_code) == (201, 201)
    assert theirs.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    assert _count(session_factory, Customer) == 2


def test_a_request_without_valid_credentials_is_not_remembered(
    anon_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    response = _post(anon_client, "K", ACME)
    assert response.status_code == 401
    assert _count(session_factory, IdempotencyRecord) == 0


def test_keys_expire_after_the_configured_time_and_housekeeping_sweeps_them(
    client: TestClient, session_factory: sessionmaker[Session], settings: Any
) -> None:
    # Given keys kept 24 hours (the default)
    assert settings.idempotency_key_ttl_hours == 24
    first = _post(client, "K", ACME)
    _post(client, "L", ACME)
    clock.advance(timedelta(hours=23))
    assert _post(client, "K", ACME).json() == first.json()
    assert housekeeping.run_once(session_factory)["idempotency"]["result"] == {"keys_expired": 0}

    # When more than 24 hours have passed, then housekeeping deletes both keys
    clock.advance(timedelta(hours=2))
    assert housekeeping.run_once(session_factory)["idempotency"]["result"] == {"keys_expired": 2}
    assert _count(session_factory, IdempotencyRecord) == 0
    # and K is a new request again
    again = _post(client, "K", ACME)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert _count(session_factory, Customer) == 3


def test_an_expired_key_is_free_even_before_the_sweep(
    app: Any, admin_token: str, session_factory: sessionmaker[Session]
) -> None:
    app.state.settings.idempotency_key_ttl_hours = 1
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {admin_token}"
        first = _post(client, "K", ACME)
        clock.advance(timedelta(minutes=61))
        again = _post(client, "K", {**ACME, "name": "Other plc"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert _count(session_factory, Customer) == 2
    assert _count(session_factory, IdempotencyRecord) == 1


def test_openapi_declares_the_header_on_every_post(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    posts = [item["post"] for item in paths.values() if "post" in item]
    assert posts
    for post in posts:
        assert [p for p in post.get("parameters", []) if p["name"] == "Idempotency-Key"] == [
            http_idempotency.OPENAPI_PARAMETER
        ]
    gets = [item["get"] for item in paths.values() if "get" in item]
    assert all(p["name"] != "Idempotency-Key" for g in gets for p in g.get("parameters", []))


# --- concurrency --------------------------------------------------------------------------------


@pytest.fixture
def order_world(session_factory: sessionmaker[Session]) -> dict[str, Any]:
    with session_factory() as s:
        offering = make_offering(
            s,
            "Business Fibre",
            [{"adapter": "network-simulator", "action": "activate-access", "parameters": {}}],
        )
        return order_body(make_customer(s), offering)


def test_a_second_request_while_the_first_runs_is_refused_and_only_one_order_exists(
    client: TestClient,
    session_factory: sessionmaker[Session],
    order_world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    dbos_cleanup: None,
) -> None:
    # Given a first order request with key K held up after it claimed K, before the order is written
    gate = threading.Event()
    real = http_idempotency._replaying

    def held_up(body: bytes, receive: Any) -> Any:
        inner = real(body, receive)

        async def wait_then_receive() -> Any:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(gate.wait, 60)
            return await inner()

        return wait_then_receive

    monkeypatch.setattr(http_idempotency, "_replaying", held_up)
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(_post(client, "K", order_world, ORDERS)))
    first.start()
    try:
        wait_until(lambda: _count(session_factory, IdempotencyRecord) == 1, timeout=30, message="K claimed")
        # When the same request is sent again meanwhile, then it is a 409 "in progress"
        second = _post(client, "K", order_world, ORDERS)
        assert second.status_code == 409
        assert (
            second.json()["message"]
            == "Idempotency-Key: a request with key 'K' is still in progress; retry later"
        )
        assert _count(session_factory, ProductOrder) == 0
    finally:
        gate.set()
        first.join(60)
    # Then the first completes, and a retry afterwards gets its response: one order in all
    assert [r.status_code for r in results] == [201]
    retry = _post(client, "K", order_world, ORDERS)
    assert (retry.status_code, retry.json()) == (201, results[0].json())
    assert _count(session_factory, ProductOrder) == 1


def test_racing_requests_with_one_key_create_one_order(
    client: TestClient,
    session_factory: sessionmaker[Session],
    order_world: dict[str, Any],
    dbos_cleanup: None,
) -> None:
    # Given six threads released together, each posting the same order with key K
    threads = 6
    barrier = threading.Barrier(threads)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def send() -> None:
        barrier.wait(30)
        response = _post(client, "K", order_world, ORDERS)
        with lock:
            results.append(response)

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)

    # Then exactly one order exists; every answer is that order (201) or "in progress" (409)
    assert len(results) == threads
    assert _count(session_factory, ProductOrder) == 1
    with session_factory() as s:
        order_id = s.scalar(select(ProductOrder.id))
    created = [r for r in results if r.status_code == 201]
    assert created and all(r.json()["id"] == order_id for r in created)
    assert all(r.status_code in (201, 409) for r in results)
    assert all(
        r.json()["message"] == "Idempotency-Key: a request with key 'K' is still in progress; retry later"
        for r in results
        if r.status_code == 409
    )
