"""Response headers (issue 15, item 5): API responses are ``Cache-Control: no-store`` and ``nosniff`` (the
finding: they carried neither), every response is ``nosniff``, and no page may be framed. SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"


def _api_headers(response: Any) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_api_json_responses_are_no_store_and_nosniff(client: TestClient) -> None:
    created = client.post(CUSTOMERS, json={"name": "Acme", "country": "GB", "segment": "smb"})
    assert created.status_code == 201
    for response in (
        created,
        client.get(CUSTOMERS),
        client.get(f"{CUSTOMERS}/{created.json()['id']}"),
        client.patch(f"{CUSTOMERS}/{created.json()['id']}", json={"name": "Acme Ltd"}),
        client.get("/openapi.json"),
        client.get("/health"),
    ):
        assert response.status_code in (200, 201)
        _api_headers(response)


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda c, a: c.get(f"{CUSTOMERS}/nope"), 404),
        (lambda c, a: a.get(CUSTOMERS), 401),
        (lambda c, a: c.post(CUSTOMERS, json={"colour": "red"}), 400),
        (lambda c, a: c.get(CUSTOMERS, params={"name": "\x07"}), 400),  # refused by the request guard
        (lambda c, a: c.post(CUSTOMERS, content=b"x" * (4 * 1024 * 1024 + 1)), 413),  # the guard again
        (
            lambda c, a: a.post(CUSTOMERS, cookies={"turnup_session": "x"}, headers={"Origin": "http://e"}),
            403,
        ),
    ],
)
def test_error_responses_carry_the_same_headers(
    client: TestClient, anon_client: TestClient, call: Any, status: int
) -> None:
    response = call(client, anon_client)
    assert response.status_code == status
    assert response.json()["@type"] == "Error"
    _api_headers(response)


def test_console_pages_cannot_be_framed_and_static_assets_stay_cacheable(anon_client: TestClient) -> None:
    page = anon_client.get("/login")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]  # the console's own, fuller CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    asset = anon_client.get("/static/turnup.css")
    assert asset.status_code == 200
    assert asset.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in asset.headers.get("cache-control", "")
