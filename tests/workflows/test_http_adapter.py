"""The HTTP adapter against a real local HTTP server (stdlib, in a thread) that verifies the HMAC signature
and applies one effect per idempotency key."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from turnup.provisioning.adapters import AdapterAnswerMalformed, AdapterError, AdapterRequest, check_result
from turnup.provisioning.http_adapter import HttpAdapter, verify
from turnup.testing import make_offering, order_body, wait_until

SECRET = "s3cret-for-tests"
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"


class Element:
    """The external system's state: effects by idempotency key, every request seen, faults to inject."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.effects: dict[str, dict[str, Any]] = {}  # key -> answer (one effect per key)
        self.requests: list[dict[str, Any]] = []
        self.refused_signatures = 0
        self.fail_next = 0  # answer 503 to the next N signed requests


class Handler(BaseHTTPRequestHandler):
    element: Element

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        element = self.server.element  # type: ignore[attr-defined]
        timestamp = self.headers.get("X-Turnup-Timestamp") or ""
        signature = self.headers.get("X-Turnup-Signature") or ""
        with element.lock:
            if not verify(SECRET, timestamp, body, signature):
                element.refused_signatures += 1
                return self._answer(401, {"error": "bad signature"})
            doc = json.loads(body)
            key = self.headers.get("Idempotency-Key")
            element.requests.append({"path": self.path, "key": key, "body": doc})
            if key != doc["idempotencyKey"]:
                return self._answer(400, {"error": "idempotency key header and body differ"})
            if element.fail_next > 0:
                element.fail_next -= 1
                return self._answer(503, {"error": "busy"})
            if key not in element.effects:
                element.effects[key] = {
                    "status": "done",
                    "networkRef": f"ext-{doc['serviceId'][:8]}",
                    "operation": doc["operation"],
                    "effect": len(element.effects) + 1,
                }
            return self._answer(200, element.effects[key])

    def _answer(self, code: int, doc: dict[str, Any]) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def element() -> Iterator[tuple[Element, str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.element = Element()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.element, f"http://127.0.0.1:{server.server_address[1]}/element"  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_signed_calls_are_applied_once_per_idempotency_key(element: tuple[Element, str]) -> None:
    state, url = element
    adapter = HttpAdapter(url, SECRET)
    request = AdapterRequest(
        idempotency_key="p1:activate",
        service_id="svc-123456789",
        action="activate-access",
        parameters={"mbps": 100},
        order_id="o1",
    )
    first = adapter.activate(request)
    second = adapter.activate(request)
    assert first == second
    assert check_result("http", "activate", first).network_ref == "ext-svc-1234"
    assert len(state.effects) == 1 and len(state.requests) == 2
    assert {r["path"] for r in state.requests} == {"/element/activate"}
    assert state.requests[0]["body"]["parameters"] == {"mbps": 100}
    # a transient 503 is a retryable AdapterError; the retry with the same key gets the same single effect
    state.fail_next = 1
    with pytest.raises(AdapterError) as failed:
        adapter.deactivate(
            AdapterRequest(idempotency_key="p1:deactivate", service_id="svc-123456789", action="x")
        )
    assert not isinstance(failed.value, AdapterAnswerMalformed) and "503" in str(failed.value)
    adapter.deactivate(
        AdapterRequest(idempotency_key="p1:deactivate", service_id="svc-123456789", action="x")
    )
    assert sorted(state.effects) == ["p1:activate", "p1:deactivate"]


def test_a_wrong_secret_is_refused_by_the_endpoint_and_not_retried(element: tuple[Element, str]) -> None:
    state, url = element
    with pytest.raises(AdapterAnswerMalformed, match="401"):
        HttpAdapter(url, "wrong-secret").activate(
            AdapterRequest(idempotency_key="k", service_id="s", action="a")
        )
    assert state.refused_signatures == 1 and state.effects == {}
    # and an unreachable endpoint is a retryable failure
    with pytest.raises(AdapterError):
        HttpAdapter("http://127.0.0.1:9/nothing", SECRET, timeout_seconds=2).activate(
            AdapterRequest(idempotency_key="k", service_id="s", action="a")
        )


def test_orders_through_the_http_adapter_entry_point(
    element: tuple[Element, str],
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, url = element
    monkeypatch.setenv("TURNUP_HTTP_ADAPTER_URL", url)
    monkeypatch.setenv("TURNUP_HTTP_ADAPTER_SECRET", SECRET)
    with session_factory() as s:
        offering = make_offering(
            s,
            "External Link",
            [{"adapter": "http", "action": "activate-access", "parameters": {"mbps": 300}}],
        )
    # Given the endpoint is busy for the first 2 calls (3 attempts allowed)
    state.fail_next = 2
    order = client.post(ORDERS, json=order_body(customer_id, offering))
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    done = wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if client.get(f"{ORDERS}/{order_id}").json()["state"] in ("completed", "held", "failed")
            else None
        ),
        60,
    )
    # Then the order completes and the element applied the activation once, under the plan item's key
    assert done["state"] == "completed", done
    plan = client.get(f"{ORDERS}/{order_id}/plan").json()
    key = f"{plan[0]['id']}:activate"
    assert list(state.effects) == [key]
    assert [r["key"] for r in state.requests] == [key, key, key]
    assert state.refused_signatures == 0
    service = client.get(f"{SERVICES}/{plan[0]['service']['id']}").json()
    assert (
        service["state"] == "active"
        and service["externalReference"]["networkRef"] == state.effects[key]["networkRef"]
    )
    # When the service is suspended through an order, the element gets a signed suspend call
    suspend = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id}],
            "productOrderItem": [
                {"id": "1", "action": "modify", "product": {"id": service["id"], "status": "suspended"}}
            ],
        },
    )
    assert suspend.status_code == 201, suspend.text
    wait_until(lambda: client.get(f"{ORDERS}/{suspend.json()['id']}").json()["state"] == "completed", 60)
    assert [r["path"] for r in state.requests][-1] == "/element/suspend"
    assert len(state.effects) == 2
