"""``Idempotency-Key`` on every POST: a client that retries a POST with the same key gets the first
response again (status, headers and body, marked ``Idempotent-Replayed: true``) instead of a second effect.

- The key is scoped to the authenticated user (token or web session): two users may use the same key.
- Same key, different request (method, path, query or body bytes) → 409.
- Same key while the first request still runs → 409 "in progress" (the key is claimed in a transaction of
  its own before the request runs; the unique index decides between two concurrent claims).
- A response with a server error (5xx) is not kept: the key may be retried.
- Secrets shown once are not kept: a route lists the top-level JSON fields of its answer that must not be
  stored in ``request.state.idempotency_redact`` (e.g. the hub's ``secret``); the stored copy, and so the
  replay, lacks them.
- Kept ``TURNUP_IDEMPOTENCY_KEY_TTL_HOURS`` (default 24), then deleted by the housekeeping sweep
  ``idempotency``. Storage: ``turnup.kernel.idempotency``.

A request without the header, or whose credentials do not resolve, passes through untouched (the route
answers 401/403 itself). Implemented once as ASGI middleware so it applies to every POST route.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnup.api.deps import resolve_principal
from turnup.api.errors import tmf_error
from turnup.kernel import idempotency
from turnup.kernel.errors import TurnupError

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 255

OPENAPI_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes the POST safe to retry: the first response for this key (per user) is stored for 24 hours "
        "and replayed for a repeat with the same body; the same key with another body, or while the first "
        "request still runs, is answered 409."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY},
}


def _principal(factory: sessionmaker[Session], request: Request) -> str | None:
    with factory() as session:
        try:
            return resolve_principal(request, session).user_id
        except TurnupError:
            return None


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = Headers(scope=scope).get(HEADER.lower())
        if key is None:
            await self.app(scope, receive, send)
            return
        key = key.strip()
        if not key or len(key) > MAX_KEY:
            await tmf_error(400, f"{HEADER}: must be 1 to {MAX_KEY} characters", "Invalid input")(
                scope, receive, send
            )
            return
        state = scope["app"].state
        factory: sessionmaker[Session] = state.sessionmaker
        principal = await run_in_threadpool(_principal, factory, Request(scope))
        if principal is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        ttl = timedelta(hours=state.settings.idempotency_key_ttl_hours)
        claim = await run_in_threadpool(
            _with_session, factory, idempotency.claim, principal, key, _fingerprint(scope, body), ttl
        )
        if claim.outcome == "mismatch":
            response = tmf_error(
                409, f"{HEADER}: key {key!r} was already used with another request", "Idempotency key reused"
            )
            await response(scope, receive, send)
            return
        if claim.outcome == "in_progress":
            response = tmf_error(
                409,
                f"{HEADER}: a request with key {key!r} is still in progress; retry later",
                "Request in progress",
            )
            await response(scope, receive, send)
            return
        if claim.outcome == "replay":
            await _replay(claim, send)
            return
        assert claim.record_id is not None
        await self._run(scope, _replaying(body, receive), send, factory, claim.record_id)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, factory: sessionmaker[Session], record_id: str
    ) -> None:
        status = 500
        headers: list[list[str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await run_in_threadpool(_with_session, factory, idempotency.release, record_id)
            raise
        if status >= 500:
            await run_in_threadpool(_with_session, factory, idempotency.release, record_id)
        else:
            body = b"".join(chunks)
            redact = scope.get("state", {}).get("idempotency_redact")
            if redact:
                headers, body = _redacted(headers, body, tuple(redact))
            await run_in_threadpool(
                _with_session, factory, idempotency.finish, record_id, status, headers, body
            )


def _redacted(
    headers: list[list[str]], body: bytes, fields: tuple[str, ...]
) -> tuple[list[list[str]], bytes]:
    """The response to store without the given top-level JSON fields (and with a matching length)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return headers, body
    if isinstance(doc, dict):
        for field in fields:
            doc.pop(field, None)
    kept = json.dumps(doc, separators=(",", ":")).encode()
    fixed = [[k, str(len(kept)) if k.lower() == "content-length" else v] for k, v in headers]
    return fixed, kept


def _with_session(factory: sessionmaker[Session], fn: Any, *args: Any) -> Any:
    with factory() as session:
        return fn(session, *args)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _replay(claim: idempotency.Claim, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in claim.headers or []]
    headers.append((REPLAYED.lower().encode(), b"true"))
    await send({"type": "http.response.start", "status": claim.status_code or 200, "headers": headers})
    await send({"type": "http.response.body", "body": claim.body or b"", "more_body": False})


def install(app: FastAPI) -> None:
    """Apply the middleware to every POST and declare the header on every POST operation of the OpenAPI."""
    app.add_middleware(IdempotencyMiddleware)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for item in schema.get("paths", {}).values():
            post = item.get("post")
            if post is not None:
                parameters = post.setdefault("parameters", [])
                if not any(p.get("name") == HEADER and p.get("in") == "header" for p in parameters):
                    parameters.append(dict(OPENAPI_PARAMETER))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
