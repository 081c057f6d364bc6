"""The references a product order body carries (its quote and its reservations), checked inside the order's
transaction before anything is written: an unknown id is a 400 naming the field; another customer's, or one
in the wrong state, a 409 naming it.

Quoting sits beside ordering and already depends on it (an accepted quote creates its order), so ordering
cannot import quoting. Instead ordering declares the small read model it needs (``QuoteFacts``) and a slot
for the function that answers it; quoting fills the slot (``turnup.quoting.order_refs``, imported by the
composition root ``turnup.wiring``). The acceptance hand-off passes the facts of the quote it is accepting
in the same transaction (``accepting``): that quote is not stored as accepted yet, and its holds are still
held (they are committed right after the order is created).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from turnup.inventory import logical, physical
from turnup.kernel import clock
from turnup.kernel.errors import Conflict, InvalidInput
from turnup.ordering.schemas import ProductOrderCreate


@dataclass(frozen=True)
class QuoteFacts:
    """What an order needs to know about a quote it cites."""

    id: str
    customer_id: str
    state: str  # TMF648 quote state: only ``accepted`` quotes can be ordered


QuoteReader = Callable[[Session, str], QuoteFacts | None]

_readers: list[QuoteReader] = []


def read_quotes_with(reader: QuoteReader) -> None:
    """Install the function answering ``QuoteFacts`` for a quote id (quoting does, when wired)."""
    _readers[:] = [reader]


def _quote_facts(session: Session, quote_id: str) -> QuoteFacts | None:
    if not _readers:
        raise RuntimeError("no quote reader installed: call turnup.wiring.wire() first")
    return _readers[0](session, quote_id)


def check_references(
    session: Session, data: ProductOrderCreate, customer_id: str, *, accepting: QuoteFacts | None = None
) -> None:
    """Refuse an order whose quote or reservations do not exist (400), or belong to another customer or are
    in the wrong state (409). Reads only."""
    for n, ref in enumerate(data.quote):
        where = f"quote[{n}].id"
        facts = (
            accepting if accepting is not None and accepting.id == ref.id else _quote_facts(session, ref.id)
        )
        if facts is None:
            raise InvalidInput(f"{where}: unknown quote {ref.id!r}")
        if facts.customer_id != customer_id:
            raise Conflict(f"{where}: quote {ref.id!r} belongs to another customer", reason="Wrong owner")
        if facts is not accepting and facts.state != "accepted":
            raise Conflict(
                f"{where}: quote {ref.id!r} is {facts.state}, not accepted; only an accepted quote can be "
                "ordered",
                reason="Quote not accepted",
            )
    now = clock.now()
    seen: set[str] = set()
    for n, res in enumerate(data.reservation):
        where = f"reservation[{n}].id"
        if res.id in seen:
            raise InvalidInput(f"{where}: reservation {res.id!r} is cited twice")
        seen.add(res.id)
        if res.referredType == "ReserveProductStock":
            stock = physical.stock_hold_facts(session, res.id, now)
            if stock is None:
                raise InvalidInput(f"{where}: unknown ReserveProductStock {res.id!r}")
            owner, state, live = stock.customer_id, stock.status, stock.status == "held"
        else:
            hold = logical.resource_hold_state(session, res.id)
            if hold is None:
                raise InvalidInput(f"{where}: unknown ResourceReservation {res.id!r}")
            owner = hold.related_party
            state = "expired" if hold.state == "reserved" and hold.expires_at <= now else hold.state
            live = state == "reserved"
        if owner is not None and owner != customer_id:
            raise Conflict(
                f"{where}: {res.referredType} {res.id!r} is held for another customer", reason="Wrong owner"
            )
        if not live:
            raise Conflict(
                f"{where}: {res.referredType} {res.id!r} is {state}; an order can only carry a live hold",
                reason="Reservation not held",
            )
