"""Browser fixtures: the app served by uvicorn in a thread, and Debian's chromium driven by Playwright.

Playwright cannot download its own browsers here; ``./run test`` installs Debian's ``chromium``
(``ensure_chromium``). The server uses the ``app`` fixture, so every browser test runs on SQLite and on
PostgreSQL like the rest of the suite. Both the server and the browser are stopped in teardown.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STARTUP_DEADLINE_S = 30.0  # generous: a deadline for a failing start, not a performance assertion


class LiveServer:
    """uvicorn serving ``app`` on a socket bound to a free 127.0.0.1 port (no bind race)."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name=f"uvicorn-{self.port}", daemon=True)
        self._ready = threading.Event()

    def start(self) -> None:
        self.thread.start()
        # Wait for uvicorn's "started" flag; the thread ending early means startup failed.
        waited = 0.0
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn exited during startup")
            if waited >= STARTUP_DEADLINE_S:
                raise RuntimeError("uvicorn did not start")
            self._ready.wait(0.05)
            waited += 0.05

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STARTUP_DEADLINE_S)
        self.sock.close()
        if self.thread.is_alive():  # pragma: no cover - would leave a thread behind: make it loud
            self.server.force_exit = True
            self.thread.join(timeout=STARTUP_DEADLINE_S)
            raise RuntimeError("uvicorn did not stop")


@pytest.fixture
def live_server(app: Any) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Debian chromium for the session (closed at the end)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: run `./run test` (installs Debian's chromium) or "
                    "`apt-get install -y chromium fonts-liberation`")
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
    pg.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}")
          if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.errors = errors  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()
