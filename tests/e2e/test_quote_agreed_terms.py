"""The agreed terms face (``turnup.quoting.agreed_terms``) that billing and revenue recognition read."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    QUOTES,
    customer_and_site,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from turnup import quoting


def test_agreed_terms_carry_each_lines_prices_and_bundle_split(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # given a priced 10% (automatic 24-month term) Fibre + Voice quote
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"]))
    post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)

    # when its agreed terms are read through the face
    with session_factory() as s:
        terms = quoting.agreed_terms(s, quote["id"])
        missing = quoting.agreed_terms(s, "no-such-quote")

    # then every price component is there with list, discount and net amounts
    assert missing is None
    assert terms is not None
    assert (terms.customer_id, terms.currency, terms.contract_term_months) == (customer_id, "GBP", 24)
    (line,) = terms.lines
    assert (line.item_ref, line.offering_id, line.site_id, line.quantity) == (
        "1",
        offerings["Fibre + Voice"],
        site_id,
        1,
    )
    assert line.discount_percent == Decimal("10")
    by_name = {p.name: p for p in line.prices}
    monthly = by_name["Fibre + Voice monthly"]
    assert (monthly.price_type, monthly.recurring_period) == ("recurring", "month")
    assert (monthly.list_amount, monthly.discount_percent, monthly.net_amount) == (
        Decimal("249.00"),
        Decimal("10"),
        Decimal("224.10"),
    )
    minutes = by_name["Outbound minutes"]
    assert minutes.price_type == "usage" and minutes.unit_of_measure == "minute" and minutes.tiers
    assert [a["offering"] for a in line.bundle_allocation] == ["Business Fibre 1G", "Hosted Voice Seat"]
    assert sum(Decimal(a["recurring"]) for a in line.bundle_allocation) == monthly.net_amount
