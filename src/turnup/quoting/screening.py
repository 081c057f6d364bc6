"""Export-compliance hand-off for quotes, through ``turnup.compliance``'s face: ``screen_parties``, ``Party``,
``check_export``, ``unreviewed_export_findings``, ``is_on_hold`` and ``register_open_deal_provider``.

A screening hit never loses the deal: the quote keeps its prices and holds and is put on *compliance hold*
with the reasons; it cannot be accepted until ``is_on_hold`` says the case was cleared. Open quotes are
registered (on import) as an open-deal provider, so a changed screening list re-screens them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import accounts, compliance
from turnup.accounts import CustomerInfo, SiteInfo
from turnup.compliance import ExportFinding, Party
from turnup.kernel import clock
from turnup.quoting.orm import Quote, QuoteItem

REF_TYPE = "quote"
OPEN_STATES = ("inProgress", "pending", "approved")


@dataclass
class ScreenResult:
    status: str  # clear | held
    case_id: str | None = None
    reasons: list[str] = field(default_factory=list)


def parties_for(session: Session, customer: CustomerInfo, sites: list[SiteInfo]) -> list[Party]:
    """The customer, every site of the quote and every contact of the customer, as parties to screen."""
    parties = [Party(role="customer", name=customer.name, country=customer.country, ref_id=customer.id)]
    for site in sites:
        parties.append(Party(role="site", name=site.name, country=site.country, ref_id=site.id))
    for contact in accounts.customer_contacts(session, customer.id):
        parties.append(Party(role="contact", name=contact.name, country=customer.country, ref_id=contact.id))
    return parties


def screen_quote(
    session: Session,
    *,
    quote_id: str,
    customer: CustomerInfo,
    sites: list[SiteInfo],
    eccns_by_country: dict[str, list[str]],
    actor: str,
) -> ScreenResult:
    """Screen the quote's parties and its export classifications per destination; no commit."""
    outcome = compliance.screen_parties(
        session,
        ref_type=REF_TYPE,
        ref_id=quote_id,
        parties=parties_for(session, customer, sites),
        actor=actor,
        commit=False,
        export_findings=export_findings(session, eccns_by_country),
    )
    reasons = [str(r) for r in outcome.reasons]
    return ScreenResult("held" if outcome.held else "clear", outcome.case_id, reasons)


def export_findings(session: Session, eccns_by_country: dict[str, list[str]]) -> list[ExportFinding]:
    """Today's embargo / licence findings for every (ECCN, destination) of the quote (dated rules)."""
    today = clock.now().date()
    return [
        finding
        for country, eccns in sorted(eccns_by_country.items())
        for eccn in eccns
        for finding in compliance.check_export(session, eccn=eccn, destination_country=country, on_date=today)
    ]


def unreviewed_export(session: Session, quote_id: str, eccns_by_country: dict[str, list[str]]) -> list[str]:
    """Export findings in force now that the quote's compliance case never held (e.g. a rule that started
    after pricing): acceptance must wait for a re-price, which screens and holds them for review."""
    findings = export_findings(session, eccns_by_country)
    if not findings:
        return []
    return compliance.unreviewed_export_findings(
        session, ref_type=REF_TYPE, ref_id=quote_id, findings=findings
    )


def on_hold(session: Session, quote_id: str) -> bool:
    """True while the quote's compliance case holds it."""
    return compliance.is_on_hold(session, REF_TYPE, quote_id)


@compliance.register_open_deal_provider
def open_deals(session: Session) -> Iterator[tuple[str, str, list[Party]]]:
    """Every open quote and its parties, so the compliance feature can re-screen when its list changes."""
    for quote in session.scalars(select(Quote).where(Quote.state.in_(OPEN_STATES)).order_by(Quote.id)):
        customer = accounts.find_customer(session, quote.customer_id)
        if customer is None:
            continue
        site_ids = sorted(
            {i.site_id for i in session.scalars(select(QuoteItem).where(QuoteItem.quote_id == quote.id))}
        )
        sites = [s for s in (accounts.find_site(session, sid) for sid in site_ids) if s is not None]
        yield REF_TYPE, quote.id, parties_for(session, customer, sites)
