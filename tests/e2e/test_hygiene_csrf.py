"""CSRF protection of cookie-authenticated requests (issue 15, item 5).

The finding: body-less POSTs (price a quote, cancel an allocation, retry fallout, redeliver) succeeded from
another origin with the web session cookie. Now every unsafe request the cookie authenticates needs this
server's Origin (or Referer) and the session's CSRF token; bearer-token clients are unaffected; the
console's own forms and htmx requests carry the token. SQLite and PostgreSQL, plus property tests.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.api.csrf import CSRF_FIELD, CSRF_HEADER, csrf_problem, csrf_token, normalise_origin
from turnup.api.deps import SESSION_COOKIE
from turnup.api.introspect import iter_api_routes
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import EventDelivery, HubSubscription, publish

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
HUB = "/tmf-api/customerManagement/v4/hub"
OWN = "http://testserver"
EVIL = "https://evil.example"

# The finding's body-less POSTs, located in the route table by what they do.
FINDING_SUFFIXES = {
    "price a quote": "/quote/{quote_id}/price",
    "cancel an allocation": "/allocation/{allocation_id}/cancel",
    "retry fallout": "/retry",
    "redeliver": "/redeliver",
}


@pytest.fixture
def browser(app: Any, admin_token: str) -> Iterator[TestClient]:
    """A browser signed in to the console as the admin: the session cookie, no Authorization header."""
    with TestClient(app, raise_server_exceptions=False) as c:
        signed_in = c.post(
            "/login",
            data={"username": "admin", "password": "Saffron-Glacier-Kite-64"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303 and SESSION_COOKIE in c.cookies
        yield c


def _token(browser: TestClient) -> str:
    return csrf_token(browser.cookies[SESSION_COOKIE])


def _finding_paths(app: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for info in iter_api_routes(app):
        if "POST" not in info.methods:
            continue
        for name, suffix in FINDING_SUFFIXES.items():
            if info.path.endswith(suffix) and name not in found:
                found[name] = re.sub(r"\{[^}]+\}", "no-such-id", info.path)
    assert sorted(found) == sorted(FINDING_SUFFIXES), found
    return found


def _refused(response: Any, fragment: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert (body["@type"], body["code"], body["status"]) == ("Error", "CSRF", "403")
    assert fragment in body["message"]


def _audit_count(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry)) or 0


def test_the_findings_body_less_posts_are_refused_from_another_origin(
    app: Any, browser: TestClient, session_factory: sessionmaker[Session]
) -> None:
    before = _audit_count(session_factory)
    for name, path in _finding_paths(app).items():
        # From another origin, with the cookie (what the hostile tester did): refused
        _refused(browser.post(path, headers={"Origin": EVIL}), "is not an origin of this server")
        # Even with a stolen-looking token, another origin is refused
        _refused(browser.post(path, headers={"Origin": EVIL, CSRF_HEADER: _token(browser)}), "not an origin")
        # No Origin and no Referer: refused
        _refused(browser.post(path), "must send Origin (or Referer)")
        # Same origin but no token, or a wrong one: refused
        _refused(browser.post(path, headers={"Origin": OWN}), "missing CSRF token")
        _refused(browser.post(path, headers={"Origin": OWN, CSRF_HEADER: "0" * 64}), "does not match")
        # This server's origin and the session's token: the route answers (404: no such resource)
        allowed = browser.post(path, headers={"Origin": OWN, CSRF_HEADER: _token(browser)})
        assert allowed.status_code == 404, (name, allowed.text)
    assert _audit_count(session_factory) == before


def _failed_delivery(factory: sessionmaker[Session]) -> tuple[str, str]:
    """A hub subscription with one dead-lettered delivery."""
    with factory() as s:
        sub = HubSubscription(
            id=new_id(),
            api="customerManagement",
            callback="http://listener.example/cb",
            created_at=clock.now(),
        )
        s.add(sub)
        s.flush()
        publish(
            s,
            api="customerManagement",
            event_type="CustomerCreateEvent",
            resource_type="customer",
            resource={"id": "c1", "name": "Acme"},
        )
        s.flush()
        delivery = s.scalars(select(EventDelivery)).one()
        delivery.status, delivery.attempts, delivery.last_error = "failed", 1, "HTTP 503"
        s.commit()
        return sub.id, delivery.id


def test_a_cross_origin_redeliver_changes_nothing_and_the_same_origin_one_works(
    browser: TestClient, session_factory: sessionmaker[Session]
) -> None:
    sub_id, delivery_id = _failed_delivery(session_factory)
    path = f"{HUB}/{sub_id}/delivery/{delivery_id}/redeliver"
    before = _audit_count(session_factory)
    _refused(browser.post(path, headers={"Origin": EVIL}), "not an origin")
    with session_factory() as s:
        assert s.get(EventDelivery, delivery_id).status == "failed"  # type: ignore[union-attr]
    assert _audit_count(session_factory) == before
    done = browser.post(path, headers={"Origin": OWN, CSRF_HEADER: _token(browser)})
    assert done.status_code == 200 and done.json()["status"] == "pending"
    assert _audit_count(session_factory) == before + 1


def test_put_patch_delete_with_the_cookie_are_checked_too(
    client: TestClient, browser: TestClient, session_factory: sessionmaker[Session]
) -> None:
    customer = client.post(CUSTOMERS, json={"name": "Acme", "country": "GB", "segment": "smb"}).json()
    url = f"{CUSTOMERS}/{customer['id']}"
    _refused(browser.patch(url, json={"name": "Evil"}, headers={"Origin": EVIL}), "not an origin")
    _refused(browser.delete(url, headers={"Origin": EVIL}), "not an origin")
    _refused(browser.post(CUSTOMERS, json={"name": "X", "country": "GB"}, headers={"Origin": EVIL}), "origin")
    assert client.get(url).json()["name"] == "Acme"
    assert [c["name"] for c in client.get(CUSTOMERS).json()] == ["Acme"]
    # GET is not checked; the same-origin PATCH with the token works
    assert browser.get(url, headers={"Origin": EVIL}).status_code == 200
    renamed = browser.patch(
        url, json={"name": "Acme Ltd"}, headers={"Origin": OWN, CSRF_HEADER: _token(browser)}
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Acme Ltd"


def test_a_same_origin_referer_stands_in_for_a_missing_origin(browser: TestClient) -> None:
    path = f"{HUB}/no-such-id/delivery/x/redeliver"
    headers = {"Referer": f"{OWN}/customers?q=a", CSRF_HEADER: _token(browser)}
    assert browser.post(path, headers=headers).status_code == 404
    _refused(browser.post(path, headers={"Referer": f"{EVIL}/x", CSRF_HEADER: _token(browser)}), "origin")
    _refused(browser.post(path, headers={"Origin": "null", CSRF_HEADER: _token(browser)}), "not an origin")


def test_bearer_token_requests_are_not_affected(client: TestClient, anon_client: TestClient) -> None:
    created = client.post(
        CUSTOMERS, json={"name": "Acme", "country": "GB", "segment": "smb"}, headers={"Origin": EVIL}
    )
    assert created.status_code == 201
    # A cookie next to a bearer token is ignored (the token alone authenticates): no CSRF check either
    client.cookies.set(SESSION_COOKIE, "whatever")
    patched = client.patch(
        f"{CUSTOMERS}/{created.json()['id']}", json={"name": "Acme 2"}, headers={"Origin": EVIL}
    )
    assert patched.status_code == 200
    # Anonymous requests are answered by the routes as before (401)
    assert anon_client.post(CUSTOMERS, json={}, headers={"Origin": EVIL}).status_code == 401


def test_the_console_sends_the_token_with_htmx_and_in_its_logout_form(
    browser: TestClient, session_factory: sessionmaker[Session]
) -> None:
    token = _token(browser)
    page = browser.get("/customers")
    assert page.status_code == 200
    assert f'<body hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'>' in page.text
    assert f'<input type="hidden" name="{CSRF_FIELD}" value="{token}">' in page.text
    # The logout form without the token (a forged form elsewhere) is refused and the session lives on
    _refused(browser.post("/logout", data={}, headers={"Origin": EVIL}), "not an origin")
    _refused(browser.post("/logout", data={}, headers={"Origin": OWN}), "missing CSRF token")
    assert browser.get("/", follow_redirects=False).status_code == 200
    out = browser.post("/logout", data={CSRF_FIELD: token}, headers={"Origin": OWN}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"


def test_the_configured_public_url_is_an_origin_of_this_server(
    settings: Any, engine: Any, admin_token: str
) -> None:
    from turnup.app import create_app

    app = create_app(settings.model_copy(update={"public_url": "https://turnup.example.com"}), engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.post("/login", data={"username": "admin", "password": "Saffron-Glacier-Kite-64"})
        secret = c.cookies[SESSION_COOKIE]
        c.cookies.clear()  # the cookie is Secure (public URL is https); the test client talks plain http
        c.cookies.set(SESSION_COOKIE, secret)
        token = csrf_token(secret)
        path = f"{HUB}/no-such-id/delivery/x/redeliver"
        for origin in ("https://turnup.example.com", "https://turnup.example.com:443", OWN):
            assert c.post(path, headers={"Origin": origin, CSRF_HEADER: token}).status_code == 404
        _refused(c.post(path, headers={"Origin": "http://turnup.example.com", CSRF_HEADER: token}), "origin")


# --- property tests ----------------------------------------------------------------------------------------

ALLOWED = {"http://testserver", "https://turnup.example.com"}
COOKIE = "s3cr3t-session"
RIGHT = csrf_token(COOKIE)
hexdigits = st.text(alphabet=string.hexdigits.lower(), min_size=0, max_size=70)
origins = st.one_of(
    st.sampled_from([*sorted(ALLOWED), "null", "http://testserver.evil.example", "https://testserver"]),
    st.from_regex(r"\Ahttps?://[a-z0-9.\-]{1,30}(:[0-9]{1,5})?\Z"),
    st.text(max_size=40),
)


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]),
    origin=st.one_of(st.none(), origins),
    referer=st.one_of(st.none(), origins),
    header_token=st.one_of(st.none(), hexdigits, st.just(RIGHT), st.text(max_size=70)),
    form_token=st.one_of(st.none(), hexdigits, st.just(RIGHT)),
)
def test_property_only_an_own_origin_with_the_sessions_token_passes(
    method: str, origin: str | None, referer: str | None, header_token: str | None, form_token: str | None
) -> None:
    headers = {}
    if origin is not None:
        headers["origin"] = origin
    if referer is not None:
        headers["referer"] = referer
    if header_token is not None:
        headers["x-csrf-token"] = header_token
    problem = csrf_problem(
        method=method,
        headers=headers,
        cookies={SESSION_COOKIE: COOKIE},
        allowed_origins=ALLOWED,
        form_token=form_token,
    )
    source = normalise_origin(origin) if origin is not None else normalise_origin(referer or "")
    token = header_token if header_token is not None else form_token
    should_pass = source in ALLOWED and token is not None and token.strip() == RIGHT
    assert (problem is None) == should_pass, (problem, headers, form_token)


@settings(max_examples=200, deadline=None)
@given(cookie=st.text(min_size=1, max_size=60), other=st.text(min_size=1, max_size=60))
def test_property_a_token_belongs_to_one_session(cookie: str, other: str) -> None:
    headers = {"origin": "http://testserver", "x-csrf-token": csrf_token(other)}
    problem = csrf_problem(
        method="POST", headers=headers, cookies={SESSION_COOKIE: cookie}, allowed_origins=ALLOWED
    )
    assert (problem is None) == (cookie == other)


@settings(max_examples=100, deadline=None)
@given(method=st.sampled_from(["GET", "HEAD", "OPTIONS"]), origin=origins)
def test_property_safe_methods_and_bearer_requests_are_never_checked(method: str, origin: str) -> None:
    cookies = {SESSION_COOKIE: COOKIE}
    assert (
        csrf_problem(method=method, headers={"origin": origin}, cookies=cookies, allowed_origins=ALLOWED)
        is None
    )
    bearer = {"origin": origin, "authorization": "Bearer x"}
    assert csrf_problem(method="POST", headers=bearer, cookies=cookies, allowed_origins=ALLOWED) is None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    origin=st.one_of(st.none(), origins),
    token=st.one_of(st.none(), hexdigits, st.just("RIGHT")),
)
def test_property_through_the_app_only_the_right_pair_reaches_the_route(
    browser: TestClient, origin: str | None, token: str | None
) -> None:
    path = f"{HUB}/no-such-id/delivery/x/redeliver"
    headers: dict[str, str] = {}
    if origin is not None:
        headers["Origin"] = origin
    if token is not None:
        headers[CSRF_HEADER] = _token(browser) if token == "RIGHT" else token
    try:
        response = browser.post(path, headers=headers)
    except (UnicodeEncodeError, ValueError):  # a header value HTTP cannot carry: nothing was sent
        return
    right = origin is not None and normalise_origin(origin) == OWN and token == "RIGHT"
    assert response.status_code == (404 if right else 403), (origin, token, response.text)
