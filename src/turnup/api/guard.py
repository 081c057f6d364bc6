"""The request guard: a pure ASGI middleware that runs before routing, body parsing and authentication.

- **Body size.** A request whose ``Content-Length`` exceeds the limit is answered at once with 413 (TMF
  ``Error``), its body never read; a body without ``Content-Length`` (chunked) is counted as it streams
  and cut off with 413 as soon as it passes the limit, before the route sees it. Bulk imports (paths whose
  last segment ends in ``Import``, e.g. ``…/numberImport``, ``…/approvalRuleImport``) have their own,
  larger limit. Both are settings: ``TURNUP_MAX_BODY_BYTES`` and ``TURNUP_MAX_IMPORT_BODY_BYTES``.
- **Query parameters.** A query parameter (name or value) holding a C0 control character other than tab, LF
  and CR is a 400 naming the parameter, on every route, so filters behave the same on SQLite and PostgreSQL.

Being pure ASGI (not ``BaseHTTPMiddleware``), it never buffers a body: it only counts the chunks it passes on.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnup.api.errors import tmf_error
from turnup.kernel.text import control_character

IMPORT_SUFFIX = "Import"


class BodyTooLarge(Exception):
    """Raised into the application from ``receive`` once a streamed body passes the limit (413 sent)."""


def is_import_path(path: str) -> bool:
    """A bulk import route: its last path segment ends in ``Import`` (``…/numberImport``)."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return len(last) > len(IMPORT_SUFFIX) and last.endswith(IMPORT_SUFFIX)


def query_problem(query_string: bytes) -> str | None:
    """A message naming the first query parameter that holds a forbidden control character, or None."""
    if not query_string:
        return None
    text = query_string.decode("latin-1")
    for name, value in parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"):
        code = control_character(name) or control_character(value)
        if code is not None:
            shown = name if control_character(name) is None else repr(name)
            return (
                f"query parameter {shown}: contains the control character {code}; "
                "only tab, line feed and carriage return are allowed"
            )
    return None


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _no_body() -> Message:  # pragma: no cover - a JSONResponse never reads the request
    return {"type": "http.disconnect"}


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_import_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_import_body_bytes = max_import_body_bytes

    def limit_for(self, path: str) -> int:
        return self.max_import_body_bytes if is_import_path(path) else self.max_body_bytes

    async def _too_large(self, scope: Scope, send: Send, limit: int) -> None:
        message = f"the request body exceeds the limit of {limit} bytes"
        # Connection: close - the unread rest of the body must not be taken for the next request.
        response = tmf_error(413, message, "Payload too large", headers={"Connection": "close"})
        await response(scope, _no_body, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = query_problem(scope.get("query_string", b""))
        if problem is not None:
            await tmf_error(400, problem, "Invalid input")(scope, _no_body, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._too_large(scope, send, limit)
            return

        state: dict[str, Any] = {"received": 0, "rejected": False, "started": False}

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not state["rejected"]:
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["rejected"] = True
                    if not state["started"]:
                        await self._too_large(scope, send, limit)
                    raise BodyTooLarge(f"request body over {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            if state["rejected"]:
                return  # the 413 has been sent; whatever the application answers to the cut body is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if not state["rejected"]:  # pragma: no cover - only counted_receive raises it, after rejecting
                raise
