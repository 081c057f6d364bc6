"""Export compliance use cases: screen parties, review queue, export rules, list loading, re-screening.

``screen_parties`` writes into the caller's transaction and commits only with ``commit=True``; the review
actions (``clear_case``/``confirm_case``) and ``load_list`` commit once at the end, like every service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.compliance.config import compliance_settings
from turnup.compliance.matching import NameMatch, ScreeningIndex
from turnup.compliance.normalize import normalize_name
from turnup.compliance.orm import HOLDING_STATES, ScreeningCase, ScreeningListVersion
from turnup.compliance.render import API, render_case
from turnup.compliance.rules import ExportFinding, evaluate, load_rules
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

PartyRole = Literal["customer", "site", "contact"]
ROLES = ("customer", "site", "contact")


@dataclass(frozen=True)
class Party:
    role: PartyRole
    name: str
    country: str | None = None
    ref_id: str | None = None


@dataclass(frozen=True)
class PartyMatch:
    """A reason to hold: a party matched a list entry, or is located in an embargoed destination."""

    party_role: str
    party_name: str
    party_ref_id: str | None
    party_country: str | None
    kind: str  # "screeningList" | "embargo"
    entry_id: str  # list entry id, or embargo rule id
    entry_name: str
    matched_name: str
    source: str
    programs: str
    score: float
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        party = self.party_ref_id or normalize_name(self.party_name)
        return f"{self.party_role}|{party}|{self.kind}:{self.entry_id}"

    def describe(self) -> str:
        if self.party_role == "export":
            return (
                f"export of {self.party_name} to {self.party_country}: {self.kind} ({self.entry_id}): "
                f"{self.entry_name}"
            )
        if self.kind == "embargo":
            return (
                f"{self.party_role} {self.party_name!r}: destination {self.party_country} is embargoed "
                f"({self.entry_id}: {self.entry_name})"
            )
        return (
            f"{self.party_role} {self.party_name!r} matches {self.entry_name!r} "
            f"({self.source}, {self.entry_id}) with score {self.score:g}"
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        data["key"] = self.key
        return {_camel(k): v for k, v in data.items()}


@dataclass
class ScreeningOutcome:
    held: bool
    case_id: str | None
    matches: list[PartyMatch] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


# --- the list in force ------------------------------------------------------------------------------

_index_cache: dict[str, ScreeningIndex] = {}


def _cached_index(sha256: str, load: Callable[[], str]) -> ScreeningIndex:
    index = _index_cache.get(sha256)
    if index is None:
        index = ScreeningIndex.from_csv(load())
        if len(_index_cache) > 4:
            _index_cache.clear()
        _index_cache[sha256] = index
    return index


def active_index(session: Session) -> ScreeningIndex:
    """The newest list loaded into the database, else the file at TURNUP_SCREENING_LIST_PATH / sample."""
    current = session.execute(
        select(ScreeningListVersion.id, ScreeningListVersion.sha256)
        .order_by(ScreeningListVersion.loaded_at.desc(), ScreeningListVersion.id.desc())
        .limit(1)
    ).first()
    if current is not None:
        list_id = current.id
        return _cached_index(current.sha256, lambda: session.get(ScreeningListVersion, list_id).content)  # type: ignore[union-attr]
    path = compliance_settings().list_path()
    content = path.read_text(encoding="utf-8")
    return _cached_index(hashlib.sha256(content.encode()).hexdigest(), lambda: content)


def screen_name(
    session: Session, name: str, country: str | None = None, threshold: float | None = None
) -> list[NameMatch]:
    """Ad-hoc screening of one name (no case, nothing written)."""
    limit = compliance_settings().screening_threshold if threshold is None else threshold
    return active_index(session).screen(name, country, limit)


# --- export rules -----------------------------------------------------------------------------------


def check_export(
    session: Session, *, eccn: str | None, destination_country: str, on_date: date
) -> list[ExportFinding]:
    """Embargo and licence findings for shipping an item of ``eccn`` (None: unclassified) on a date."""
    if not destination_country or len(destination_country) != 2:
        raise InvalidInput("destinationCountry: must be an ISO 3166-1 alpha-2 country code")
    rules = load_rules(compliance_settings().rules_path())
    return evaluate(rules, eccn=eccn, destination_country=destination_country, on_date=on_date)


# --- screening parties and the review queue ---------------------------------------------------------


def _find_matches(session: Session, parties: list[Party], threshold: float) -> list[PartyMatch]:
    index = active_index(session)
    today = clock.now().date()
    rules = load_rules(compliance_settings().rules_path())
    found: list[PartyMatch] = []
    for i, party in enumerate(parties):
        if party.role not in ROLES:
            raise InvalidInput(f"parties[{i}].role: must be one of {', '.join(ROLES)}")
        if not party.name or not party.name.strip():
            raise InvalidInput(f"parties[{i}].name: must not be empty")
        for m in index.screen(party.name, party.country, threshold):
            found.append(
                PartyMatch(
                    party.role,
                    party.name,
                    party.ref_id,
                    party.country,
                    "screeningList",
                    m.entry_id,
                    m.entry_name,
                    m.matched_name,
                    m.source,
                    m.programs,
                    m.score,
                    m.notes,
                )
            )
        if party.country:
            for f in evaluate(rules, eccn=None, destination_country=party.country, on_date=today):
                found.append(
                    PartyMatch(
                        party.role,
                        party.name,
                        party.ref_id,
                        party.country,
                        "embargo",
                        f.rule_id,
                        f.reason,
                        party.country,
                        "export rules",
                        "",
                        100.0,
                    )
                )
    unique = {m.key: m for m in found}
    return sorted(unique.values(), key=lambda m: m.key)


def _case_for(session: Session, ref_type: str, ref_id: str, lock: bool = False) -> ScreeningCase | None:
    stmt = select(ScreeningCase).where(ScreeningCase.ref_type == ref_type, ScreeningCase.ref_id == ref_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def _event(session: Session, case: ScreeningCase, event_type: str) -> None:
    publish(
        session, api=API, event_type=event_type, resource_type="screeningCase", resource=render_case(case)
    )


def export_match(finding: ExportFinding) -> PartyMatch:
    """An export-rule finding (embargo or licence required for an ECCN) as a reviewable hold reason."""
    return PartyMatch(
        party_role="export",
        party_name=f"ECCN {finding.eccn or '-'}",
        party_ref_id=f"{finding.eccn or '-'}>{finding.destination_country}",
        party_country=finding.destination_country,
        kind=finding.kind,
        entry_id=finding.rule_id,
        entry_name=finding.reason,
        matched_name="",
        source="exportRules",
        programs="",
        score=100.0,
    )


def unreviewed_export_findings(
    session: Session, *, ref_type: str, ref_id: str, findings: Sequence[ExportFinding]
) -> list[str]:
    """Findings the deal's compliance case has never held for review (each needs a screening first)."""
    case = _case_for(session, ref_type, ref_id)
    reviewed = set(case.fingerprint or []) if case is not None else set()
    return [m.describe() for m in map(export_match, findings) if m.key not in reviewed]


