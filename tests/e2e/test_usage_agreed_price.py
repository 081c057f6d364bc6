"""Usage of a service sold on a quote is rated with the quote's agreed usage tiers (``quoting.agreed_terms``),
not with whatever the catalog says later."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    QUOTES,
    SIGNER,
    customer_and_site,
    dbos_cleanup,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from tests.e2e.test_usage_api import USAGE, at, drain, move, record
from turnup.catalog.orm import ProductOfferingPrice

__all__ = ["dbos_cleanup"]  # a fixture

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"


def test_usage_of_a_quoted_bundle_is_rated_with_the_agreed_tiers(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    # given an accepted Fibre + Voice quote (Outbound minutes: 0.02 to 1000, then 0.015) and its order
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"]))
    post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)
    accepted = post(client, f"{QUOTES}/{quote['id']}/accept", SIGNER, 200)
    order_id = accepted["productOrder"]["id"]
    services = {
        p["service"]["id"] for p in client.get(f"{ORDERS}/{order_id}/plan").json() if p.get("service")
    }
    assert len(services) == 2
    # and the catalog's minute rate changed after the quote was agreed
    with session_factory() as s:
        price = s.scalars(
            select(ProductOfferingPrice).where(ProductOfferingPrice.name == "Outbound minutes")
        ).one()
        price.tiers = [{"from": 0, "rate": "0.5000"}]
        s.commit()
    # when its services are active and minutes are used
    for service_id in sorted(services):
        move(session_factory, service_id, "active", datetime(2026, 3, 10, tzinfo=UTC), "add")
    drain(session_factory)
    one = sorted(services)[0]  # either: the agreed line's usage price is the bundle's
    created = client.post(USAGE, json=record("q-1", one, at(12), 1200))
    # then the agreed tiers rate them: 1000 @ 0.02 + 200 @ 0.015
    assert created.status_code == 201, created.text
    rated = created.json()["ratedProductUsage"][0]
    assert rated["taxExcludedRatingAmount"] == {"unit": "GBP", "value": "23.00"}
    assert rated["offerTariffType"] == "agreed"
