"""A real HTTP server for the app under test: uvicorn in a thread on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
import threading
from typing import Any

import uvicorn

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
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name=f"uvicorn-{self.port}", daemon=True
        )
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