def screen_parties(
    session: Session,
    *,
    ref_type: str,
    ref_id: str,
    parties: list[Party],
    actor: str,
    commit: bool = False,
    export_findings: Sequence[ExportFinding] = (),
) -> ScreeningOutcome:
    """Screen a deal's parties; a hit opens (or updates, or reopens) the deal's compliance case.

    Never rejects: a hit puts the deal on hold in the review queue. A cleared case stays cleared unless
    the screening finds a match it was not cleared for. ``export_findings`` (from ``check_export`` for the
    deal's ECCNs and destinations) are held and reviewed in the same case.
    """
    if not ref_type or not ref_id:
        raise InvalidInput("refType and refId are required")
    threshold = compliance_settings().screening_threshold
    matches = _find_matches(session, parties, threshold) + [export_match(f) for f in export_findings]
    keys = sorted(m.key for m in matches)
    index = active_index(session)
    now = clock.now()
    case = _case_for(session, ref_type, ref_id, lock=True)
    reasons = [m.describe() for m in matches]
    if case is None and matches:
        case = ScreeningCase(
            id=new_id(),
            ref_type=ref_type,
            ref_id=ref_id,
            state="open",
            matches=[m.to_json() for m in matches],
            fingerprint=keys,
            reasons=reasons,
            list_sha256=index.sha256,
            screen_count=1,
            created_at=now,
            updated_at=now,
            last_screened_at=now,
        )
        session.add(case)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="screeningCase.create",
            resource_type="screeningCase",
            resource_id=case.id,
            details={"refType": ref_type, "refId": ref_id, "matches": keys},
        )
        _event(session, case, "ScreeningCaseCreateEvent")
    elif case is not None:
        case.screen_count += 1
        case.last_screened_at = now
        case.list_sha256 = index.sha256
        new_keys = set(keys) - set(case.fingerprint or [])
        if case.state == "cleared" and new_keys:
            case.state = "open"
            case.matches, case.fingerprint, case.reasons = [m.to_json() for m in matches], keys, reasons
            case.resolved_at = case.resolved_by = case.resolution_reason = None
            case.updated_at = now
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="screeningCase.reopen",
                resource_type="screeningCase",
                resource_id=case.id,
                details={"newMatches": sorted(new_keys)},
            )
            _event(session, case, "ScreeningCaseStateChangeEvent")
        elif case.state in HOLDING_STATES and matches and keys != sorted(case.fingerprint or []):
            # still under review (or confirmed): keep every reason ever found visible
            merged = {m["key"]: m for m in case.matches or []}
            merged.update({m.key: m.to_json() for m in matches})
            case.matches = [merged[k] for k in sorted(merged)]
            case.fingerprint = sorted(merged)
            case.reasons = sorted(set(case.reasons or []) | set(reasons))
            case.updated_at = now
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="screeningCase.update",
                resource_type="screeningCase",
                resource_id=case.id,
                details={"newMatches": sorted(new_keys)},
            )
            _event(session, case, "ScreeningCaseAttributeValueChangeEvent")
    audit.record(
        session,
        actor=actor,
        action="compliance.screen",
        resource_type=ref_type,
        resource_id=ref_id,
        details={
            "parties": len(parties),
            "matches": keys,
            "list": index.sha256,
            "caseId": case.id if case else None,
        },
    )
    held = case is not None and case.state in HOLDING_STATES
    outcome_reasons = list(case.reasons or []) if held and case is not None else []
    if held and case is not None and case.state == "confirmed":
        outcome_reasons.insert(0, f"confirmed match: {case.resolution_reason}")
    if commit:
        session.commit()
    return ScreeningOutcome(
        held=held, case_id=case.id if case else None, matches=matches, reasons=outcome_reasons
    )


