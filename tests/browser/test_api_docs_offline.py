"""The API documentation pages work with no internet: Swagger UI (/docs) and ReDoc (/redoc) load every
asset from this server. The browser aborts every request to any other host (as an offline machine would)
and the test checks nothing was even tried, that the operations of the OpenAPI document are rendered, and
that the page logged no error."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser

REDOC_FOOTER_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def _offline(page: Any, live_server: LiveServer) -> list[str]:
    """Abort every request that does not go to the live server; return the list of those tried."""
    local = urlsplit(live_server.url).netloc
    tried: list[str] = []

    def route(r: Any) -> None:
        if urlsplit(r.request.url).netloc == local:
            r.continue_()
        else:
            tried.append(r.request.url)
            r.abort("internetdisconnected")

    page.route("**/*", route)
    return tried


def _operation_blocks(page: Any) -> int:
    """How many operation blocks Swagger UI shows: each operation once under each of its tags."""
    spec = page.request.get("/openapi.json").json()
    return sum(
        len(operation.get("tags") or ["default"])
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    )


def test_swagger_ui_renders_every_operation_with_no_network(page: Any, live_server: LiveServer) -> None:
    # Given a browser that cannot reach anything but this server
    tried = _offline(page, live_server)
    expected = _operation_blocks(page)
    assert expected > 100
    # When /docs is opened
    page.goto("/docs")
    # Then Swagger UI rendered every operation, the order creation among them, from local assets only
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Turnup")
    expect(page.locator(".opblock")).to_have_count(expected)
    expect(
        page.locator(
            ".opblock-post .opblock-summary-path",
            has_text="/tmf-api/productOrderingManagement/v4/productOrder",
        ).first
    ).to_be_visible()
    assert tried == []
    assert page.errors == []


def test_redoc_renders_with_no_network(page: Any, live_server: LiveServer) -> None:
    tried = _offline(page, live_server)
    page.goto("/redoc")
    expect(page.locator("h1", has_text="Turnup")).to_be_visible(timeout=60_000)  # a big spec: generous
    expect(
        page.get_by_text("/tmf-api/productOrderingManagement/v4/productOrder", exact=True).first
    ).to_be_attached()
    # ReDoc's only outside request is the "API docs by Redocly" footer logo (decorative; the page works)
    assert tried == [REDOC_FOOTER_LOGO]
    assert [e for e in page.errors if "ERR_INTERNET_DISCONNECTED" not in e] == []
