"""The console in a real browser (Debian chromium via Playwright): login, htmx filters, detail, logout.

Each test also asserts the page logged no JavaScript or CSP errors (``page.errors``), which is how a
missing asset, a blocked script or a broken htmx swap shows up.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.sample_catalog import publish_sample
from turnup.accounts import services as accounts
from turnup.accounts.schemas import CustomerCreate
from turnup.security import create_user

pytestmark = pytest.mark.browser


@pytest.fixture
def operator(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        create_user(s, username="olga", password="Tulip-Harbour-Lantern-31", roles=["operator"])


def _log_in(page: Any, path: str = "/") -> None:
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill("Tulip-Harbour-Lantern-31")
    page.get_by_role("button", name="Log in").click()


def test_wrong_password_shows_error_and_stays_on_login(page: Any, operator: None) -> None:
    page.goto("/customers")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill("nope")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page).to_have_url(re.compile(r"/login$"))
    assert page.context.cookies() == []
    assert [e for e in page.errors if "401" not in e] == []  # the 401 document itself is expected


def test_customers_search_narrows_the_list(
    page: Any, operator: None, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        for name in ("Acme Logistics", "Blue Fjord Fisheries", "Acorn Dental"):
            accounts.create_customer(s, CustomerCreate(name=name), "test")
    _log_in(page, "/customers")
    expect(page).to_have_url(re.compile(r"/customers$"))
    rows = page.get_by_test_id("customer-row")
    expect(rows).to_have_count(3)
    page.get_by_role("searchbox", name="Search customers").fill("ac")
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("customer-count")).to_have_text("2 customers matching “ac”")
    expect(page).to_have_url(re.compile(r"/customers\?q=ac$"))  # HX-Replace-Url keeps the filter
    page.get_by_role("searchbox", name="Search customers").fill("fjord")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Blue Fjord Fisheries")
    cookie = [c for c in page.context.cookies() if c["name"] == "turnup_session"]
    assert len(cookie) == 1 and cookie[0]["httpOnly"] is True and cookie[0]["sameSite"] == "Lax"
    assert page.errors == []


def test_catalog_filter_detail_and_logout(
    page: Any, operator: None, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        ids = publish_sample(s)
    # Given an anonymous visitor asking for the catalog, when they log in through the form,
    _log_in(page, "/catalog")
    # then they land on the catalog with every offering listed.
    expect(page).to_have_url(re.compile(r"/catalog$"))
    expect(page.get_by_role("link", name="Catalog")).to_have_attribute("aria-current", "page")
    rows = page.get_by_test_id("offering-row")
    expect(rows).to_have_count(3)
    expect(page.get_by_test_id("offering-count")).to_have_text("3 offerings")

    # Typing in the htmx filter narrows the list without a page load.
    marker = page.evaluate("() => (window.__sameDocument = 'yes')")
    page.get_by_role("searchbox", name="Search offerings").fill("fibre")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Business Fibre 1G")
    expect(page).to_have_url(re.compile(r"/catalog\?q=fibre$"))
    # The lifecycle select combines with the text filter.
    page.get_by_role("searchbox", name="Search offerings").fill("")
    expect(rows).to_have_count(3)
    page.get_by_label("Lifecycle status").select_option("inDesign")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Legacy ADSL")
    assert page.evaluate("() => window.__sameDocument") == marker  # swapped, not reloaded
    page.get_by_label("Lifecycle status").select_option("")
    expect(rows).to_have_count(3)

    # Opening an offering shows its specification, delivery requirements, prices and compliance data.
    page.get_by_role("link", name="Business Fibre 1G").click()
    expect(page).to_have_url(re.compile(rf"/catalog/offerings/{ids['Business Fibre 1G']}$"))
    expect(page.get_by_test_id("offering-name")).to_have_text("Business Fibre 1G")
    expect(page.get_by_test_id("offering-eccn")).to_have_text("5A991")
    expect(page.get_by_test_id("price-row")).to_have_count(2)
    expect(page.get_by_test_id("prices")).to_contain_text("199.00 GBP / month")
    expect(page.get_by_test_id("delivery")).to_contain_text("ont-xgs")
    expect(page.get_by_test_id("offering-revenue")).to_contain_text("overTime")

    # Logging out ends the session: the catalog is no longer reachable.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    assert [c for c in page.context.cookies() if c["name"] == "turnup_session"] == []
    page.goto("/catalog")
    expect(page).to_have_url(re.compile(r"/login\?next=/catalog$"))
    assert page.errors == []
