"""Usage use cases: accept records (one, or a file of them), the review queue, and the bill-run hook.

Accepting records (``accept_records``; ``create_usage`` for one, ``import_usage`` for a file):

1. each record is validated into its normal form (``turnup.usage.schemas``);
2. de-duplication by the sender's ``id``: a record whose id was already received (or appears earlier in the
   same file) with the same content is a *duplicate* — counted, nothing written; with different content it
   is *rejected* (409 for a single POST);
3. its service must exist: known to usage (from the delivery events) or to the service inventory; an
   unknown service is rejected (400), and so is a ``relatedParty`` customer that does not own the service;
4. a record whose service was not active at its usage date (``turnup.usage.periods``) is kept but goes to
   the review queue (status ``guided``, ``review.state`` ``open``, with the reason), and is never offered to
   a bill run; the others are rated (``turnup.usage.rating``), which may also send them to review
   (``noUsagePrice``).

All checks happen before anything is written; a single POST is one transaction (a rejected record leaves
the database unchanged). A file import writes its accepted records in one transaction and reports the
rejected lines with the reason (line number, id, field, problem). Each call is audited (``usage.create``
per record through the API; ``usage.import`` per import, with the ids it added).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from turnup import accounts, service_inventory
from turnup.kernel import audit, clock
from turnup.kernel.db import rowcount
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.outbox import publish
from turnup.usage.orm import UsageRecord, UsageService
from turnup.usage.periods import ACTIVITY_REASONS, REASONS, timeline
from turnup.usage.rating import RECORDS, Group, lock_services, rerate_groups
from turnup.usage.render import API, render_usage
from turnup.usage.schemas import UsageCreate, UsageInput, UsageProblem, normalise, parse_record

CHUNK = 500


@dataclass(frozen=True)
class Rejected:
    line: int
    id: str | None
    field: str
    problem: str
    status: int  # 400 bad input, 409 same id with different content

    def document(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "id": self.id,
            "field": self.field,
            "problem": self.problem,
            "status": self.status,
        }


@dataclass
class ImportReport:
    received: int = 0
    accepted: int = 0  # new records written (rated + review)
    rated: int = 0
    review: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # the new records, in input order

    def add(self, other: ImportReport) -> None:
        self.received += other.received
        self.accepted += other.accepted
        self.rated += other.rated
        self.review += other.review
        self.duplicates += other.duplicates
        self.rejected.extend(other.rejected)
        self.ids.extend(other.ids)

    def document(self) -> dict[str, Any]:
        return {
            "@type": "UsageImportReport",
            "received": self.received,
            "accepted": self.accepted,
            "rated": self.rated,
            "review": self.review,
            "duplicates": self.duplicates,
            "rejectedCount": len(self.rejected),
            "rejected": [r.document() for r in self.rejected],
        }


Parsed = tuple[int, UsageInput | Rejected]  # (line number, record or why it is rejected)


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def _known_hashes(session: Session, ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(ids))):
        rows = session.execute(
            select(UsageRecord.id, UsageRecord.content_hash).where(UsageRecord.id.in_(chunk))
        )
        found.update((rid, digest) for rid, digest in rows)
    return found


@dataclass(frozen=True)
class _ServiceFacts:
    customer_id: str | None
    billing_account_id: str | None
    known_to_usage: bool


def _service_facts(session: Session, service_ids: Iterable[str]) -> dict[str, _ServiceFacts]:
    """What is known of these services (usage's own record, locked; else the service inventory's)."""
    ids = sorted(set(service_ids))
    known = lock_services(session, ids)
    facts = {sid: _ServiceFacts(s.customer_id, s.billing_account_id, True) for sid, s in known.items()}
    missing = [sid for sid in ids if sid not in known]
    accounts_of: dict[str, str | None] = {}
    for chunk in _chunks(missing):
        for view in service_inventory.service_views(session, chunk):
            if view.customer_id not in accounts_of:
                customer = accounts.find_customer(session, view.customer_id)
                accounts_of[view.customer_id] = customer.billing_account_id if customer else None
            facts[view.id] = _ServiceFacts(view.customer_id, accounts_of[view.customer_id], False)
    return facts


def accept_records(session: Session, parsed: Sequence[Parsed], *, source: str, actor: str) -> ImportReport:
    """Check, de-duplicate, write and rate records (in the caller's transaction; never commits)."""
    report = ImportReport(received=len(parsed))
    candidates: list[tuple[int, UsageInput]] = []
    for line, item in parsed:
        if isinstance(item, Rejected):
            report.rejected.append(item)
        else:
            candidates.append((line, item))
    known = _known_hashes(session, [r.id for _, r in candidates])
    seen: dict[str, str] = {}
    fresh: list[tuple[int, UsageInput, str]] = []
    for line, record in candidates:
        digest = record.content_hash()
        earlier = known.get(record.id) or seen.get(record.id)
        if earlier is None:
            seen[record.id] = digest
            fresh.append((line, record, digest))
        elif earlier == digest:
            report.duplicates += 1
        else:
            report.rejected.append(
                Rejected(
                    line, record.id, "id", f"usage {record.id!r} was already received with other content", 409
                )
            )
    facts = _service_facts(session, [r.service_id for _, r, _ in fresh])
    changes = timeline(session, [sid for sid, f in facts.items() if f.known_to_usage])
    now = clock.now()
    rows: list[dict[str, Any]] = []
    groups: set[Group] = set()
    for line, record, digest in fresh:
        fact = facts.get(record.service_id)
        if fact is None:
            report.rejected.append(
                Rejected(line, record.id, "relatedService.id", f"unknown service {record.service_id!r}", 400)
            )
            continue
        if record.customer_id is not None and record.customer_id != fact.customer_id:
            report.rejected.append(
                Rejected(
                    line,
                    record.id,
                    "relatedParty",
                    f"customer {record.customer_id!r} does not own service {record.service_id!r}",
                    400,
                )
            )
            continue
        reason = (
            changes.reason_not_billable(record.service_id, record.usage_date)
            if fact.known_to_usage
            else "beforeActivation"
        )
        rows.append(
            {
                "id": record.id,
                "content_hash": digest,
                "usage_date": record.usage_date,
                "period": record.period,
                "usage_type": record.usage_type,
                "quantity": record.quantity,
                "description": record.description,
                "service_id": record.service_id,
                "customer_id": fact.customer_id,
                "billing_account_id": fact.billing_account_id,
                "status": "guided" if reason else "rated",
                "review_state": "open" if reason else None,
                "review_reason": reason,
                "review_message": REASONS[reason] if reason else None,
                "source": source[:200],
                "created_at": now,
                "updated_at": now,
            }
        )
        if reason is None:
            groups.add((record.service_id, record.usage_type, record.period))
        report.ids.append(record.id)
    if rows:
        session.execute(insert(RECORDS), rows)
        rerate_groups(session, groups)
    report.accepted = len(rows)
    if report.ids:
        statuses = _statuses(session, report.ids)
        report.rated = sum(1 for s in statuses.values() if s == "rated")
        report.review = report.accepted - report.rated
    return report


def _statuses(session: Session, ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(ids):
        rows = session.execute(select(UsageRecord.id, UsageRecord.status).where(UsageRecord.id.in_(chunk)))
        found.update((rid, status) for rid, status in rows)
    return found


def parse_one(line: int, doc: Any) -> Parsed:
    """A record document (or the problem found reading its line) checked into its normal form."""
    try:
        if isinstance(doc, UsageProblem):
            raise doc
        return line, parse_record(doc)
    except UsageProblem as problem:
        record_id = doc.get("id") if isinstance(doc, dict) and isinstance(doc.get("id"), str) else None
        return line, Rejected(line, record_id, problem.field, problem.problem, 400)


def get_usage(session: Session, usage_id: str, *, lock: bool = False) -> UsageRecord:
    record = session.get(UsageRecord, usage_id, with_for_update=lock or None, populate_existing=True)
    if record is None:
        raise NotFound(f"usage {usage_id!r} not found")
    return record


def create_usage(session: Session, data: UsageCreate, actor: str) -> tuple[UsageRecord, bool]:
    """Accept one record (the API's POST). Returns it and whether it was created (False: the same record was
    already received). Bad input: ``InvalidInput`` (400); same id with other content: ``Conflict`` (409)."""
    try:
        record = normalise(data)
    except UsageProblem as problem:
        raise InvalidInput(str(problem)) from None
    report = accept_records(session, [(1, record)], source="api", actor=actor)
    if report.rejected:
        bad = report.rejected[0]
        error = Conflict if bad.status == 409 else InvalidInput
        raise error(f"{bad.field}: {bad.problem}")
    created = bool(report.ids)
    stored = get_usage(session, record.id)
    if created:
        audit.record(
            session,
            actor=actor,
            action="usage.create",
            resource_type="usage",
            resource_id=stored.id,
            details={"serviceId": stored.service_id, "status": stored.status, "reason": stored.review_reason},
        )
        publish(
            session,
            api=API,
            event_type="UsageCreateEvent",
            resource_type="usage",
            resource=render_usage(stored),
        )
        session.commit()
    return stored, created


def import_usage(
    session: Session, parsed: Sequence[Parsed], *, source: str, actor: str, commit: bool = True
) -> ImportReport:
    """Accept a file's records: the accepted ones are written (one transaction), rejected lines reported."""
    report = accept_records(session, parsed, source=source, actor=actor)
    if report.ids or report.rejected:
        audit.record(
            session,
            actor=actor,
            action="usage.import",
            resource_type="usageImport",
            resource_id=source[:100],
            details={
                "received": report.received,
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "rejected": len(report.rejected),
                "ids": report.ids,
            },
        )
    if commit:
        session.commit()
    return report


# ------------------------------------------------------------------------------------------ review queue


def _ensure_service(session: Session, service_id: str) -> UsageService:
    """Usage's record of the service (locked), made from the service inventory if usage has none yet."""
    found = lock_services(session, [service_id]).get(service_id)
    if found is not None:
        return found
    views = service_inventory.service_views(session, [service_id])
    if not views:
        raise Conflict(f"service {service_id!r} is unknown")
    view = views[0]
    customer = accounts.find_customer(session, view.customer_id)
    service = UsageService(
        service_id=view.id,
        customer_id=view.customer_id,
        billing_account_id=customer.billing_account_id if customer else None,
        offering_id=view.offering_id,
    )
    session.add(service)
    session.flush()
    return service


def _announce_state(session: Session, record: UsageRecord) -> None:
    session.refresh(record)
    publish(
        session,
        api=API,
        event_type="UsageStateChangeEvent",
        resource_type="usage",
        resource=render_usage(record),
    )


def rerate_review(
    session: Session, usage_id: str, *, force: bool, note: str | None, actor: str
) -> UsageRecord:
    """Resolve a review item by rating it: allowed when its service is now known to have been active at the
    usage date, or (``force``) whatever the activity record says. ``Conflict`` when it is not open, is still
    not billable (without ``force``), or there is no usage price."""
    record = get_usage(session, usage_id, lock=True)
    if record.review_state != "open":
        raise Conflict(f"usage {usage_id!r} is not in the review queue", reason="Illegal state transition")
    _ensure_service(session, record.service_id)
    reason = timeline(session, [record.service_id]).reason_not_billable(record.service_id, record.usage_date)
    if reason and not force:
        raise Conflict(
            f"usage {usage_id!r} is still not billable: {reason} ({REASONS[reason]}); "
            "use force to bill it anyway",
            reason="Not billable",
        )
    before = record.review_reason
    session.execute(
        update(RECORDS)
        .where(RECORDS.c.id == usage_id)
        .values(
            status="rated",
            amount=None,
            review_state="resolved",
            resolution=(note or ("re-rated by an operator" if reason else "re-rated"))[:500],
            updated_at=clock.now(),
        )
    )
    rerate_groups(session, [(record.service_id, record.usage_type, record.period)])
    session.refresh(record)
    if record.status != "rated":
        raise Conflict(f"usage {usage_id!r}: no usage price for {record.usage_type!r}", reason="Not billable")
    audit.record(
        session,
        actor=actor,
        action="usage.review.rerate",
        resource_type="usage",
        resource_id=usage_id,
        details={"reason": before, "stillNotActive": reason, "forced": force, "note": note},
    )
    _announce_state(session, record)
    session.commit()
    return record


def write_off(session: Session, usage_id: str, *, note: str, actor: str) -> UsageRecord:
    """Resolve a review item by writing it off: it is never billed (status ``rejected``)."""
    record = get_usage(session, usage_id, lock=True)
    if record.review_state != "open":
        raise Conflict(f"usage {usage_id!r} is not in the review queue", reason="Illegal state transition")
    record.status, record.review_state = "rejected", "writtenOff"
    record.resolution, record.updated_at = note[:500], clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="usage.review.writeOff",
        resource_type="usage",
        resource_id=usage_id,
        details={"reason": record.review_reason, "note": note},
    )
    _announce_state(session, record)
    session.commit()
    return record


def reassess_service(session: Session, service_id: str, since: datetime, why: str) -> None:
    """After usage learnt of a state change of the service from ``since`` on: its unbilled usage from then on
    follows the activity record — review items held for activity reasons that are now billable are rated,
    rated records that are no longer billable go to review — and the groups touched are re-rated. Never
    commits (the consumer's transaction)."""
    lock_services(session, [service_id])
    changes = timeline(session, [service_id])
    rows = session.execute(
        select(
            UsageRecord.id,
            UsageRecord.usage_date,
            UsageRecord.usage_type,
            UsageRecord.period,
            UsageRecord.status,
            UsageRecord.review_reason,
        ).where(
            UsageRecord.service_id == service_id,
            UsageRecord.usage_date >= since,
            (UsageRecord.status == "rated")
            | ((UsageRecord.review_state == "open") & UsageRecord.review_reason.in_(ACTIVITY_REASONS)),
        )
    ).all()
    now = clock.now()
    groups: set[Group] = set()
    for row in rows:
        reason = changes.reason_not_billable(service_id, row.usage_date)
        if row.status == "rated" and reason:
            values: dict[str, Any] = {
                "status": "guided",
                "amount": None,
                "tiers": None,
                "currency": None,
                "price_id": None,
                "price_source": None,
                "rated_at": None,
                "review_state": "open",
                "review_reason": reason,
                "review_message": REASONS[reason],
            }
        elif row.status == "guided" and reason is None:
            values = {"status": "rated", "amount": None, "review_state": "resolved", "resolution": why[:500]}
        elif row.status == "guided" and reason != row.review_reason:
            values = {"review_reason": reason, "review_message": REASONS[str(reason)]}
        else:
            continue
        session.execute(update(RECORDS).where(RECORDS.c.id == row.id).values(updated_at=now, **values))
        groups.add((service_id, row.usage_type, row.period))
    if groups:
        rerate_groups(session, groups)


# ------------------------------------------------------------------------------------------ bill-run hook


@dataclass(frozen=True)
class RatedUsage:
    """A rated, not yet billed usage record, as a bill run takes it."""

    id: str
    service_id: str
    customer_id: str | None
    billing_account_id: str | None
    usage_date: datetime
    usage_type: str
    quantity: Decimal
    amount: Decimal
    currency: str
    price_id: str | None
    tiers: tuple[dict[str, Any], ...]


def unbilled_rated_usage(
    session: Session,
    period_start: datetime,
    period_end: datetime,
    *,
    service_ids: Iterable[str] | None = None,
    billing_account_id: str | None = None,
) -> list[RatedUsage]:
    """Rated usage not billed yet with ``period_start <= usageDate < period_end``, of these services and/or
    this billing account (both optional), in (service, usage date, id) order. Never includes usage held
    for review, written off or already billed."""
    stmt = select(UsageRecord).where(
        UsageRecord.status == "rated",
        UsageRecord.amount.is_not(None),
        UsageRecord.usage_date >= period_start,
        UsageRecord.usage_date < period_end,
    )
    if billing_account_id is not None:
        stmt = stmt.where(UsageRecord.billing_account_id == billing_account_id)
    ids = sorted(set(service_ids)) if service_ids is not None else None
    out: list[RatedUsage] = []
    for chunk in _chunks(ids) if ids is not None else [None]:
        query = stmt if chunk is None else stmt.where(UsageRecord.service_id.in_(chunk))
        for r in session.scalars(
            query.order_by(UsageRecord.service_id, UsageRecord.usage_date, UsageRecord.id)
        ):
            assert r.amount is not None and r.currency is not None
            out.append(
                RatedUsage(
                    r.id,
                    r.service_id,
                    r.customer_id,
                    r.billing_account_id,
                    r.usage_date,
                    r.usage_type,
                    Decimal(r.quantity),
                    Decimal(r.amount),
                    r.currency,
                    r.price_id,
                    tuple(r.tiers or ()),
                )
            )
    return out


def mark_billed(
    session: Session, usage_ids: Iterable[str], bill_ref: str, *, actor: str = "system:billing"
) -> int:
    """Mark rated usage as billed on ``bill_ref`` (in the caller's transaction; never commits). Idempotent:
    records already billed on this ``bill_ref`` are left as they are. A record that is unknown, not rated
    (held for review, written off) or billed on another bill is a ``Conflict`` naming it, and nothing is
    marked. Returns how many records were newly marked. A record is billed once only: the update is
    conditional on ``status = 'rated'``, so of two bill runs marking it at once one finds it billed."""
    if not bill_ref or len(bill_ref) > 100:
        raise InvalidInput("bill_ref: 1 to 100 characters")
    ids = sorted(set(usage_ids))
    current: dict[str, tuple[str, str | None]] = {}
    for chunk in _chunks(ids):
        for rid, status, ref in session.execute(
            select(UsageRecord.id, UsageRecord.status, UsageRecord.bill_ref).where(UsageRecord.id.in_(chunk))
        ):
            current[rid] = (status, ref)
    for rid in ids:
        if rid not in current:
            raise Conflict(f"usage {rid!r} is unknown")
        status, ref = current[rid]
        if status == "billed" and ref != bill_ref:
            raise Conflict(f"usage {rid!r} is already billed on {ref!r}")
        if status not in ("rated", "billed"):
            raise Conflict(f"usage {rid!r} is not billable (status {status})")
    todo = [rid for rid in ids if current[rid][0] == "rated"]
    now = clock.now()
    marked = 0
    for chunk in _chunks(todo):
        done = rowcount(
            session.execute(
                update(RECORDS)
                .where(RECORDS.c.id.in_(chunk), RECORDS.c.status == "rated")
                .values(status="billed", bill_ref=bill_ref, billed_at=now, updated_at=now)
            )
        )
        if done != len(chunk):
            raise Conflict("usage was billed by another bill run at the same time; run it again")
        marked += done
    if marked:
        audit.record(
            session,
            actor=actor,
            action="usage.billed",
            resource_type="usage",
            resource_id=bill_ref,
            details={"billRef": bill_ref, "ids": todo},
        )
    return marked
