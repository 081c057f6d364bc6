"""Answers ordering's question about a quote an order body cites (``turnup.ordering.QuoteFacts``): ordering
cannot import quoting (quoting creates orders), so quoting installs this reader when the composition root
(``turnup.wiring``) imports this module."""

from __future__ import annotations

from sqlalchemy.orm import Session

from turnup import ordering
from turnup.quoting.orm import Quote


def quote_facts(session: Session, quote_id: str) -> ordering.QuoteFacts | None:
    quote = session.get(Quote, quote_id)
    if quote is None:
        return None
    return ordering.QuoteFacts(id=quote.id, customer_id=quote.customer_id, state=quote.state)


ordering.read_quotes_with(quote_facts)
