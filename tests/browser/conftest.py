"""Browser fixtures: the app served by uvicorn in a thread, and Debian's chromium driven by Playwright.

Playwright cannot download its own browsers here; ``./run test`` installs Debian's ``chromium``
(``ensure_chromium``). The server uses the ``app`` fixture, so every browser test runs on SQLite and on
PostgreSQL like the rest of the suite. Both the server and the browser are stopped in teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.live_server import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def live_server(app: Any) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """One headless Debian chromium for the browser tests, closed when they are done: Playwright's sync API
    keeps an event loop running in the main thread, which DBOS (used by later tests) refuses to share."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} missing: run `./run test` (installs Debian's chromium) or "
            "`apt-get install -y chromium fonts-liberation`"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser context (no cookies) per test, with console errors collected in ``page.errors``."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on(
        "console",
        lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None,
    )
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.errors = errors  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()
