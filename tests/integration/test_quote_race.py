"""Two quotes race (real threads, separate sessions) for the last router / the last /29.

Exactly one is priced and holds everything; the other gets a 409 naming its line and holds nothing.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    QUOTES,
    customer_and_site,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from turnup.inventory.logical.orm import ResourceReservation
from turnup.inventory.physical.orm import Reservation
from turnup.kernel.errors import Conflict, TurnupError
from turnup.quoting import services


def _race(factory: sessionmaker[Session], quote_ids: list[str]) -> dict[str, Any]:
    barrier = threading.Barrier(len(quote_ids))
    outcome: dict[str, Any] = {}

    def run(quote_id: str) -> None:
        with factory() as session:
            barrier.wait()
            try:
                outcome[quote_id] = services.price_quote(session, quote_id, "test:race").state
            except TurnupError as exc:
                outcome[quote_id] = exc

    threads = [threading.Thread(target=run, args=(q,)) for q in quote_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return outcome


def _quotes(client: TestClient, factory: sessionmaker[Session], **inventory: Any) -> list[str]:
    offerings = publish_demo_catalog(factory)
    seed_inventory(client, **inventory)
    customer_id, site_id = customer_and_site(client)
    return [
        post(
            client,
            QUOTES,
            quote_body(customer_id, site_id, offerings["Business Fibre 1G"], characteristics=[]),
        )["id"]
        for _ in range(2)
    ]


@pytest.mark.parametrize("scarce", ["last router", "last /29"])
def test_two_quotes_race_for_the_last_unit_exactly_one_wins(
    scarce: str, client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    inventory = {"cpe": 1} if scarce == "last router" else {"ipv4_pool": "10.30.0.0/29"}
    quote_ids = _quotes(client, session_factory, **inventory)

    outcome = _race(session_factory, quote_ids)

    winners = [q for q, r in outcome.items() if r == "approved"]
    losers = [q for q, r in outcome.items() if isinstance(r, TurnupError)]
    assert len(winners) == 1 and len(losers) == 1, outcome
    error = outcome[losers[0]]
    assert isinstance(error, Conflict) and error.status == 409
    if scarce == "last router":
        assert error.message == (
            "insufficient stock to hold the quote: quoteItem[0] (Business Fibre 1G): SKU "
            "CPE-NW-FTTP-R1 in region Yorkshire: requested 1, available 0"
        )
    else:
        assert error.message == (
            "quoteItem[0] (Business Fibre 1G): prefixLength: pool 'customer v4' has no free "
            "/29 left (ipv4Prefix for 'Business Fibre Access')"
        )
    # the loser holds nothing; the winner holds one of everything
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Reservation)) == 1
        assert s.scalar(select(func.count()).select_from(ResourceReservation)) == 1
    loser = client.get(f"{QUOTES}/{losers[0]}").json()
    assert loser["state"] == "inProgress" and loser["holds"]["state"] is None
    assert loser["quoteItem"][0]["reservedResource"] == []
    winner = client.get(f"{QUOTES}/{winners[0]}").json()
    assert sorted(h["resource"] for h in winner["quoteItem"][0]["reservedResource"]) == [
        "ipv4Prefix",
        "ipv6Prefix",
        "stock",
        "vlan",
    ]
