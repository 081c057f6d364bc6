"""The web console: server-rendered pages (Jinja2) with htmx fragments; thin adapter over the services.

Every route declares one permission: ``page(...)`` for pages and fragments (anonymous -> /login), or
``public()`` for the login form and logout. Fragment endpoints (``/_...``) return HTML partials for htmx
and set ``HX-Replace-Url`` so the address bar (and a reload) keeps the current filter.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from turnup import catalog, onboarding
from turnup.accounts.orm import Contact, Customer, Site
from turnup.api.deps import SESSION_COOKIE, get_session, public
from turnup.kernel.errors import NotFound, TurnupError
from turnup.kernel.text import CleanStr
from turnup.security import Principal, has_permission
from turnup.security.services import SESSION_TTL, LoginPolicy, LoginRefused, login, logout
from turnup.web.access import page, safe_next
from turnup.web.render import render

PAGE_SIZE = 50

router = APIRouter(tags=["web"], include_in_schema=False)


def _page_url(path: str, **params: str | None) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(kept)}" if kept else path


def _like(text: str) -> str:
    """A case-insensitive LIKE pattern for ``text`` with the wildcards in it taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _same_origin(request: Request) -> bool:
    """Reject cross-site form posts (defence in depth on top of the SameSite=Lax cookie)."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or an old one: SameSite still applies
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


# --- login / logout -------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/", _: None = public()) -> HTMLResponse:
    return render(
        request, "login.html", {"user": None, "next": safe_next(next), "error": None, "username": ""}
    )


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    username: Annotated[CleanStr, Form()] = "",
    password: Annotated[CleanStr, Form()] = "",
    code: Annotated[CleanStr, Form()] = "",
    next: Annotated[CleanStr, Form()] = "/",
    session: Session = Depends(get_session),
    _: None = public(),
) -> Response:
    target = safe_next(next)
    if not _same_origin(request):
        return render(
            request,
            "login.html",
            {
                "user": None,
                "next": target,
                "username": username,
                "error": "The login form must be sent from this site.",
            },
            status_code=403,
        )
    try:
        secret = _login(request, session, username.strip(), password, code.strip() or None)
    except LoginRefused as exc:
        error = "Too many failed logins: try again later." if exc.locked else "Wrong username or password."
        context = {"user": None, "next": target, "username": username, "error": error}
        return render(request, "login.html", context, status_code=429 if exc.locked else 401)
    return _signed_in(request, secret, target)


def _login(request: Request, session: Session, username: str, password: str, code: str | None = None) -> str:
    """Log in from this request: its source address is counted, the session it held (if any) ends."""
    return login(
        session,
        username,
        password,
        source=request.client.host if request.client else "unknown",
        code=code,
        previous_secret=request.cookies.get(SESSION_COOKIE),
        policy=LoginPolicy.from_settings(request.app.state.settings),
    )


def _signed_in(request: Request, secret: str, target: str) -> Response:
    """Redirect to ``target`` with the web session cookie set."""
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https" or request.app.state.settings.public_url.startswith("https:")
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    return response


@router.post("/logout")
def logout_submit(request: Request, session: Session = Depends(get_session), _: None = public()) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and _same_origin(request):
        logout(session, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


# --- home -----------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, session: Session = Depends(get_session), user: Principal = page("console:read")
) -> HTMLResponse:
    counts = {
        "customers": session.scalar(select(func.count()).select_from(Customer)) or 0,
        "activeCustomers": session.scalar(
            select(func.count()).select_from(Customer).where(Customer.status == "active")
        )
        or 0,
        "offerings": _offering_count(session) if has_permission(user, "catalog:read") else None,
    }
    return render(request, "home.html", {"user": user, "counts": counts})


# --- customers ------------------------------------------------------------------------------------------


def _customers(session: Session, q: str | None) -> dict[str, Any]:
    sites = select(func.count()).select_from(Site).where(Site.customer_id == Customer.id).scalar_subquery()
    contacts = (
        select(func.count()).select_from(Contact).where(Contact.customer_id == Customer.id).scalar_subquery()
    )
    stmt = select(Customer, sites.label("sites"), contacts.label("contacts"))
    count = select(func.count()).select_from(Customer)
    if q and q.strip():
        pattern = _like(q.strip())
        match = or_(
            *(
                func.lower(col).like(pattern, escape="\\")
                for col in (Customer.name, Customer.email, Customer.segment, Customer.country)
            )
        )
        stmt, count = stmt.where(match), count.where(match)
    rows = session.execute(stmt.order_by(Customer.name, Customer.id).limit(PAGE_SIZE)).all()
    return {
        "customers": [{"customer": r[0], "sites": r[1], "contacts": r[2]} for r in rows],
        "total": session.scalar(count) or 0,
        "q": (q or "").strip(),
    }


@router.get("/customers", response_class=HTMLResponse)
def customers_page(
    request: Request,
    q: str | None = None,
    session: Session = Depends(get_session),
    user: Principal = page("accounts:read"),
) -> HTMLResponse:
    return render(request, "customers.html", {"user": user, **_customers(session, q)})


@router.get("/customers/_rows", response_class=HTMLResponse)
def customers_rows(
    request: Request,
    q: str | None = None,
    session: Session = Depends(get_session),
    user: Principal = page("accounts:read"),
) -> HTMLResponse:
    data = _customers(session, q)
    return render(
        request, "_customer_rows.html", data, headers={"HX-Replace-Url": _page_url("/customers", q=data["q"])}
    )


# --- catalog --------------------------------------------------------------------------------------------

LIFECYCLE_STATUSES = ("inDesign", "active", "retired")


def _offering_count(session: Session) -> int:
    return catalog.list_offerings(session, limit=0).total


def _offerings(session: Session, q: str | None, status: str | None, offset: int) -> dict[str, Any]:
    q = (q or "").strip()
    status = status if status in LIFECYCLE_STATUSES else ""
    offset = max(offset, 0)
    found = catalog.list_offerings(
        session, lifecycle_status=status or None, search=q or None, limit=PAGE_SIZE, offset=offset
    )
    return {
        "offerings": list(found),
        "total": found.total,
        "q": q,
        "status": status,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "statuses": LIFECYCLE_STATUSES,
    }


def _catalog_url(data: dict[str, Any]) -> str:
    return _page_url(
        "/catalog", q=data["q"], status=data["status"], offset=str(data["offset"]) if data["offset"] else None
    )


@router.get("/catalog", response_class=HTMLResponse)
def catalog_page(
    request: Request,
    q: str | None = None,
    status: str | None = None,
    offset: int = Query(0, ge=0),
    session: Session = Depends(get_session),
    user: Principal = page("catalog:read"),
) -> HTMLResponse:
    return render(request, "catalog.html", {"user": user, **_offerings(session, q, status, offset)})


@router.get("/catalog/_offerings", response_class=HTMLResponse)
def catalog_rows(
    request: Request,
    q: str | None = None,
    status: str | None = None,
    offset: int = Query(0, ge=0),
    session: Session = Depends(get_session),
    user: Principal = page("catalog:read"),
) -> HTMLResponse:
    data = _offerings(session, q, status, offset)
    return render(request, "_offering_rows.html", data, headers={"HX-Replace-Url": _catalog_url(data)})


@router.get("/catalog/offerings/{offering_id}", response_class=HTMLResponse)
def offering_page(
    request: Request,
    offering_id: str,
    session: Session = Depends(get_session),
    user: Principal = page("catalog:read"),
) -> HTMLResponse:
    try:
        offering = catalog.get_offering_detail(session, offering_id)
    except NotFound:
        return render(
            request,
            "error.html",
            {
                "user": user,
                "status": 404,
                "title": "Offering not found",
                "message": f"There is no product offering {offering_id!r}.",
            },
            status_code=404,
        )
    return render(request, "offering.html", {"user": user, "o": offering})


# --- customer portal: the invitation link of the welcome mail, and the portal user's account -------------

PASSWORD_MIN = 12  # as turnup.security.passwords.MIN_LENGTH


@router.get("/portal/invitation", response_class=HTMLResponse)
def invitation_form(request: Request, token: str = "", _: None = public()) -> HTMLResponse:
    """The welcome mail's link: choose a password to open the customer portal."""
    return render(request, "invitation.html", {"user": None, "token": token, "error": None})


