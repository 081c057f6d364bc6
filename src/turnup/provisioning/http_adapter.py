"""The HTTP provisioning adapter: each operation is a signed POST to an external REST endpoint.

Configuration (environment, or ``AdapterContext.settings`` keys without the prefix, lower case):
``TURNUP_HTTP_ADAPTER_URL`` (base URL; the operation is appended: ``<url>/activate``),
``TURNUP_HTTP_ADAPTER_SECRET`` (shared HMAC secret, required), ``TURNUP_HTTP_ADAPTER_TIMEOUT_SECONDS``
(socket timeout, default 10).

Request: ``POST <url>/<operation>``, JSON body ``{"operation", "idempotencyKey", "serviceId", "action",
"parameters", "orderId"}``, headers

- ``Idempotency-Key``: the step's key (``<plan item>:<operation>``); the endpoint must apply one effect per
  key and answer a repeated key with the first answer;
- ``X-Turnup-Timestamp``: Unix seconds when signed;
- ``X-Turnup-Signature``: ``sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body bytes)>``.

Answers: 2xx with ``{"status": "done", "networkRef": …}`` (checked by ``check_result``); 5xx, timeouts and
connection errors are ``AdapterError`` (retried); other 4xx and non-JSON bodies are ``AdapterAnswerMalformed``
(not retried: fallout).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from turnup.provisioning.adapters import AdapterAnswerMalformed, AdapterContext, AdapterError, AdapterRequest

SIGNATURE_HEADER = "X-Turnup-Signature"
TIMESTAMP_HEADER = "X-Turnup-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    max_age_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """For endpoints (and tests): signature matches and the timestamp is recent."""
    try:
        age = abs((now if now is not None else time.time()) - float(timestamp))
    except ValueError:
        return False
    return age <= max_age_seconds and hmac.compare_digest(sign(secret, timestamp, body), signature)


class HttpAdapter:
    name = "http"

    def __init__(self, url: str, secret: str, timeout_seconds: float = 10.0) -> None:
        if not url:
            raise ValueError("http adapter: TURNUP_HTTP_ADAPTER_URL is not set")
        if not secret:
            raise ValueError("http adapter: TURNUP_HTTP_ADAPTER_SECRET is not set")
        self.url = url.rstrip("/")
        self.secret = secret
        self.timeout_seconds = timeout_seconds

    def activate(self, request: AdapterRequest) -> dict[str, Any]:
        return self._post("activate", request)

    def modify(self, request: AdapterRequest) -> dict[str, Any]:
        return self._post("modify", request)

    def suspend(self, request: AdapterRequest) -> dict[str, Any]:
        return self._post("suspend", request)

    def resume(self, request: AdapterRequest) -> dict[str, Any]:
        return self._post("resume", request)

    def deactivate(self, request: AdapterRequest) -> dict[str, Any]:
        return self._post("deactivate", request)

    def status(self, request: AdapterRequest) -> dict[str, Any]:
        return self._post("status", request)

    def _post(self, operation: str, request: AdapterRequest) -> dict[str, Any]:
        body = json.dumps(
            {
                "operation": operation,
                "idempotencyKey": request.idempotency_key,
                "serviceId": request.service_id,
                "action": request.action,
                "parameters": request.parameters,
                "orderId": request.order_id,
            },
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        ).encode()
        timestamp = str(int(time.time()))
        http_request = urllib.request.Request(
            f"{self.url}/{operation}",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: request.idempotency_key,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            },
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout_seconds) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            if exc.code >= 500 or exc.code in (408, 425, 429):
                raise AdapterError(
                    f"http adapter {operation}: endpoint answered {exc.code}: {detail}"
                ) from None
            raise AdapterAnswerMalformed(
                f"http adapter {operation}: endpoint refused the request with {exc.code}: {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise AdapterError(f"http adapter {operation}: {exc}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise AdapterAnswerMalformed(
                f"http adapter {operation}: answer is not JSON: {raw[:200]!r}"
            ) from None
        result: dict[str, Any] = answer  # whatever the JSON is: check_result validates its shape
        return result


def factory(context: AdapterContext) -> HttpAdapter:
    """Entry point ``http``."""

    def setting(name: str, default: str = "") -> str:
        return str(
            context.settings.get(name) or os.environ.get(f"TURNUP_HTTP_ADAPTER_{name.upper()}") or default
        )

    return HttpAdapter(setting("url"), setting("secret"), float(setting("timeout_seconds", "10")))
