"""A real HTTP subscriber for hub tests: a stdlib server on 127.0.0.1 in a thread, with memory.

It records every request it receives, answers 503 to a configurable number of initial requests (per
eventId or globally, or forever), remembers the eventIds it accepted (2xx, in order, duplicates kept so
tests can prove there were none), and can be stopped and started again on the same port to simulate an
outage (connection refused while stopped).

It verifies the webhook signature the way a receiver should (``turnup.kernel.webhooks.verify``) against the
secrets it was told to ``trust`` (the ``secret`` of the hub subscription), recording the result on each
request; with ``require_signature`` it answers 401 to a request whose signature does not verify.

    with FakeSubscriber(fail_first_per_event=3) as sub:
        ... register sub.url as a hub callback, run the worker ...
        assert sub.accepted == [...]
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from turnup.kernel import clock, webhooks
from turnup.kernel.settings import Settings


def loopback_settings(db_url: str) -> Settings:
    """Test settings that let hub callbacks reach this subscriber on 127.0.0.1 (loopback is refused
    otherwise), without the in-process delivery worker."""
    return Settings(database_url=db_url, run_worker=False, webhook_allowed_networks="127.0.0.1/32")


@dataclass(frozen=True)
class Received:
    """One request as the subscriber saw it, and what it answered."""

    path: str
    event_id: str | None
    event_type: str | None
    attempt: int | None
    header_event_id: str | None
    body: dict[str, Any] | None
    status: int
    timestamp: str | None = None
    signature: str | None = None
    signature_ok: bool | None = None  # None: no secret trusted, nothing to verify against


class FakeSubscriber:
    def __init__(
        self,
        *,
        fail_first_per_event: int = 0,
        fail_first_global: int = 0,
        fail_status: int = 503,
        delay_seconds: float = 0.0,
        port: int = 0,
        require_signature: bool = False,
        fail_body: bytes = b"temporarily unavailable",
    ) -> None:
        self.require_signature = require_signature
        self.fail_body = fail_body
        self.secrets: list[str] = []
        self.delay_seconds = delay_seconds  # sleep before answering (to provoke client timeouts)
        self.fail_first_per_event = fail_first_per_event
        self.fail_first_global = fail_first_global
        self.fail_status = fail_status
        self.fail_always = False
        self._per_event_overrides: dict[str, int] = {}
        self._lock = threading.Lock()
        self._seen_per_event: Counter[str] = Counter()
        self._global_failures_left = fail_first_global
        self.received: list[Received] = []
        self.accepted: list[str] = []  # eventIds answered with 2xx, in order (duplicates kept)
        self._port = port or _free_port()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration --------------------------------------------------------------------------------

    def fail_event(self, event_id: str, times: int) -> None:
        """Answer ``fail_status`` to the first ``times`` requests for this eventId."""
        with self._lock:
            self._per_event_overrides[event_id] = times

    def fail_next(self, times: int) -> None:
        """Answer ``fail_status`` to the next ``times`` requests, whatever their eventId."""
        with self._lock:
            self._global_failures_left = times

    def trust(self, secret: str) -> None:
        """Accept deliveries signed with ``secret`` (a hub subscription's secret)."""
        with self._lock:
            self.secrets.append(secret)

    def signature_ok(self, timestamp: str | None, signature: str | None, raw: bytes) -> bool | None:
        with self._lock:
            trusted = list(self.secrets)
        if not trusted:
            return None
        if timestamp is None or signature is None:
            return False
        now = int(clock.now().timestamp())
        return any(webhooks.verify(secret, timestamp, raw, signature, now=now) for secret in trusted)

    # -- state ----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/listener"

    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def accepted_ids(self) -> set[str]:
        with self._lock:
            return set(self.accepted)

    def requests_for(self, event_id: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.event_id == event_id]

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> FakeSubscriber:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-subscriber-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: connections to the port are refused until ``start``."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> FakeSubscriber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling -----------------------------------------------------------------------------

    def _decide(self, event_id: str | None) -> int:
        with self._lock:
            key = event_id or ""
            self._seen_per_event[key] += 1
            seen = self._seen_per_event[key]
            limit = self._per_event_overrides.get(key, self.fail_first_per_event)
            if self.fail_always:
                return self.fail_status
            if self._global_failures_left > 0:
                self._global_failures_left -= 1
                return self.fail_status
            if seen <= limit:
                return self.fail_status
            return 200

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)
            if 200 <= received.status < 300 and received.event_id:
                self.accepted.append(received.event_id)


def _handler_for(sub: FakeSubscriber) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: stopping really closes everything

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            event_id = body.get("eventId") if isinstance(body, dict) else None
            attempt_header = self.headers.get("X-Turnup-Delivery-Attempt")
            timestamp = self.headers.get(webhooks.TIMESTAMP_HEADER)
            signature = self.headers.get(webhooks.SIGNATURE_HEADER)
            signature_ok = sub.signature_ok(timestamp, signature, raw)
            refused = sub.require_signature and not signature_ok
            status = 401 if refused else sub._decide(event_id)
            if sub.delay_seconds:
                time.sleep(sub.delay_seconds)
            sub._record(
                Received(
                    path=self.path,
                    event_id=event_id,
                    event_type=body.get("eventType") if isinstance(body, dict) else None,
                    attempt=int(attempt_header) if attempt_header and attempt_header.isdigit() else None,
                    header_event_id=self.headers.get("X-Turnup-Event-Id"),
                    body=body,
                    status=status,
                    timestamp=timestamp,
                    signature=signature,
                    signature_ok=signature_ok,
                )
            )
            payload = b"ok" if status < 300 else b"bad signature" if status == 401 else sub.fail_body
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (timeout) before we answered
                pass

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
