"""Issue 12 hardening: the quote and reservations a productOrder body cites are checked in the order's
transaction (unknown → 400 naming the field; another customer's or in the wrong state → 409 naming it), and an
``externalId`` names one order per customer. A refused order leaves nothing behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory.logical.orm import ResourceReservation
from turnup.inventory.physical.orm import Reservation
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.outbox import OutboxEvent
from turnup.ordering.orm import PlanItem, ProductOrder, ProductOrderItem
from turnup.quoting.orm import Quote
from turnup.service_inventory.orm import Service
from turnup.testing import make_customer, make_offering, order_body

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
ACTIVATE = [{"adapter": "network-simulator", "action": "activate-access", "parameters": {}}]


@pytest.fixture
def dbos_cleanup(db_url: str) -> Iterator[None]:
    """Order creation enqueues a DBOS workflow: drop DBOS's schema of this PostgreSQL test afterwards."""
    yield
    from tests.workflows.conftest import drop_dbos_schema

    drop_dbos_schema(db_url)


@pytest.fixture
def world(session_factory: sessionmaker[Session]) -> dict[str, str]:
    with session_factory() as s:
        return {
            "offering": make_offering(s, "Business Fibre", ACTIVATE),
            "mine": make_customer(s, "Acme Ltd"),
            "theirs": make_customer(s, "Other plc"),
        }


def _quote(factory: sessionmaker[Session], customer_id: str, state: str) -> str:
    now = clock.now()
    with factory() as s:
        quote = Quote(
            customer_id=customer_id,
            state=state,
            contract_term_months=12,
            quote_date=now,
            valid_until=now + timedelta(days=30),
            created_at=now,
            updated_at=now,
        )
        s.add(quote)
        s.commit()
        return quote.id


