"""The customer lifecycle consumer decides about one customer without races, with real threads.

Two terminations handled at once, each of a different last-but-one service, must not each count the other's
service as still live (which would leave an active customer with no service): a termination locks the
customer FOR UPDATE, so the second waits for the first and then sees it. Activations of another service of an
active customer take the lock FOR SHARE: two of them do not wait for each other.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.accounts.consumers import follow_services
from turnup.accounts.orm import Customer, CustomerService
from turnup.kernel import clock
from turnup.kernel.consumers import Event
from turnup.kernel.ids import new_id
from turnup.testing import make_customer


def _event(customer_id: str, service_id: str, event_type: str, state: str) -> Event:
    at = clock.now() + timedelta(seconds=1)
    fact: dict[str, Any] = {
        "id": service_id,
        "serviceId": service_id,
        "customerId": customer_id,
        "state": state,
        "at": at.isoformat(),
    }
    return Event(
        id=new_id(),
        api="turnupDelivery",
        event_type=event_type,
        event_time=at,
        resource_type="serviceDelivery",
        resource_id=service_id,
        payload={"event": {"serviceDelivery": fact}},
    )


def _customer_with_live_services(factory: sessionmaker[Session], n: int) -> tuple[str, list[str]]:
    with factory() as s:
        customer_id = make_customer(s, "Lifecycle Race Ltd")
    with factory() as s:
        customer = s.get(Customer, customer_id)
        assert customer is not None
        customer.status = "active"
        services = [new_id() for _ in range(n)]
        s.add_all(
            CustomerService(service_id=sid, customer_id=customer_id, state="active", as_of=clock.now())
            for sid in services
        )
        s.commit()
    return customer_id, services


def _handle_holding(
    factory: sessionmaker[Session], event: Event, handled: threading.Event, release: threading.Event
) -> None:
    """Handle the event in its own transaction, then keep it open until told to commit."""
    with factory() as s:
        follow_services(s, event)
        handled.set()
        assert release.wait(30)
        s.commit()


def _status(factory: sessionmaker[Session], customer_id: str) -> str:
    with factory() as s:
        return str(s.scalar(select(Customer.status).where(Customer.id == customer_id)))


def test_two_terminations_at_once_leave_the_customer_inactive(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip(
            "row locks between concurrent transactions: PostgreSQL (SQLite runs one writer at a time)"
        )
    # Given an active customer with exactly two live services
    customer_id, (first, second) = _customer_with_live_services(session_factory, 2)
    # When the first termination is handled and its transaction stays open...
    handled_a, release_a = threading.Event(), threading.Event()
    a = threading.Thread(
        target=_handle_holding,
        args=(
            session_factory,
            _event(customer_id, first, "ServiceTerminatedEvent", "terminated"),
            handled_a,
            release_a,
        ),
    )
    a.start()
    assert handled_a.wait(30)
    # ...and the second termination is handled meanwhile in another transaction
    handled_b, release_b = threading.Event(), threading.Event()
    b = threading.Thread(
        target=_handle_holding,
        args=(
            session_factory,
            _event(customer_id, second, "ServiceTerminatedEvent", "terminated"),
            handled_b,
            release_b,
        ),
    )
    b.start()
    # Then the second waits for the first's lock (it cannot decide on a count that misses the first)
    assert not handled_b.wait(1.0)
    release_a.set()
    a.join(30)
    assert handled_b.wait(30)
    release_b.set()
    b.join(30)
    # And the customer, with no live service left, is inactive
    assert _status(session_factory, customer_id) == "inactive"
    with session_factory() as s:
        states = s.scalars(
            select(CustomerService.state).where(CustomerService.customer_id == customer_id)
        ).all()
    assert sorted(states) == ["terminated", "terminated"]


def test_activations_of_an_active_customer_do_not_wait_for_each_other(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip(
            "row locks between concurrent transactions: PostgreSQL (SQLite runs one writer at a time)"
        )
    # Given an active customer with a live service
    customer_id, _ = _customer_with_live_services(session_factory, 1)
    # When two new services' activations are handled at once, the first transaction still open
    handled_a, release_a = threading.Event(), threading.Event()
    handled_b, release_b = threading.Event(), threading.Event()
    threads = [
        threading.Thread(
            target=_handle_holding,
            args=(session_factory, _event(customer_id, new_id(), "ServiceActivatedEvent", "active"), h, r),
        )
        for h, r in ((handled_a, release_a), (handled_b, release_b))
    ]
    threads[0].start()
    assert handled_a.wait(30)
    threads[1].start()
    # Then the second is handled without waiting for the first to commit
    assert handled_b.wait(30)
    release_a.set()
    release_b.set()
    for t in threads:
        t.join(30)
    # And the customer stays active with three live services
    assert _status(session_factory, customer_id) == "active"
    with session_factory() as s:
        live = s.scalars(
            select(CustomerService.state).where(CustomerService.customer_id == customer_id)
        ).all()
    assert live == ["active"] * 3