def is_on_hold(session: Session, ref_type: str, ref_id: str) -> bool:
    case = _case_for(session, ref_type, ref_id)
    return case is not None and case.state in HOLDING_STATES


def get_case(session: Session, case_id: str) -> ScreeningCase:
    case = session.get(ScreeningCase, case_id)
    if case is None:
        raise NotFound(f"screeningCase {case_id!r} not found")
    return case


def _resolve(session: Session, case_id: str, reason: str, actor: str, state: str) -> ScreeningCase:
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise InvalidInput("reason: a reason of at least 3 characters is required")
    case = session.scalars(select(ScreeningCase).where(ScreeningCase.id == case_id).with_for_update()).first()
    if case is None:
        raise NotFound(f"screeningCase {case_id!r} not found")
    if case.state != "open":
        raise Conflict(
            f"state: screeningCase {case_id!r} is {case.state}; only an open case can be {state}",
            reason="Illegal state transition",
        )
    now = clock.now()
    case.state, case.resolved_at, case.resolved_by, case.resolution_reason = state, now, actor, reason
    case.updated_at = now
    session.flush()
    verb = "clear" if state == "cleared" else "confirm"
    audit.record(
        session,
        actor=actor,
        action=f"screeningCase.{verb}",
        resource_type="screeningCase",
        resource_id=case.id,
        details={"refType": case.ref_type, "refId": case.ref_id, "matches": list(case.fingerprint or [])},
        comment=reason,
    )
    _event(session, case, "ScreeningCaseStateChangeEvent")
    session.commit()
    return case


def clear_case(session: Session, case_id: str, reason: str, actor: str) -> ScreeningCase:
    """A reviewer decides the match is a false positive: the deal leaves compliance hold."""
    return _resolve(session, case_id, reason, actor, "cleared")


def confirm_case(session: Session, case_id: str, reason: str, actor: str) -> ScreeningCase:
    """A reviewer confirms the match: the deal stays on hold (it is never silently dropped)."""
    return _resolve(session, case_id, reason, actor, "confirmed")


# --- open deals and list changes --------------------------------------------------------------------

OpenDealProvider = Callable[[Session], Iterable[tuple[str, str, list[Party]]]]
_providers: list[OpenDealProvider] = []


def register_open_deal_provider(fn: OpenDealProvider) -> OpenDealProvider:
    """Register ``fn(session)`` yielding ``(ref_type, ref_id, parties)`` for each open deal (idempotent)."""
    if fn not in _providers:
        _providers.append(fn)
    return fn


def unregister_open_deal_provider(fn: OpenDealProvider) -> None:
    if fn in _providers:
        _providers.remove(fn)


@dataclass
class RescreenResult:
    screened: int = 0
    held: list[tuple[str, str, str]] = field(default_factory=list)  # (ref_type, ref_id, case_id)


def rescreen_open_deals(session: Session, actor: str) -> RescreenResult:
    """Screen every open deal again against the list in force; in the caller's transaction (no commit)."""
    result = RescreenResult()
    for provider in list(_providers):
        for ref_type, ref_id, parties in provider(session):
            outcome = screen_parties(
                session, ref_type=ref_type, ref_id=ref_id, parties=list(parties), actor=actor, commit=False
            )
            result.screened += 1
            if outcome.held and outcome.case_id:
                result.held.append((ref_type, ref_id, outcome.case_id))
    return result


def load_list(
    session: Session, content: str, name: str, actor: str
) -> tuple[ScreeningListVersion, RescreenResult]:
    """Validate and store a new screening list, then re-screen every open deal; commits once."""
    index = ScreeningIndex.from_csv(content)  # raises InvalidInput naming the line
    if not index.entries:
        raise InvalidInput("line 2: the list has no entries", reason="Invalid screening list")
    now = clock.now()
    version = ScreeningListVersion(
        id=new_id(),
        name=name[:300],
        sha256=index.sha256,
        entry_count=len(index.entries),
        content=content,
        loaded_at=now,
        loaded_by=actor,
    )
    session.add(version)
    session.flush()
    _index_cache[index.sha256] = index
    audit.record(
        session,
        actor=actor,
        action="screeningList.load",
        resource_type="screeningList",
        resource_id=version.id,
        details={"name": name, "sha256": index.sha256, "entries": len(index.entries)},
    )
    result = rescreen_open_deals(session, actor)
    session.commit()
    return version, result
