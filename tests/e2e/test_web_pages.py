"""The web console through the HTTP client: login, redirects, pages, htmx fragments, logout."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.sample_catalog import publish_sample
from turnup.accounts import services as accounts
from turnup.accounts.schemas import ContactCreate, CustomerCreate, SiteCreate
from turnup.api.deps import SESSION_COOKIE
from turnup.kernel.audit import AuditEntry
from turnup.security import create_user
from turnup.security.orm import WebSession
from turnup.security.permissions import ROLE_PERMISSIONS

OLGA_PASSWORD = "Tulip-Harbour-Lantern-31"
PAGES = ["/", "/customers", "/customers/_rows", "/catalog", "/catalog/_offerings", "/catalog/offerings/x"]


@pytest.fixture
def web(app: Any) -> Any:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def users(session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    # Every built-in role reads everything; a narrow role shows what a missing permission looks like.
    monkeypatch.setitem(ROLE_PERMISSIONS, "catalog-reader", {"console:read", "catalog:read"})
    with session_factory() as s:
        create_user(
            s, username="olga", display_name="Olga Operator", password=OLGA_PASSWORD, roles=["operator"]
        )
        create_user(s, username="nora", password="Maple-Violet-Orbit-58", roles=["catalog-reader"])


def _login(client: TestClient, username: str = "olga", password: str = OLGA_PASSWORD, next: str = "/") -> Any:
    return client.post(
        "/login", data={"username": username, "password": password, "next": next}, follow_redirects=False
    )


def _rows(html: str) -> list[str]:
    """The first cell (name) of each customer row."""
    return re.findall(r'data-testid="customer-row">\s*<td class="strong">([^<]*)</td>', html)


@pytest.fixture
def customers(session_factory: sessionmaker[Session]) -> dict[str, str]:
    with session_factory() as s:
        acme = accounts.create_customer(
            s,
            CustomerCreate(
                name="Acme Logistics",
                country="GB",
                segment="enterprise",
                email="ops@acme.example",
                status="active",
            ),
            "test",
        )
        accounts.create_customer(
            s, CustomerCreate(name="Blue Fjord Fisheries", country="NO", segment="smb"), "test"
        )
        accounts.create_customer(
            s, CustomerCreate(name="100%_Discount <Shop>", country="DE", segment="smb"), "test"
        )
        accounts.create_site(s, SiteCreate(customerId=acme.id, name="HQ", country="GB"), "test")
        accounts.create_site(s, SiteCreate(customerId=acme.id, name="Depot", country="GB"), "test")
        accounts.create_contact(s, ContactCreate(customerId=acme.id, name="Ada"), "test")
        return {"acme": acme.id}


# --- login / logout -------------------------------------------------------------------------------------


def test_login_page_is_public_and_has_the_form(web: TestClient) -> None:
    response = web.get("/login?next=/customers")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/login"' in response.text
    assert '<input type="hidden" name="next" value="/customers">' in response.text
    assert "Log out" not in response.text  # no navigation bar for anonymous visitors


def test_login_success_sets_httponly_lax_cookie_and_redirects(
    web: TestClient, users: None, session_factory: sessionmaker[Session]
) -> None:
    response = _login(web, next="/customers?q=acme")
    assert response.status_code == 303
    assert response.headers["location"] == "/customers?q=acme"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    secret = cookie.split(";")[0].split("=", 1)[1]
    with session_factory() as s:
        stored = s.scalars(select(WebSession.token_hash)).all()
        logins = s.scalars(select(AuditEntry).where(AuditEntry.action == "user.login")).all()
    assert len(stored) == 1 and secret not in stored[0]  # only the hash is stored
    assert len(logins) == 1
    home = web.get("/")
    assert home.status_code == 200
    assert '<span class="who" data-testid="current-user">olga</span>' in home.text


def test_login_failure_rerenders_form_without_session(
    web: TestClient, users: None, session_factory: sessionmaker[Session]
) -> None:
    for username, password in [("olga", "wrong"), ("nobody", "Tulip-Harbour-Lantern-31"), ("", "")]:
        response = _login(web, username, password)
        assert response.status_code == 401
        assert "Wrong username or password." in response.text
        assert "set-cookie" not in response.headers
    assert 'value="nobody"' not in _login(web, "olga", "wrong").text  # only the last username is echoed
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == 0
    assert web.get("/", follow_redirects=False).status_code == 303


def test_login_never_redirects_off_site(web: TestClient, users: None) -> None:
    for evil in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]:
        response = _login(web, next=evil)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
    page = web.get("/login", params={"next": "//evil.example"})
    assert '<input type="hidden" name="next" value="/">' in page.text


def test_cross_site_login_post_is_refused(web: TestClient, users: None) -> None:
    response = web.post(
        "/login",
        data={"username": "olga", "password": "Tulip-Harbour-Lantern-31"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_logout_ends_the_session(
    web: TestClient, users: None, session_factory: sessionmaker[Session]
) -> None:
    _login(web)
    home = web.get("/", follow_redirects=False)
    assert home.status_code == 200
    old_cookie = web.cookies.get(SESSION_COOKIE)
    # The page's logout form carries the session's CSRF token; the browser sends the page's Origin.
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', home.text)
    assert token is not None
    response = web.post(
        "/logout",
        data={"csrf_token": token.group(1)},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == 0
    # The old secret no longer works even if a client kept it.
    web.cookies.set(SESSION_COOKIE, old_cookie)
    replay = web.get("/", follow_redirects=False)
    assert replay.status_code == 303


# --- access control -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_browser_is_redirected_to_login(web: TestClient, path: str) -> None:
    response = web.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


def test_redirect_keeps_the_query_string(web: TestClient) -> None:
    response = web.get("/customers?q=acme", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/customers%3Fq%3Dacme"


def test_anonymous_htmx_fragment_request_gets_hx_redirect(web: TestClient) -> None:
    response = web.get(
        "/customers/_rows?q=a",
        follow_redirects=False,
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/customers?q=a"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/customers%3Fq%3Da"
    assert response.text == ""


def test_expired_or_forged_cookie_redirects(web: TestClient) -> None:
    web.cookies.set(SESSION_COOKIE, "forged")
    response = web.get("/customers", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/customers"


def test_api_still_answers_tmf_401_json(web: TestClient, users: None) -> None:
    response = web.get("/tmf-api/customerManagement/v4/customer", follow_redirects=False)
    assert response.status_code == 401
    assert response.json()["@type"] == "Error" and response.json()["code"] == "ERR401"


def test_user_without_permission_gets_html_403(web: TestClient, users: None) -> None:
    _login(web, "nora", "Maple-Violet-Orbit-58")
    response = web.get("/customers", follow_redirects=False)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "Your roles do not grant &#39;accounts:read&#39;." in response.text


def test_navigation_shows_only_permitted_areas(web: TestClient, users: None) -> None:
    _login(web, "nora", "Maple-Violet-Orbit-58")
    html = web.get("/").text
    assert '<a href="/catalog"' in html and 'data-testid="count-offerings"' in html
    assert '<a href="/customers"' not in html and 'data-testid="count-customers"' not in html


def test_web_routes_declare_page_permissions(app: Any) -> None:
    from turnup.api.deps import declared_permission
    from turnup.api.introspect import dependency_calls, iter_api_routes

    declared = {}
    for info in iter_api_routes(app):
        if info.route.tags == ["web"]:
            for method in info.methods:
                declared[(method, info.path)] = [
                    p for p in map(declared_permission, dependency_calls(info.route.dependant)) if p
                ]
    assert declared[("GET", "/login")] == ["public"]
    assert declared[("POST", "/login")] == ["public"]
    assert declared[("POST", "/logout")] == ["public"]
    assert declared[("GET", "/")] == ["console:read"]
    assert declared[("GET", "/customers")] == ["accounts:read"]
    assert declared[("GET", "/customers/_rows")] == ["accounts:read"]
    assert declared[("GET", "/catalog")] == ["catalog:read"]
    assert declared[("GET", "/catalog/_offerings")] == ["catalog:read"]
    assert declared[("GET", "/catalog/offerings/{offering_id}")] == ["catalog:read"]
    assert declared[("GET", "/portal/invitation")] == ["public"]
    assert declared[("POST", "/portal/invitation")] == ["public"]
    assert declared[("GET", "/portal")] == ["portal:read"]
    assert len(declared) == 12


def test_pages_carry_security_headers(web: TestClient, users: None) -> None:
    _login(web)
    response = web.get("/customers")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]


# --- layout and assets ----------------------------------------------------------------------------------


def test_static_assets_are_public_and_vendored(web: TestClient) -> None:
    htmx = web.get("/static/vendor/htmx/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]
    assert web.get("/static/vendor/htmx/LICENSE").status_code == 200
    css = web.get("/static/turnup.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_layout_has_navigation_and_no_external_assets(web: TestClient, users: None) -> None:
    _login(web)
    html = web.get("/").text
    assert '<a href="/catalog"' in html and '<a href="/customers"' in html
    assert '<form method="post" action="/logout"' in html
    assert '<script src="/static/vendor/htmx/htmx.min.js' in html
    assert re.findall(r'(?:src|href)="(https?:)?//', html) == []


# --- customers ------------------------------------------------------------------------------------------


def test_customers_page_lists_customers_with_counts(
    web: TestClient, users: None, customers: dict[str, str]
) -> None:
    _login(web)
    html = web.get("/customers").text
    assert _rows(html) == ["100%_Discount &lt;Shop&gt;", "Acme Logistics", "Blue Fjord Fisheries"]
    assert '<p class="result-count" data-testid="customer-count">3 customers</p>' in html
    acme_row = html[html.index("Acme Logistics") : html.index("Blue Fjord")]
    assert re.findall(r'<td class="num">(\d+)</td>', acme_row) == ["2", "1"]  # sites, contacts
    assert '<span class="badge badge-active">active</span>' in acme_row
    assert 'hx-get="/customers/_rows"' in html


def test_customers_search_fragment_is_a_partial(
    web: TestClient, users: None, customers: dict[str, str]
) -> None:
    _login(web)
    response = web.get("/customers/_rows", params={"q": "FJORD"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text and "<nav" not in response.text
    assert _rows(response.text) == ["Blue Fjord Fisheries"]
    assert response.headers["HX-Replace-Url"] == "/customers?q=FJORD"


def test_customers_search_matches_email_segment_country_and_literal_wildcards(
    web: TestClient, users: None, customers: dict[str, str]
) -> None:
    _login(web)
    assert _rows(web.get("/customers/_rows", params={"q": "acme.example"}).text) == ["Acme Logistics"]
    assert _rows(web.get("/customers/_rows", params={"q": "smb"}).text) == [
        "100%_Discount &lt;Shop&gt;",
        "Blue Fjord Fisheries",
    ]
    assert _rows(web.get("/customers/_rows", params={"q": "%"}).text) == ["100%_Discount &lt;Shop&gt;"]
    assert _rows(web.get("/customers/_rows", params={"q": "_"}).text) == ["100%_Discount &lt;Shop&gt;"]
    empty = web.get("/customers/_rows", params={"q": "zzz"})
    assert _rows(empty.text) == [] and "No customers match “zzz”." in empty.text
    assert empty.headers["HX-Replace-Url"] == "/customers?q=zzz"


def test_customers_page_with_query_renders_filtered_without_js(
    web: TestClient, users: None, customers: dict[str, str]
) -> None:
    _login(web)
    html = web.get("/customers", params={"q": "acme"}).text
    assert _rows(html) == ["Acme Logistics"]
    assert 'name="q" value="acme"' in html


def test_home_shows_counts(web: TestClient, users: None, customers: dict[str, str]) -> None:
    _login(web)
    html = web.get("/").text
    assert '<span class="tile-value" data-testid="count-customers">3</span>' in html
    assert "1 active" in html


def test_bearer_token_client_can_read_pages(client: TestClient) -> None:
    response = client.get("/customers")
    assert response.status_code == 200
    assert '<span class="who" data-testid="current-user">admin</span>' in response.text


# --- catalog --------------------------------------------------------------------------------------------


@pytest.fixture
def offerings(session_factory: sessionmaker[Session]) -> dict[str, str]:
    with session_factory() as s:
        return publish_sample(s)


def _offering_names(html: str) -> list[str]:
    return re.findall(r'<a class="strong" href="/catalog/offerings/[0-9a-f]+">([^<]*)</a>', html)


def test_catalog_page_lists_offerings(web: TestClient, users: None, offerings: dict[str, str]) -> None:
    _login(web)
    response = web.get("/catalog")
    assert response.status_code == 200
    html = response.text
    assert _offering_names(html) == ["Business Fibre 1G", "Hosted Voice Seat", "Legacy ADSL"]
    assert '<p class="result-count" data-testid="offering-count">3 offerings</p>' in html
    assert f'href="/catalog/offerings/{offerings["Business Fibre 1G"]}"' in html
    legacy = html[html.index("Legacy ADSL") :]
    assert '<span class="badge badge-inDesign">inDesign</span>' in legacy
    assert '<span class="chip">partner</span>' in legacy
    assert '<td class="mono">5A991</td>' in html
    assert 'hx-get="/catalog/_offerings"' in html and 'name="status"' in html


def test_catalog_filter_fragment_narrows_by_text_and_status(
    web: TestClient, users: None, offerings: dict[str, str]
) -> None:
    _login(web)
    by_text = web.get("/catalog/_offerings", params={"q": "FIBRE"}, headers={"HX-Request": "true"})
    assert by_text.status_code == 200
    assert "<html" not in by_text.text and "<nav" not in by_text.text
    assert _offering_names(by_text.text) == ["Business Fibre 1G"]
    assert by_text.headers["HX-Replace-Url"] == "/catalog?q=FIBRE"
    by_status = web.get("/catalog/_offerings", params={"status": "inDesign"})
    assert _offering_names(by_status.text) == ["Legacy ADSL"]
    assert by_status.headers["HX-Replace-Url"] == "/catalog?status=inDesign"
    both = web.get("/catalog/_offerings", params={"q": "seat", "status": "active"})
    assert _offering_names(both.text) == ["Hosted Voice Seat"]
    assert both.headers["HX-Replace-Url"] == "/catalog?q=seat&status=active"
    description = web.get("/catalog/_offerings", params={"q": "cloud pbx"})
    assert _offering_names(description.text) == ["Hosted Voice Seat"]
    none = web.get("/catalog/_offerings", params={"q": "fibre", "status": "retired"})
    assert _offering_names(none.text) == []
    assert "No offerings match “fibre” with status retired." in none.text


def test_catalog_ignores_unknown_status_value(
    web: TestClient, users: None, offerings: dict[str, str]
) -> None:
    _login(web)
    response = web.get("/catalog/_offerings", params={"status": "<script>"})
    assert response.status_code == 200
    assert _offering_names(response.text) == ["Business Fibre 1G", "Hosted Voice Seat", "Legacy ADSL"]
    assert "<script>" not in response.text
    assert response.headers["HX-Replace-Url"] == "/catalog"


def test_catalog_page_with_filters_renders_without_js(
    web: TestClient, users: None, offerings: dict[str, str]
) -> None:
    _login(web)
    html = web.get("/catalog", params={"q": "voice", "status": "active"}).text
    assert _offering_names(html) == ["Hosted Voice Seat"]
    assert 'name="q" value="voice"' in html
    assert '<option value="active" selected>active</option>' in html


def test_offering_detail_shows_specs_delivery_prices_revenue_eccn_channels(
    web: TestClient, users: None, offerings: dict[str, str]
) -> None:
    _login(web)
    response = web.get(f"/catalog/offerings/{offerings['Business Fibre 1G']}")
    assert response.status_code == 200
    html = response.text
    assert '<h1 data-testid="offering-name">Business Fibre 1G</h1>' in html
    assert '<dd data-testid="offering-eccn">5A991</dd>' in html
    channels = html[html.index('data-testid="offering-channels"') :]
    assert channels.index('<span class="chip">web</span>') < channels.index('<span class="chip">sales</span>')
    # prices
    assert re.findall(
        r'<td class="num">([^<]*)</td>',
        html[html.index('data-testid="prices"') : html.index("Discount rules")],
    ) == ["199.00 GBP / month", "450.00 GBP"]
    assert "10% off for terms of 36+ months" in html
    # revenue recognition of the offering
    revenue = html[html.index('data-testid="offering-revenue"') : html.index("Product specifications</h2>")]
    assert "<dd>overTime</dd>" in revenue and "<dd>2400.00 GBP</dd>" in revenue
    # the specification and its delivery requirements
    assert html.count('data-testid="spec"') == 1
    assert "<h3>Business Fibre Access</h3>" in html and "NW-FIB-1G" in html
    delivery = html[html.index('data-testid="delivery"') :]
    assert '<td class="mono">ont-xgs</td><td class="num">1</td><td>technician</td>' in delivery
    assert '<td>ipv4Prefix</td><td class="num">1</td><td class="small">prefixLength=29</td>' in delivery
    assert "fibre-install · 180 min" in delivery
    assert '<span class="mono">olt.activate-port</span>' in delivery


def test_unknown_offering_is_an_html_404(web: TestClient, users: None, offerings: dict[str, str]) -> None:
    _login(web)
    response = web.get("/catalog/offerings/does-not-exist")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no product offering &#39;does-not-exist&#39;." in response.text


def test_home_counts_offerings(web: TestClient, users: None, offerings: dict[str, str]) -> None:
    _login(web)
    assert '<span class="tile-value" data-testid="count-offerings">3</span>' in web.get("/").text


def test_catalog_empty_state(web: TestClient, users: None) -> None:
    _login(web)
    html = web.get("/catalog").text
    assert '<p class="result-count" data-testid="offering-count">0 offerings</p>' in html
    assert '<p class="empty">No offerings.</p>' in html


def test_catalog_pages_through_results(
    web: TestClient, users: None, offerings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from turnup.web import routes

    monkeypatch.setattr(routes, "PAGE_SIZE", 2)
    _login(web)
    first = web.get("/catalog/_offerings")
    assert _offering_names(first.text) == ["Business Fibre 1G", "Hosted Voice Seat"]
    assert "3 offerings · showing 1–2" in first.text
    assert 'hx-get="/catalog/_offerings?q=&amp;status=&amp;offset=2"' in first.text
    assert "Previous" not in first.text
    second = web.get("/catalog/_offerings", params={"offset": 2})
    assert _offering_names(second.text) == ["Legacy ADSL"]
    assert second.headers["HX-Replace-Url"] == "/catalog?offset=2"
    assert "Previous" in second.text and "Next" not in second.text


def test_every_demo_catalog_offering_renders(
    web: TestClient, users: None, session_factory: sessionmaker[Session]
) -> None:
    """The shipped demo catalog exercises every capability: each of its pages must render."""
    from turnup.catalog import list_offerings, load_catalog_file, publish_catalog
    from turnup.demo.loader import DEMO_DIR

    with session_factory() as s:
        publish_catalog(s, load_catalog_file(DEMO_DIR / "catalog.yaml"), "test")
        offerings = list(list_offerings(s, limit=1000))
    _login(web)
    listing = web.get("/catalog").text
    assert sorted(_offering_names(listing)) == sorted(o["name"] for o in offerings)
    for offering in offerings:
        response = web.get(f"/catalog/offerings/{offering['id']}")
        assert response.status_code == 200, offering["name"]
        assert '<h1 data-testid="offering-name">' in response.text
