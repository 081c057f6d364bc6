"""The request guard (turnup.api.guard): body size limits before reading and before authentication."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Body
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support.live_server import LiveServer
from turnup.api.deps import public
from turnup.app import create_app
from turnup.kernel.settings import Settings, get_settings

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
NUMBER_IMPORT = "/tmf-api/resourcePoolManagement/v4/numberImport"
LIMIT = 1000
IMPORT_LIMIT = 5000
SOCKET_DEADLINE_S = 30.0  # a deadline for a hung server (the test then fails), not a performance assertion


class Probe:
    """A public route taking a JSON body that records every call: the handler ran iff ``calls`` grows."""

    def __init__(self) -> None:
        self.calls: list[Any] = []


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def guarded_app(db_url: str, engine: Engine, probe: Probe) -> Any:
    get_settings.cache_clear()
    settings = Settings(
        database_url=db_url, run_worker=False, max_body_bytes=LIMIT, max_import_body_bytes=IMPORT_LIMIT
    )
    app = create_app(settings, engine)

    @app.post("/probe")
    def probe_route(body: dict[str, Any] = Body(...), _: None = public()) -> dict[str, Any]:
        probe.calls.append(body)
        return {"received": len(json.dumps(body))}

    return app


@pytest.fixture
def anon(guarded_app: Any) -> Iterator[TestClient]:
    with TestClient(guarded_app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def server(guarded_app: Any) -> Iterator[LiveServer]:
    live = LiveServer(guarded_app)
    live.start()
    try:
        yield live
    finally:
        live.stop()


def _body_of(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    body = json.dumps({"pad": ""}).encode()
    return json.dumps({"pad": "x" * (size - len(body))}).encode()


def _raw(port: int, payload: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Send ``payload`` (request head and whatever body bytes) and read the response until the server
    closes the connection; the socket deadline turns a server still waiting for the body into a failure."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_DEADLINE_S) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


TOO_LARGE = {
    "@type": "Error",
    "code": "ERR413",
    "reason": "Payload too large",
    "message": f"the request body exceeds the limit of {LIMIT} bytes",
    "status": "413",
}


def test_body_over_the_limit_without_token_is_413_not_401(anon: TestClient, probe: Probe) -> None:
    response = anon.post(CUSTOMERS, content=_body_of(LIMIT + 1), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert response.headers["connection"] == "close"


def test_body_over_the_limit_never_reaches_the_handler(anon: TestClient, probe: Probe) -> None:
    response = anon.post("/probe", content=_body_of(LIMIT + 1), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json() == TOO_LARGE
    assert probe.calls == []


def test_body_at_the_limit_reaches_the_handler_and_authentication(anon: TestClient, probe: Probe) -> None:
    body = _body_of(LIMIT)
    response = anon.post("/probe", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json() == {"received": LIMIT}
    assert probe.calls == [json.loads(body)]
    # a body within the limit goes on to authentication as before
    assert anon.post(CUSTOMERS, json={"name": "Acme"}).status_code == 401


def test_authenticated_request_within_limit_works_and_over_limit_stores_nothing(
    anon: TestClient, admin_token: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    big = json.dumps({"name": "Acme", "segment": "x" * LIMIT}).encode()
    assert anon.post(CUSTOMERS, content=big, headers=auth).status_code == 413
    assert anon.get(CUSTOMERS, headers=auth).json() == []
    created = anon.post(CUSTOMERS, json={"name": "Acme"}, headers=auth)
    assert created.status_code == 201 and created.json()["name"] == "Acme"


def test_bulk_import_has_its_own_larger_limit(anon: TestClient) -> None:
    headers = {"Content-Type": "application/json"}
    # over the general limit but within the import limit: passes the guard, then authentication refuses it
    assert anon.post(NUMBER_IMPORT, content=_body_of(LIMIT + 1), headers=headers).status_code == 401
    over = anon.post(NUMBER_IMPORT, content=_body_of(IMPORT_LIMIT + 1), headers=headers)
    assert over.status_code == 413
    assert over.json()["message"] == f"the request body exceeds the limit of {IMPORT_LIMIT} bytes"


def test_announced_100_mb_body_is_refused_before_it_is_sent(server: LiveServer, probe: Probe) -> None:
    # Given a request announcing 100 MB of which only a few bytes are ever sent
    head = (
        b"POST /probe HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 104857600\r\n\r\n"
    )
    # When it is sent, then the server answers 413 without waiting for the body (else the read times out)
    status, headers, body = _raw(server.port, head + b'{"pad": "')
    assert status == 413 and body == TOO_LARGE
    assert headers["connection"] == "close"
    assert probe.calls == []


def test_announced_100_mb_body_without_token_is_413_over_http(server: LiveServer) -> None:
    head = (
        f"POST {CUSTOMERS} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Content-Length: 104857600\r\n\r\n"
    ).encode()
    status, _, body = _raw(server.port, head + b'{"name": "')
    assert status == 413 and body == TOO_LARGE


CHUNKED_HEAD = (
    b"POST /probe HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_chunked_body_is_cut_off_once_it_passes_the_limit(server: LiveServer, probe: Probe) -> None:
    # Given a chunked request (no Content-Length) whose chunks pass the limit and that never ends
    head = CHUNKED_HEAD + b"\r\n"
    chunks = b"".join(_chunk(b'{"pad": "' + b"x" * 600) for _ in range(2))  # 1218 bytes > LIMIT
    # When it is sent (without the final zero-length chunk), then 413 comes back and the handler never ran
    status, _, body = _raw(server.port, head + chunks)
    assert status == 413 and body == TOO_LARGE
    assert probe.calls == []


def test_chunked_body_within_the_limit_works(server: LiveServer, probe: Probe) -> None:
    head = CHUNKED_HEAD + b"Connection: close\r\n\r\n"
    payload = _body_of(LIMIT)
    status, _, body = _raw(server.port, head + _chunk(payload[:500]) + _chunk(payload[500:]) + b"0\r\n\r\n")
    assert status == 200 and body == {"received": LIMIT}
    assert probe.calls == [json.loads(payload)]


def test_openapi_and_readme_document_the_limits(anon: TestClient) -> None:
    description = anon.get("/openapi.json").json()["info"]["description"]
    assert f"limited to {LIMIT} bytes ({IMPORT_LIMIT} bytes for bulk imports" in description
    assert "413" in description
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "| `TURNUP_MAX_BODY_BYTES` | `4194304` (4 MiB) |" in readme
    assert "| `TURNUP_MAX_IMPORT_BODY_BYTES` | `67108864` (64 MiB) |" in readme
    assert Settings().max_body_bytes == 4194304 and Settings().max_import_body_bytes == 67108864