def _stock_hold(
    factory: sessionmaker[Session], customer_id: str | None, status: str = "held", hours: int = 1
) -> str:
    now = clock.now()
    with factory() as s:
        row = Reservation(
            status=status,
            expires_at=now + timedelta(hours=hours),
            customer_id=customer_id,
            order_id="some-other-order" if status == "committed" else None,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.commit()
        return row.id


def _resource_hold(
    factory: sessionmaker[Session], party: str | None, state: str = "reserved", hours: int = 1
) -> str:
    now = clock.now()
    with factory() as s:
        row = ResourceReservation(
            state=state,
            expires_at=now + timedelta(hours=hours),
            related_party=party,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.commit()
        return row.id


def _counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return {
            m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0
            for m in (ProductOrder, ProductOrderItem, PlanItem, Service, AuditEntry, OutboxEvent)
        }


def _body(world: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {**order_body(world["mine"], world["offering"]), **extra}


def _refused(client: TestClient, body: dict[str, Any], status: int, message: str) -> None:
    response = client.post(ORDERS, json=body)
    assert response.status_code == status, response.text
    assert response.json()["message"] == message


def test_a_cited_quote_must_exist_be_the_customers_and_be_accepted(
    client: TestClient, session_factory: sessionmaker[Session], world: dict[str, str], dbos_cleanup: None
) -> None:
    # Given quotes of this customer (one accepted, one only approved) and an accepted one of another customer
    accepted = _quote(session_factory, world["mine"], "accepted")
    approved = _quote(session_factory, world["mine"], "approved")
    foreign = _quote(session_factory, world["theirs"], "accepted")
    before = _counts(session_factory)

    # When orders cite an unknown quote, another customer's, or one not accepted, then each is refused
    _refused(
        client,
        _body(world, quote=[{"id": "no-such-quote"}]),
        400,
        "quote[0].id: unknown quote 'no-such-quote'",
    )
    _refused(
        client,
        _body(world, quote=[{"id": foreign}]),
        409,
        f"quote[0].id: quote {foreign!r} belongs to another customer",
    )
    _refused(
        client,
        _body(world, quote=[{"id": approved}]),
        409,
        f"quote[0].id: quote {approved!r} is approved, not accepted; only an accepted quote can be ordered",
    )
    # and nothing was written
    assert _counts(session_factory) == before

    # When an order cites the customer's accepted quote, then it is accepted and keeps the reference
    response = client.post(ORDERS, json=_body(world, quote=[{"id": accepted}]))
    assert response.status_code == 201, response.text
    with session_factory() as s:
        order = s.get(ProductOrder, response.json()["id"])
        assert order is not None and order.quote_id == accepted


@pytest.mark.parametrize("kind", ["ReserveProductStock", "ResourceReservation"])
def test_a_cited_reservation_must_exist_be_the_customers_and_be_live(
    client: TestClient,
    session_factory: sessionmaker[Session],
    world: dict[str, str],
    dbos_cleanup: None,
    kind: str,
) -> None:
    stock = kind == "ReserveProductStock"

    def hold(owner: str | None, state: str | None = None, hours: int = 1) -> str:
        if stock:
            return _stock_hold(session_factory, owner, state or "held", hours)
        return _resource_hold(session_factory, owner, state or "reserved", hours)

    # Given holds: another customer's, a committed one, a released one, one past its expiry, and live ones
    foreign = hold(world["theirs"])
    committed = hold(world["mine"], "committed")
    released = hold(world["mine"], "released")
    expired = hold(world["mine"], hours=-1)
    mine = hold(world["mine"])
    anonymous = hold(None)
    before = _counts(session_factory)

    def cite(reservation_id: str) -> dict[str, Any]:
        return _body(world, reservation=[{"id": reservation_id, "@referredType": kind}])

    # When orders cite them, then the unknown one is a 400 and the others a 409, each naming the field
    _refused(client, cite("no-such-hold"), 400, f"reservation[0].id: unknown {kind} 'no-such-hold'")
    _refused(
        client, cite(foreign), 409, f"reservation[0].id: {kind} {foreign!r} is held for another customer"
    )
    for held, state in ((committed, "committed"), (released, "released"), (expired, "expired")):
        _refused(
            client,
            cite(held),
            409,
            f"reservation[0].id: {kind} {held!r} is {state}; an order can only carry a live hold",
        )
    # the index of the offending reference is named
    body = _body(
        world,
        reservation=[
            {"id": mine, "@referredType": kind},
            {"id": "no-such-hold", "@referredType": kind},
        ],
    )
    _refused(client, body, 400, f"reservation[1].id: unknown {kind} 'no-such-hold'")
    # and nothing was written
    assert _counts(session_factory) == before

    # When an order cites the customer's live hold and one held for nobody in particular, then it is accepted
    body = _body(
        world,
        reservation=[{"id": mine, "@referredType": kind}, {"id": anonymous, "@referredType": kind}],
    )
    response = client.post(ORDERS, json=body)
    assert response.status_code == 201, response.text
    with session_factory() as s:
        order = s.get(ProductOrder, response.json()["id"])
        assert order is not None
        assert [r["id"] for r in order.reservation_refs or []] == [mine, anonymous]


def test_an_external_id_names_one_order_per_customer(
    client: TestClient, session_factory: sessionmaker[Session], world: dict[str, str], dbos_cleanup: None
) -> None:
    # Given an order of this customer with externalId PO-1
    first = client.post(ORDERS, json=_body(world, externalId="PO-1"))
    assert first.status_code == 201, first.text
    before = _counts(session_factory)

    # When the same customer posts another order with PO-1, then a 409 names externalId; nothing is written
    _refused(
        client,
        _body(world, externalId="PO-1"),
        409,
        f"externalId: customer {world['mine']!r} already has a productOrder with externalId 'PO-1'",
    )
    assert _counts(session_factory) == before

    # When another customer uses PO-1, or this customer another id or none at all (twice), they are accepted
    other = {**order_body(world["theirs"], world["offering"]), "externalId": "PO-1"}
    for body in (other, _body(world, externalId="PO-2"), _body(world), _body(world)):
        response = client.post(ORDERS, json=body)
        assert response.status_code == 201, response.text
    with session_factory() as s:
        rows = s.execute(select(ProductOrder.customer_id, ProductOrder.external_id)).all()
    assert sorted((c == world["mine"], e or "") for c, e in rows) == [
        (False, "PO-1"),
        (True, ""),
        (True, ""),
        (True, "PO-1"),
        (True, "PO-2"),
    ]


def test_the_database_refuses_a_second_order_with_the_same_external_id(
    session_factory: sessionmaker[Session], world: dict[str, str]
) -> None:
    """The unique index makes the check safe against a concurrent insert that passed it too."""
    now = clock.now()

    def order(external_id: str | None) -> ProductOrder:
        return ProductOrder(
            state="acknowledged",
            customer_id=world["mine"],
            external_id=external_id,
            order_date=now,
            created_at=now,
            updated_at=now,
        )

    with session_factory() as s:
        s.add_all([order("PO-9"), order(None), order(None)])
        s.commit()
        s.add(order("PO-9"))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        assert s.scalar(select(func.count()).select_from(ProductOrder)) == 3


def test_racing_orders_with_one_external_id_create_one_order(
    client: TestClient, session_factory: sessionmaker[Session], world: dict[str, str], dbos_cleanup: None
) -> None:
    # Given five threads released together, each posting an order with externalId PO-7 for one customer
    threads = 5
    barrier = threading.Barrier(threads)
    statuses: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send() -> None:
        barrier.wait(30)
        response = client.post(ORDERS, json=_body(world, externalId="PO-7"))
        with lock:
            statuses.append((response.status_code, response.json().get("message", "")))

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)

    # Then one is created and every other one is a 409 naming externalId
    refused = f"externalId: customer {world['mine']!r} already has a productOrder with externalId 'PO-7'"
    assert sorted(statuses) == [(201, "")] + [(409, refused)] * (threads - 1)
    assert _counts(session_factory)["product_order"] == 1
