"""CSRF protection for requests the web session cookie authenticates: a pure ASGI middleware.

A request is *cookie-authenticated* when it carries the ``turnup_session`` cookie and no ``Authorization``
header (``turnup.api.deps.resolve_principal`` uses the header alone whenever one is sent, so bearer-token
clients are never affected). Such a request with an unsafe method (POST, PUT, PATCH, DELETE), on any path
(API or console), must carry both:

- **an origin of this server**: the ``Origin`` header, or when a browser sent none, the origin of the
  ``Referer``; it must equal the origin the request was addressed to (scheme and ``Host``) or the configured
  ``TURNUP_PUBLIC_URL``. ``Origin: null`` (sandboxed frames, some redirects) is refused.
- **the CSRF token bound to the session**: ``HMAC-SHA256(key=<session cookie>, "turnup-csrf-v1")`` in hex,
  sent as the ``X-CSRF-Token`` header (htmx: ``hx-headers`` on the console's ``<body>``) or as the form field
  ``csrf_token`` (the console's ``<form method="post">``). Only someone who can read the cookie or a page of
  this site can know it; it changes whenever the session does, and nothing extra is stored.

``POST /login`` and ``POST /portal/invitation`` are exempt: they never act with the authority of the session
cookie (they ignore it and start a new session from a password or an invitation token); the login form keeps
its own Origin check against login CSRF.

Anything else is answered 403 with a TMF ``Error`` before routing, before authentication and before any
handler runs, so a refused request changes nothing. Requests without the cookie pass through (they are
anonymous or token-authenticated and answered by the routes as before).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnup.api.deps import SESSION_COOKIE
from turnup.api.errors import tmf_error

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPE = "application/x-www-form-urlencoded"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Public routes that ignore the session cookie (they sign a person in): no session authority to abuse.
EXEMPT_PATHS = frozenset({"/login", "/portal/invitation"})


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a web session: an HMAC keyed with the session cookie's value."""
    return hmac.new(session_secret.encode(), b"turnup-csrf-v1", hashlib.sha256).hexdigest()


def normalise_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None when ``value`` is not one."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    shown_port = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def own_origins(scheme: str, host_header: str | None, public_url: str = "") -> set[str]:
    """The origins this server answers as: the one the request was addressed to, and the public URL."""
    found: set[str] = set()
    if host_header:
        addressed = normalise_origin(f"{scheme}://{host_header}")
        if addressed is not None:
            found.add(addressed)
    if public_url:
        configured = normalise_origin(public_url)
        if configured is not None:
            found.add(configured)
    return found


def csrf_problem(
    *,
    method: str,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    allowed_origins: Iterable[str],
    form_token: str | None = None,
) -> str | None:
    """Why this request must be refused as a possible cross-site request forgery, or None to let it pass.

    ``headers`` keys are lower case; ``form_token`` is the ``csrf_token`` form field, when the body is a form.
    """
    if method.upper() not in UNSAFE_METHODS:
        return None
    session_secret = cookies.get(SESSION_COOKIE)
    if not session_secret or "authorization" in headers:
        return None
    origin_header = headers.get("origin")
    if origin_header is not None:
        source = normalise_origin(origin_header)
        if source is None:
            return f"Origin {origin_header.strip()[:100]!r} is not an origin of this server"
    else:
        referer = headers.get("referer")
        if not referer:
            return "a request authenticated by the session cookie must send Origin (or Referer)"
        source = normalise_origin(referer)
    allowed = set(allowed_origins)
    if source is None or source not in allowed:
        shown = source or (origin_header if origin_header is not None else headers.get("referer", ""))
        return f"cross-origin request refused: {shown[:100]!r} is not an origin of this server"
    sent = headers.get(CSRF_HEADER.lower())
    if sent is None:
        sent = form_token
    if not sent:
        return f"missing CSRF token: send the {CSRF_HEADER} header or the {CSRF_FIELD} form field"
    if not hmac.compare_digest(sent.strip().encode(), csrf_token(session_secret).encode()):
        return "CSRF token does not match the session"
    return None


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class CsrfGuard:
    """Refuses unsafe cookie-authenticated requests without this server's origin and the session's token."""

    def __init__(self, app: ASGIApp, *, public_url: str = "") -> None:
        self.app = app
        self.public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE_METHODS
            or scope.get("path", "") in EXEMPT_PATHS
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = cookie_parser(headers.get("cookie", ""))
        if not cookies.get(SESSION_COOKIE) or "authorization" in headers:
            await self.app(scope, receive, send)
            return
        plain = {key.lower(): value for key, value in headers.items()}
        form_token: str | None = None
        if CSRF_HEADER.lower() not in plain and _is_form(plain.get("content-type", "")):
            body, messages = await _read_body(receive)
            form_token = _form_field(body, CSRF_FIELD)
            receive = _replaying(messages, receive)
        allowed = own_origins(scope.get("scheme", "http"), plain.get("host"), self.public_url)
        problem = csrf_problem(
            method=scope["method"],
            headers=plain,
            cookies=cookies,
            allowed_origins=allowed,
            form_token=form_token,
        )
        if problem is not None:
            await tmf_error(403, problem, "Forbidden", code="CSRF")(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _is_form(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == FORM_TYPE


def _form_field(body: bytes, name: str) -> str | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key == name:
            return value
    return None
