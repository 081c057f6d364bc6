"""Export compliance: party screening against a CSL-layout list, dated export rules, a review queue.

The Python API other features use (quotes, orders, onboarding)::

    screen_parties(session, *, ref_type, ref_id, parties, actor, commit=False, export_findings=())
        -> ScreeningOutcome   # party hits and export findings are held in one reviewable case
    unreviewed_export_findings(session, *, ref_type, ref_id, findings) -> list[str]
    check_export(session, *, eccn, destination_country, on_date) -> list[ExportFinding]
    is_on_hold(session, ref_type, ref_id) -> bool
    register_open_deal_provider(fn)   # fn(session) yields (ref_type, ref_id, parties)
    rescreen_open_deals(session, actor)
"""

from turnup.compliance.rules import ExportFinding
from turnup.compliance.services import (
    Party,
    PartyMatch,
    RescreenResult,
    ScreeningOutcome,
    check_export,
    clear_case,
    confirm_case,
    is_on_hold,
    load_list,
    register_open_deal_provider,
    rescreen_open_deals,
    screen_name,
    screen_parties,
    unregister_open_deal_provider,
    unreviewed_export_findings,
)

__all__ = [
    "ExportFinding",
    "Party",
    "PartyMatch",
    "RescreenResult",
    "ScreeningOutcome",
    "check_export",
    "clear_case",
    "confirm_case",
    "is_on_hold",
    "load_list",
    "register_open_deal_provider",
    "rescreen_open_deals",
    "screen_name",
    "screen_parties",
    "unregister_open_deal_provider",
    "unreviewed_export_findings",
]