@router.post("/portal/invitation", response_class=HTMLResponse)
def invitation_submit(
    request: Request,
    token: Annotated[CleanStr, Form()] = "",
    password: Annotated[CleanStr, Form()] = "",
    confirm: Annotated[CleanStr, Form()] = "",
    session: Session = Depends(get_session),
    _: None = public(),
) -> Response:
    """Accept the invitation (sets the password, once) and sign in to the portal."""

    def again(error: str, status_code: int) -> HTMLResponse:
        context = {"user": None, "token": token, "error": error}
        return render(request, "invitation.html", context, status_code=status_code)

    if not _same_origin(request):
        return again("The form must be sent from this site.", 403)
    if len(password) < PASSWORD_MIN:
        return again(f"The password needs at least {PASSWORD_MIN} characters.", 400)
    if password != confirm:
        return again("The two passwords differ.", 400)
    try:
        user = onboarding.accept_invitation(session, token, password)
    except TurnupError as exc:
        session.rollback()
        message = exc.message.removeprefix("token: ")
        return again(f"This invitation cannot be used: {message}.", exc.status)
    return _signed_in(request, _login(request, session, user.username, password), "/portal")


@router.get("/portal", response_class=HTMLResponse)
def portal_home(
    request: Request, session: Session = Depends(get_session), user: Principal = page("portal:read")
) -> HTMLResponse:
    """The portal user's own customer account."""
    customer = session.get(Customer, onboarding.portal_customer_id(session, user.user_id))
    return render(request, "portal.html", {"user": user, "customer": customer})
