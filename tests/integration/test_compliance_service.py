"""Compliance service on both databases: holds, the review queue, list loading and re-screening."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.compliance import (
    Party,
    check_export,
    clear_case,
    confirm_case,
    is_on_hold,
    load_list,
    register_open_deal_provider,
    rescreen_open_deals,
    screen_parties,
    unregister_open_deal_provider,
    unreviewed_export_findings,
)
from turnup.compliance.config import SAMPLE_LIST
from turnup.compliance.matching import csv_text
from turnup.compliance.orm import ScreeningCase, ScreeningListVersion
from turnup.kernel.audit import AuditEntry
from turnup.kernel.errors import Conflict, InvalidInput
from turnup.kernel.outbox import OutboxEvent

CLEAN = [Party("customer", "Northwind Fibre Ltd", "GB", "cust-1"), Party("site", "HQ", "GB", "site-1")]
HIT = [Party("customer", "Zorblax Dynamics GmbH", "AE", "cust-2"), Party("contact", "Jane Roe", "AE", "c-2")]


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_clean_parties_are_not_held_and_open_no_case(session: Session) -> None:
    outcome = screen_parties(
        session, ref_type="quote", ref_id="q1", parties=CLEAN, actor="user:sam", commit=True
    )
    assert (outcome.held, outcome.case_id, outcome.matches, outcome.reasons) == (False, None, [], [])
    assert _count(session, ScreeningCase) == 0
    assert not is_on_hold(session, "quote", "q1")
    audit = session.scalars(select(AuditEntry).where(AuditEntry.resource_id == "q1")).all()
    assert [(a.action, a.actor, a.details["matches"]) for a in audit] == [
        ("compliance.screen", "user:sam", [])
    ]


def test_hit_opens_a_case_and_holds_the_deal(session: Session) -> None:
    outcome = screen_parties(
        session, ref_type="quote", ref_id="q2", parties=HIT, actor="user:sam", commit=True
    )
    assert outcome.held is True and outcome.case_id is not None
    assert [(m.party_role, m.entry_id, m.score) for m in outcome.matches] == [("customer", "SYN-0001", 100.0)]
    assert outcome.reasons == [
        "customer 'Zorblax Dynamics GmbH' matches 'Zorblax Dynamics LLC' "
        "(Entity List (EL) - Bureau of Industry and Security, SYN-0001) with score 100"
    ]
    assert is_on_hold(session, "quote", "q2")
    case = session.get(ScreeningCase, outcome.case_id)
    assert (case.state, case.ref_type, case.ref_id) == ("open", "quote", "q2")
    events = session.scalars(select(OutboxEvent).where(OutboxEvent.resource_id == case.id)).all()
    assert [e.event_type for e in events] == ["ScreeningCaseCreateEvent"]
    assert events[0].payload["event"]["screeningCase"]["onHold"] is True
    # screening the same deal again updates the same case, never a second one
    again = screen_parties(session, ref_type="quote", ref_id="q2", parties=HIT, actor="user:sam", commit=True)
    assert again.case_id == outcome.case_id and _count(session, ScreeningCase) == 1
    session.refresh(case)
    assert case.screen_count == 2


def test_embargoed_country_holds_with_the_reason(session: Session) -> None:
    outcome = screen_parties(
        session,
        ref_type="order",
        ref_id="o1",
        parties=[Party("site", "Branch Office Havana", "CU", "s9")],
        actor="sys",
        commit=True,
    )
    assert outcome.held
    assert [(m.kind, m.entry_id) for m in outcome.matches] == [("embargo", "EMB-CU")]
    assert "destination CU is embargoed" in outcome.reasons[0]


def test_commit_false_writes_in_the_callers_transaction_only(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        outcome = screen_parties(s, ref_type="quote", ref_id="q3", parties=HIT, actor="sys")
        assert outcome.held and is_on_hold(s, "quote", "q3")  # visible inside the transaction
        s.rollback()
    with session_factory() as s:
        assert _count(s, ScreeningCase) == 0 and _count(s, AuditEntry) == 0 and _count(s, OutboxEvent) == 0
        assert not is_on_hold(s, "quote", "q3")


def test_bad_party_is_invalid_and_writes_nothing(session: Session) -> None:
    with pytest.raises(InvalidInput, match=r"parties\[1\].role: must be one of"):
        screen_parties(
            session,
            ref_type="quote",
            ref_id="q4",
            parties=[CLEAN[0], Party("supplier", "X Y Z", None, None)],
            actor="sys",
        )  # type: ignore[arg-type]
    session.rollback()
    assert _count(session, AuditEntry) == 0


def test_clear_and_confirm_need_a_reason_are_audited_and_only_from_open(session: Session) -> None:
    a = screen_parties(session, ref_type="quote", ref_id="qa", parties=HIT, actor="sys", commit=True)
    b = screen_parties(session, ref_type="quote", ref_id="qb", parties=HIT, actor="sys", commit=True)
    with pytest.raises(InvalidInput, match="reason"):
        clear_case(session, a.case_id, "  ", "user:rev")
    session.rollback()
    cleared = clear_case(session, a.case_id, "different company: registry number checked", "user:rev")
    confirmed = confirm_case(session, b.case_id, "same address as the listed entity", "user:rev")
    assert (cleared.state, cleared.resolved_by) == ("cleared", "user:rev")
    assert (confirmed.state, confirmed.resolution_reason) == (
        "confirmed",
        "same address as the listed entity",
    )
    assert not is_on_hold(session, "quote", "qa")
    assert is_on_hold(session, "quote", "qb")  # a confirmed match stays held, it is not dropped
    with pytest.raises(Conflict, match="is cleared; only an open case"):
        confirm_case(session, a.case_id, "changed my mind", "user:rev")
    session.rollback()
    audits = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.resource_type == "screeningCase",
            AuditEntry.action.in_(("screeningCase.clear", "screeningCase.confirm")),
        )
        .order_by(AuditEntry.at)
    ).all()
    assert [(x.action, x.actor, x.comment) for x in audits] == [
        ("screeningCase.clear", "user:rev", "different company: registry number checked"),
        ("screeningCase.confirm", "user:rev", "same address as the listed entity"),
    ]
    changes = session.scalars(
        select(OutboxEvent.event_type)
        .where(OutboxEvent.resource_id == a.case_id)
        .order_by(OutboxEvent.event_time)
    ).all()
    assert changes == ["ScreeningCaseCreateEvent", "ScreeningCaseStateChangeEvent"]


def test_check_export_uses_dated_rules(session: Session) -> None:
    assert [
        f.rule_id
        for f in check_export(session, eccn="5A002", destination_country="RU", on_date=date(2023, 1, 1))
    ] == ["LIC-5A002-RESTRICTED"]
    assert check_export(session, eccn="5A002", destination_country="RU", on_date=date(2021, 1, 1)) == []


def test_export_findings_are_held_in_the_case_and_cleared_by_review(session: Session) -> None:
    # given a clean customer buying encryption hardware (5A002) for a destination needing a licence
    findings = check_export(session, eccn="5A002", destination_country="RU", on_date=date(2026, 11, 25))
    assert [f.rule_id for f in findings] == ["LIC-5A002-RESTRICTED"]
    assert unreviewed_export_findings(session, ref_type="quote", ref_id="qx", findings=findings) == [
        "export of ECCN 5A002 to RU: licence_required (LIC-5A002-RESTRICTED): encryption hardware needs an "
        "export licence for this destination (sample rule)"
    ]
    # when the deal is screened with its export findings, it is held in a reviewable case
    outcome = screen_parties(
        session,
        ref_type="quote",
        ref_id="qx",
        parties=CLEAN,
        actor="user:sam",
        commit=True,
        export_findings=findings,
    )
    assert outcome.held is True and outcome.case_id is not None
    assert [(m.party_role, m.kind, m.entry_id) for m in outcome.matches] == [
        ("export", "licence_required", "LIC-5A002-RESTRICTED")
    ]
    assert unreviewed_export_findings(session, ref_type="quote", ref_id="qx", findings=findings) == []
    # then a reviewer who holds the licence clears it, and re-screening keeps it cleared
    clear_case(session, outcome.case_id, "licence BIS-D123456 on file", "user:officer")
    assert not is_on_hold(session, "quote", "qx")
    again = screen_parties(
        session,
        ref_type="quote",
        ref_id="qx",
        parties=CLEAN,
        actor="user:sam",
        commit=True,
        export_findings=findings,
    )
    assert again.held is False and not is_on_hold(session, "quote", "qx")


# --- list changes -----------------------------------------------------------------------------------


@pytest.fixture
def open_deals() -> Iterator[dict[str, list[Party]]]:
    deals: dict[str, list[Party]] = {}

    def provider(session: Session):  # type: ignore[no-untyped-def]
        for ref_id, parties in sorted(deals.items()):
            yield "quote", ref_id, parties

    register_open_deal_provider(provider)
    yield deals
    unregister_open_deal_provider(provider)


def _list_with(*extra: dict[str, str]) -> str:
    base = SAMPLE_LIST.read_text(encoding="utf-8")
    return base + csv_text(extra).split("\n", 1)[1]


NEW_ENTRY = {
    "_id": "SYN-0100",
    "source": "Entity List (EL) - Bureau of Industry and Security",
    "name": "Northwind Fibre Holdings",
    "addresses": "Somewhere, GB",
    "remarks": "SYNTHETIC",
}


def test_new_list_puts_a_newly_matching_open_deal_on_hold(session: Session, open_deals) -> None:  # type: ignore[no-untyped-def]
    open_deals["q-clean"] = CLEAN
    assert not screen_parties(
        session, ref_type="quote", ref_id="q-clean", parties=CLEAN, actor="s", commit=True
    ).held
    version, result = load_list(session, _list_with(NEW_ENTRY), "csl-2025-06.csv", "user:officer")
    assert version.entry_count == 16
    assert result.screened == 1
    assert [(t, i) for t, i, _ in result.held] == [("quote", "q-clean")]
    assert is_on_hold(session, "quote", "q-clean")
    case = session.scalars(select(ScreeningCase)).one()
    assert [m["entryId"] for m in case.matches] == ["SYN-0100"]
    assert session.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == version.id)).all() == [
        "screeningList.load"
    ]


def test_cleared_case_stays_cleared_unless_the_match_changes(session: Session, open_deals) -> None:  # type: ignore[no-untyped-def]
    open_deals["q-hit"] = HIT
    first = screen_parties(session, ref_type="quote", ref_id="q-hit", parties=HIT, actor="s", commit=True)
    clear_case(session, first.case_id, "not the listed company", "user:rev")
    # the same list again (or a list where nothing new matches): still cleared
    load_list(session, _list_with(NEW_ENTRY), "v2.csv", "user:officer")
    assert not is_on_hold(session, "quote", "q-hit")
    assert session.get(ScreeningCase, first.case_id).state == "cleared"
    # a list that makes the contact match too: the case reopens, the deal is held again
    contact_entry = {
        "_id": "SYN-0200",
        "source": "SDN",
        "name": "Jane Roe",
        "nationalities": "AE",
        "remarks": "SYNTHETIC",
    }
    _, result = load_list(session, _list_with(NEW_ENTRY, contact_entry), "v3.csv", "user:officer")
    assert [(i, c) for _, i, c in result.held] == [("q-hit", first.case_id)]
    case = session.get(ScreeningCase, first.case_id)
    session.refresh(case)
    assert case.state == "open" and case.resolution_reason is None
    assert sorted(m["entryId"] for m in case.matches) == ["SYN-0001", "SYN-0200"]
    actions = session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.resource_id == case.id)
        .order_by(AuditEntry.at, AuditEntry.action)
    ).all()
    assert actions == ["screeningCase.create", "screeningCase.clear", "screeningCase.reopen"]


def test_bad_list_is_refused_naming_the_line_and_changes_nothing(session: Session, open_deals) -> None:  # type: ignore[no-untyped-def]
    bad = csv_text(
        [{"_id": "A", "source": "S", "name": "Okay Name"}, {"_id": "B", "source": "S", "name": ""}]
    )
    with pytest.raises(InvalidInput, match="line 3: name is empty"):
        load_list(session, bad, "bad.csv", "user:officer")
    session.rollback()
    assert _count(session, ScreeningListVersion) == 0 and _count(session, AuditEntry) == 0


def test_rescreen_open_deals_without_list_change(session: Session, open_deals) -> None:  # type: ignore[no-untyped-def]
    open_deals["q1"], open_deals["q2"] = CLEAN, HIT
    result = rescreen_open_deals(session, "user:officer")
    session.commit()
    assert result.screened == 2
    assert [i for _, i, _ in result.held] == ["q2"]
