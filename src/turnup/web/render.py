"""Rendering the console's pages: the Jinja2 environment and HTML responses with the security headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape

from turnup import __version__
from turnup.api.csrf import csrf_token
from turnup.api.deps import SESSION_COOKIE
from turnup.security import has_permission

# Strict enough to stop injected scripts and framing; htmx needs nothing more (no eval, no inline code).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=ChainableUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals["version"] = __version__
env.globals["can"] = has_permission  # templates show only what the user may open


def request_csrf_token(request: Request) -> str:
    """The CSRF token of the request's web session ("" without one): forms and htmx send it back."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return csrf_token(cookie) if cookie else ""


env.globals["csrf_token"] = request_csrf_token


def _plain(value: Any) -> str:
    """JSON scalars as an operator reads them: true/false, not Python's True/False."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


env.filters["plain"] = _plain


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a template as an HTML response with the console's security and caching headers."""
    body = env.get_template(template).render(request=request, path=request.url.path, **context)
    response = HTMLResponse(body, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    # Pages show customer data: never keep them in a shared or back/forward cache after logout.
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
