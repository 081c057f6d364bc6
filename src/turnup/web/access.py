"""Access control for HTML pages.

Web routes declare their permission exactly like API routes: ``page("<area>:<action>")`` returns a
dependency recorded with ``declare_permission`` exactly like ``turnup.api.deps.requires`` (so the
route-table test sees exactly one declaration), and resolves the caller the same way (bearer token, then
the session cookie). The difference is how failure looks: an anonymous browser is redirected to ``/login``
(htmx requests get an ``HX-Redirect``), and a logged-in user without the permission gets an HTML 403 page.
The API's TMF JSON 401/403 for ``/tmf-api`` paths are untouched: those routes use ``requires``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from turnup.api.deps import declare_permission, get_session, resolve_principal
from turnup.kernel.errors import Unauthorized
from turnup.security import Principal, has_permission
from turnup.web.render import render


class LoginRequired(Exception):
    """An HTML page was requested without a valid session."""


class PageForbidden(Exception):
    """A logged-in user lacks the permission a page declares."""

    def __init__(self, principal: Principal, permission: str) -> None:
        super().__init__(permission)
        self.principal = principal
        self.permission = permission


def page(permission: str) -> Any:
    """Declare the permission an HTML page (or htmx fragment) needs; the web twin of ``requires``."""

    def check_page_permission(request: Request, session: Session = Depends(get_session)) -> Principal:
        try:
            principal = resolve_principal(request, session)
        except Unauthorized:
            raise LoginRequired() from None
        if not has_permission(principal, permission):
            raise PageForbidden(principal, permission)
        request.state.principal = principal
        return principal

    declare_permission(check_page_permission, permission)
    return Depends(check_page_permission)


def safe_next(target: str | None) -> str:
    """Only local absolute paths may be a post-login destination (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def login_redirect(request: Request) -> Response:
    """Send the browser to the login page, remembering where it wanted to go."""
    if is_htmx(request):
        # A fragment request: tell htmx to navigate the whole page (a 303 would be swapped into the target).
        current = urlsplit(request.headers.get("hx-current-url", ""))
        target = safe_next(current.path + (f"?{current.query}" if current.query else ""))
        return Response(status_code=401, headers={"HX-Redirect": f"/login?next={quote(target, safe='/')}"})
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(safe_next(wanted), safe='/')}", status_code=303)


def install_web_error_handlers(app: FastAPI) -> None:
    """Turn the two page-access exceptions into a redirect and an HTML 403 (API errors unchanged)."""

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        return login_redirect(request)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> HTMLResponse:
        return render(
            request,
            "error.html",
            {
                "user": exc.principal,
                "status": 403,
                "title": "Not allowed",
                "message": f"Your roles do not grant {exc.permission!r}.",
            },
            status_code=403,
        )
