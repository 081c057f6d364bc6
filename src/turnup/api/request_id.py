"""Request ids: a pure ASGI middleware that names every HTTP request.

The id is the caller's ``X-Request-ID`` when it is 1–64 characters of letters, digits and ``._:@/+=-``
(starting with a letter or digit); otherwise (absent, too long, other characters) a fresh one is made (32 hex
digits). It is put where ``turnup.kernel.audit.record`` reads it, so every audit entry written while serving
the request carries it, and it is echoed in the response's ``X-Request-ID`` header.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnup.kernel import audit

HEADER = "x-request-id"
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,63}")


def accepted(value: str | None) -> str | None:
    """The caller's id if it is acceptable as is, else None."""
    return value if value is not None and _VALID.fullmatch(value) else None


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for key, value in scope.get("headers", ()):
            if key == HEADER.encode():
                given = value.decode("latin-1")
                break
        request_id = accepted(given) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[HEADER] = request_id
            await send(message)

        token = audit.use_request_id(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            audit.reset_request_id(token)
