"""Export-compliance hand-off for quotes, written against ``turnup.compliance`` (owned by the compliance
feature): ``screen_parties``, ``Party``, ``check_export``, ``is_on_hold``, ``register_open_deal_provider``.

A screening hit never loses the deal: the quote keeps its prices and holds and is put on *compliance hold*
with the reasons; it cannot be accepted until ``is_on_hold`` says the case was cleared. When the compliance
module is not installed, screening is recorded as ``unavailable`` and nothing is held.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.accounts.orm import Contact, Customer, Site
from turnup.kernel import clock

REF_TYPE = "quote"
OPEN_STATES = ("inProgress", "pending", "approved")
_override: Any = None
_registered_with: Any = None


@dataclass
class ScreenResult:
    status: str  # clear | held | unavailable
    case_id: str | None = None
    reasons: list[str] = field(default_factory=list)


def set_backend(backend: Any) -> None:
    """Use ``backend`` (anything with the ``turnup.compliance`` functions) instead of the real module; None
    restores the default. For tests and embedding."""
    global _override
    _override = backend


def backend() -> Any:
    if _override is not None:
        return _override
    try:
        return importlib.import_module("turnup.compliance")
    except ImportError:
        return None


def parties_for(session: Session, customer: Customer, sites: list[Site]) -> list[Any]:
    module = backend()
    party = module.Party
    parties = [party(role="customer", name=customer.name, country=customer.country, ref_id=customer.id)]
    for site in sites:
        parties.append(party(role="site", name=site.name, country=site.country, ref_id=site.id))
    for contact in session.scalars(
        select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)
    ):
        parties.append(party(role="contact", name=contact.name, country=customer.country, ref_id=contact.id))
    return parties


def screen_quote(
    session: Session,
    *,
    quote_id: str,
    customer: Customer,
    sites: list[Site],
    eccns_by_country: dict[str, list[str]],
    actor: str,
) -> ScreenResult:
    """Screen the quote's parties and its export classifications per destination; no commit."""
    module = backend()
    if module is None:
        return ScreenResult("unavailable")
    ensure_provider_registered()
    findings = export_findings(session, eccns_by_country)
    outcome = module.screen_parties(
        session,
        ref_type=REF_TYPE,
        ref_id=quote_id,
        parties=parties_for(session, customer, sites),
        actor=actor,
        commit=False,
        export_findings=findings,
    )
    reasons = [str(r) for r in (outcome.reasons or [])]
    return ScreenResult("held" if outcome.held else "clear", getattr(outcome, "case_id", None), reasons)


def export_findings(session: Session, eccns_by_country: dict[str, list[str]]) -> list[Any]:
    """Today's embargo / licence findings for every (ECCN, destination) of the quote (dated rules)."""
    module = backend()
    if module is None:
        return []
    today = clock.now().date()
    return [
        finding
        for country, eccns in sorted(eccns_by_country.items())
        for eccn in eccns
        for finding in module.check_export(session, eccn=eccn, destination_country=country, on_date=today)
    ]


def unreviewed_export(session: Session, quote_id: str, eccns_by_country: dict[str, list[str]]) -> list[str]:
    """Export findings in force now that the quote's compliance case never held (e.g. a rule that started
    after pricing): acceptance must wait for a re-price, which screens and holds them for review."""
    module = backend()
    findings = export_findings(session, eccns_by_country)
    if module is None or not findings:
        return []
    return list(
        module.unreviewed_export_findings(session, ref_type=REF_TYPE, ref_id=quote_id, findings=findings)
    )


def on_hold(session: Session, quote_id: str) -> bool:
    module = backend()
    return bool(module is not None and module.is_on_hold(session, REF_TYPE, quote_id))


def open_deals(session: Session) -> Iterator[tuple[str, str, list[Any]]]:
    """Every open quote and its parties, so the compliance feature can re-screen when its list changes."""
    from turnup.quoting.orm import Quote, QuoteItem

    for quote in session.scalars(select(Quote).where(Quote.state.in_(OPEN_STATES)).order_by(Quote.id)):
        customer = session.get(Customer, quote.customer_id)
        if customer is None:
            continue
        site_ids = sorted(
            {i.site_id for i in session.scalars(select(QuoteItem).where(QuoteItem.quote_id == quote.id))}
        )
        sites = [s for s in (session.get(Site, sid) for sid in site_ids) if s is not None]
        yield REF_TYPE, quote.id, parties_for(session, customer, sites)


def ensure_provider_registered() -> bool:
    """Register ``open_deals`` with the compliance module once (idempotent); False when it is absent."""
    global _registered_with
    module = backend()
    if module is None:
        return False
    if _registered_with is not module:
        register = getattr(module, "register_open_deal_provider", None)
        if register is not None:
            register(open_deals)
        _registered_with = module
    return True
