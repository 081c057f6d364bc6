"""Audit trail: who did what to which resource, when, in which request, with the state before and after —
written in the same transaction as the change, and hash-chained so that an edit, insertion or deletion of a
row is detected (``verify``; CLI ``turnup audit verify``).

The chain
---------
Every entry has a ``seq`` (1, 2, 3, … without gaps), the ``prev_hash`` of entry ``seq - 1`` (64 zeros for the
first) and its ``entry_hash``: SHA-256 over a canonical JSON of all its fields, ``seq`` and ``prev_hash``
included (``canonical``). One row, ``audit_chain_head``, holds the newest ``seq`` and hash with an HMAC under
the key from the settings (``turnup.kernel.keys``: outside the database). ``audit_anchor`` rows record the
head at a moment (every ``TURNUP_AUDIT_ANCHOR_EVERY`` entries, in the appending transaction, and on demand:
``turnup audit anchor``, e.g. from cron), with an HMAC too, and optionally a line in
``TURNUP_AUDIT_ANCHOR_FILE``.

Appending, under concurrent writers
-----------------------------------
``record`` adds the row without ``seq``/hashes and remembers its id on the session. Just before the session
commits (a ``before_commit`` hook), the rows this transaction wrote are read back, the head row is locked
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite transactions already hold the database's write lock from
``BEGIN IMMEDIATE``; on PostgreSQL deferred constraints are checked first, so that no lock wait can follow
the head lock), and the rows get the next ``seq`` numbers and their hashes, the head moves on, and the
transaction commits. So the appends of concurrent transactions are serialised only for the last few
statements before ``COMMIT`` (the head lock is taken after every business lock, so it cannot deadlock), and
the chain order is the commit order. A rolled-back transaction leaves no trace in the chain. Code that
inserts audit rows with its own SQL calls ``note_appended`` with the row's id so that the hook chains it.

What the hashes read is the row as the database returns it (``details``/``before``/``after`` after their
JSON round trip, ``at`` with microseconds in UTC), so ``verify`` recomputes exactly the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Text,
    bindparam,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from turnup.kernel import clock, keys
from turnup.kernel.db import Base, JSONDoc, UTCDateTime, table_of
from turnup.kernel.ids import new_id
from turnup.kernel.settings import get_settings

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # the prev_hash of entry 1
HEAD_PURPOSE = "turnup.audit.head"
ANCHOR_PURPOSE = "turnup.audit.anchor"
_PENDING = "turnup.audit.pending"  # session.info: ids of audit rows this transaction wrote, not yet chained
_AFTER = "turnup.audit.after"  # session.info: (entry, callable) whose ``after`` is rendered at commit
_UNFILLED = "turnup.audit.unfilled"  # session.info: entries recorded without before/after
_ROW_CHANGES = "turnup.audit.row-changes"  # session.info: {primary key: (before, after)} of changed rows
_FILE_LINES = "turnup.audit.anchor-lines"  # session.info: anchor lines for the anchor file, after commit
_CHUNK = 500  # ids per ``IN (…)`` read


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(100), index=True)
    resource_id: Mapped[str] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    before: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    after: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    # the chain (set just before commit; NULL only inside the writing transaction)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entry_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditChainHead(Base):
    """The one row (id 1) naming the chain's newest entry, MACed with the key outside the database."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditAnchor(Base):
    """The chain's head at one moment, MACed: a later rewrite of the chain up to ``seq`` cannot match it."""

    __tablename__ = "audit_anchor"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mac: Mapped[str] = mapped_column(String(64))


_ENTRY = table_of(AuditEntry)
_HEAD = table_of(AuditChainHead)
_ANCHOR = table_of(AuditAnchor)
_HASHED = (
    _ENTRY.c.id,
    _ENTRY.c.at,
    _ENTRY.c.actor,
    _ENTRY.c.action,
    _ENTRY.c.resource_type,
    _ENTRY.c.resource_id,
    _ENTRY.c.request_id,
    _ENTRY.c.details,
    _ENTRY.c.comment,
    _ENTRY.c.before,
    _ENTRY.c.after,
)


# --- request id and the state before/after a change -------------------------------------------------------

_request_id: ContextVar[str | None] = ContextVar("turnup_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the HTTP request being served (``turnup.api.request_id``), or None outside a request."""
    return _request_id.get()


def use_request_id(request_id: str | None) -> Token[str | None]:
    return _request_id.set(request_id)


def reset_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)


@dataclass(frozen=True)
class _Change:
    resource_id: str
    before: Any
    after: Callable[[], Any] | None


_change: ContextVar[_Change | None] = ContextVar("turnup_audit_change", default=None)


@contextmanager
def changing(resource_id: str, *, before: Any, after: Callable[[], Any] | None = None) -> Iterator[None]:
    """Within this block, audit entries recorded for ``resource_id`` without their own ``before``/``after``
    get ``before`` and, rendered when the transaction commits, ``after()`` (None: the resource is gone).
    Used by the generic CRUD routes (``turnup.api.crud``), which know how to render any resource."""
    token = _change.set(_Change(resource_id, before, after))
    try:
        yield
    finally:
        _change.reset(token)


def _plain(value: Any) -> Any:
    """A JSON-ready copy (datetimes, decimals as strings)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str))


# --- recording ---------------------------------------------------------------------------------------------


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    details: dict[str, Any] | None = None,
    comment: str | None = None,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction; it is chained when the transaction commits.

    ``before``/``after``: the resource as it was and as it is now (JSON-ready documents; None for a creation's
    before or a deletion's after)."""
    entry = AuditEntry(
        id=new_id(),
        at=clock.now(),
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        details=details,
        comment=comment,
        request_id=current_request_id(),
        before=_plain(before),
        after=_plain(after),
    )
    change = _change.get()
    if change is not None and before is None and after is None and change.resource_id == resource_id:
        entry.before = _plain(change.before)
        if change.after is not None:
            session.info.setdefault(_AFTER, []).append((entry, change.after))
    session.add(entry)
    note_appended(session, entry.id)
    if entry.before is None and entry.after is None:  # filled from the changed rows at commit (held here:
        session.info.setdefault(_UNFILLED, []).append(entry)  # the identity map keeps clean rows weakly)
    return entry


def note_appended(session: Session, entry_id: str) -> None:
    """An audit row with this id was written in the session's transaction (by ``record`` or by SQL of its
    own): chain it when the transaction commits."""
    session.info.setdefault(_PENDING, []).append(entry_id)


# --- before and after of every change ---------------------------------------------------------------------
#
# An entry recorded without ``before``/``after`` (most use cases record what they did in ``details``) gets
# them from the rows the transaction changed through the ORM: the row whose primary key is the entry's
# ``resource_id`` (ids are random, so unique across tables). For a changed row: its changed columns, old and
# new values; for a created row: ``after`` is every column; for a deleted row: ``before`` is every column.
# Captured before each flush (from the attributes' history, loading nothing), merged over the transaction's
# flushes (the first old value, the last new one), applied when the transaction commits, before chaining.


def _key_of(state: Any) -> str | None:
    mapper = state.mapper
    if len(mapper.primary_key) != 1 or mapper.class_ is AuditEntry:
        return None
    value = state.dict.get(mapper.primary_key[0].key) if state.key is None else state.key[1][0]
    return value if isinstance(value, str) else None


def _columns(state: Any) -> list[str]:
    return [attr.key for attr in state.mapper.column_attrs]


@event.listens_for(Session, "before_flush")
def _capture_row_changes(session: Session, flush_context: Any, instances: Any) -> None:
    changes: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = session.info.setdefault(
        _ROW_CHANGES, {}
    )
    for obj in session.new:
        state = inspect(obj)
        key = _key_of(state)
        if key is not None:
            after = {k: state.dict[k] for k in _columns(state) if k in state.dict}
            before = changes.get(key, (None, None))[0]
            changes[key] = (before, _plain(after))
    for obj in session.dirty:
        state = inspect(obj)
        key = _key_of(state)
        if key is None:
            continue
        old: dict[str, Any] = {}
        new: dict[str, Any] = {}
        for k in _columns(state):
            history = state.attrs[k].history
            if history.added or history.deleted:
                old[k] = history.deleted[0] if history.deleted else None
                new[k] = history.added[0] if history.added else None
        if not new:
            continue
        prev = changes.get(key)
        if prev is None:
            changes[key] = (_plain(old), _plain(new))
        else:  # changed again: keep the first old values; a row created in this transaction has no before
            was, now = prev
            changes[key] = (
                {**_plain(old), **was} if was is not None else None,
                {**(now or {}), **_plain(new)},
            )
    for obj in session.deleted:
        state = inspect(obj)
        key = _key_of(state)
        if key is not None:
            gone = {k: state.dict[k] for k in _columns(state) if k in state.dict}
            before = changes.get(key, (None, None))[0]
            changes[key] = (before if before is not None else _plain(gone), None)


def _apply_row_changes(session: Session) -> None:
    entries: list[AuditEntry] = session.info.pop(_UNFILLED, [])
    if not entries:
        return
    session.flush()  # the last changes captured
    changes = session.info.get(_ROW_CHANGES) or {}
    for entry in entries:
        if entry not in session or entry.before is not None or entry.after is not None:
            continue  # undone by a rolled-back savepoint, or given its own values since
        found = changes.get(entry.resource_id)
        if found is not None and (found[0] or found[1]):
            entry.before, entry.after = found


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint being released: the transaction goes on
        return
    afters: list[tuple[AuditEntry, Callable[[], Any]]] = session.info.pop(_AFTER, [])
    for entry, render in afters:
        if entry in session:  # not undone by a rolled-back savepoint
            entry.after = _plain(render())
    pending: list[str] = session.info.pop(_PENDING, [])
    if pending:
        _apply_row_changes(session)
        append(session, pending)
    session.info.pop(_ROW_CHANGES, None)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended (committed: already chained; or rolled back)
        session.info.pop(_PENDING, None)
        session.info.pop(_AFTER, None)
        session.info.pop(_FILE_LINES, None)
        session.info.pop(_ROW_CHANGES, None)
        session.info.pop(_UNFILLED, None)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(seq: int, prev_hash: str, row: Any) -> bytes:
    """The exact bytes an entry's hash covers: a JSON object of every field, keys sorted, no spaces."""
    m = row if isinstance(row, dict) else row._mapping  # a dict, or a Row of the columns named below
    document = {
        "seq": seq,
        "prevHash": prev_hash,
        "id": m["id"],
        "at": _iso(m["at"]),
        "actor": m["actor"],
        "action": m["action"],
        "resourceType": m["resource_type"],
        "resourceId": m["resource_id"],
        "requestId": m["request_id"],
        "details": m["details"],
        "comment": m["comment"],
        "before": m["before"],
        "after": m["after"],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(seq: int, prev_hash: str, row: Any) -> str:
    return hashlib.sha256(canonical(seq, prev_hash, row)).hexdigest()


def _head_message(seq: int, head_hash: str) -> bytes:
    return f"{seq}:{head_hash}".encode()


def _anchor_message(seq: int, head_hash: str, created_at: datetime) -> bytes:
    return f"{seq}:{head_hash}:{_iso(created_at)}".encode()


def _lock_head(session: Session) -> tuple[int, str]:
    """Lock the head row (create it on a database that has none yet) and return its seq and hash."""
    stmt = select(_HEAD.c.seq, _HEAD.c.head_hash).where(_HEAD.c.id == 1).with_for_update()
    row = session.execute(stmt).first()
    if row is None:
        values = {
            "id": 1,
            "seq": 0,
            "head_hash": GENESIS,
            "mac": keys.mac(HEAD_PURPOSE, _head_message(0, GENESIS)),
            "updated_at": clock.now(),
        }
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(insert(_HEAD).values(values).on_conflict_do_nothing(index_elements=["id"]))
        row = session.execute(stmt).one()
    return int(row.seq), str(row.head_hash)


def append(session: Session, entry_ids: Sequence[str]) -> int:
    """Chain the given (flushed or about to be flushed) audit rows of this transaction, in (at, id) order;
    returns the new head seq. Called by the commit hook; the transaction must commit right after, since the
    head row stays locked until then."""
    session.flush()
    rows: list[Any] = []
    ids = list(dict.fromkeys(entry_ids))
    for i in range(0, len(ids), _CHUNK):
        rows.extend(
            session.execute(
                select(*_HASHED).where(_ENTRY.c.id.in_(ids[i : i + _CHUNK]), _ENTRY.c.seq.is_(None))
            ).all()
        )
    if not rows:
        return 0
    rows.sort(key=lambda r: (r.at, r.id))
    if session.get_bind().dialect.name == "postgresql":
        # Deferred constraints (e.g. logical inventory's chain foreign key) would be checked at COMMIT, with
        # the head locked, and their row locks could wait for a transaction that waits for the head: check
        # them now. Nothing but the chain's own rows is written after this point.
        session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    first_seq, prev = _lock_head(session)
    seq = first_seq
    updates = []
    for row in rows:
        seq += 1
        digest = entry_hash(seq, prev, row)
        updates.append({"b_id": row.id, "b_seq": seq, "b_prev": prev, "b_hash": digest})
        prev = digest
    session.execute(
        update(_ENTRY)
        .where(_ENTRY.c.id == bindparam("b_id"))
        .values(seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"), entry_hash=bindparam("b_hash")),
        updates,
    )
    now = clock.now()
    session.execute(
        update(_HEAD)
        .where(_HEAD.c.id == 1)
        .values(seq=seq, head_hash=prev, mac=keys.mac(HEAD_PURPOSE, _head_message(seq, prev)), updated_at=now)
    )
    every = get_settings().audit_anchor_every
    if every > 0 and seq // every > first_seq // every:
        _write_anchor(session, seq, prev, now)
    for u in updates:  # keep loaded objects in step without another UPDATE
        obj = session.identity_map.get(session.identity_key(AuditEntry, u["b_id"]))
        if isinstance(obj, AuditEntry):
            set_committed_value(obj, "seq", u["b_seq"])
            set_committed_value(obj, "prev_hash", u["b_prev"])
            set_committed_value(obj, "entry_hash", u["b_hash"])
    return seq


# --- anchors ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    id: str
    seq: int
    head_hash: str
    created_at: datetime


def _write_anchor(session: Session, seq: int, head_hash: str, now: datetime) -> Anchor:
    anchor = Anchor(new_id(), seq, head_hash, now)
    session.execute(
        _ANCHOR.insert().values(
            id=anchor.id,
            seq=seq,
            head_hash=head_hash,
            created_at=now,
            mac=keys.mac(ANCHOR_PURPOSE, _anchor_message(seq, head_hash, now)),
        )
    )
    if get_settings().audit_anchor_file:  # written once the transaction has committed
        line = {
            "seq": seq,
            "headHash": head_hash,
            "createdAt": _iso(now),
            "mac": keys.mac(ANCHOR_PURPOSE, _anchor_message(seq, head_hash, now)),
        }
        session.info.setdefault(_FILE_LINES, []).append(json.dumps(line, sort_keys=True))
    return anchor


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    lines: list[str] = session.info.pop(_FILE_LINES, [])
    path = get_settings().audit_anchor_file
    if lines and path:
        with Path(path).open("a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)


def anchor(session: Session, *, force: bool = False) -> Anchor | None:
    """Record the current head as an anchor (unless the newest anchor already names it and not ``force``);
    commits."""
    seq, head_hash = _lock_head(session)
    newest = session.scalar(select(func.max(_ANCHOR.c.seq)))
    if not force and newest is not None and newest >= seq:
        session.commit()
        return None
    made = _write_anchor(session, seq, head_hash, clock.now())
    session.commit()
    return made


# --- verification -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    seq: int | None  # the first seq concerned (None: not tied to a position, e.g. an unchained row)
    kind: str  # edited | inserted | deleted | head | anchor
    message: str


@dataclass
class VerifyReport:
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    anchors: int = 0
    key_configured: bool = True
    pending: list[str] = field(default_factory=list)  # unchained rows young enough to be mid-commit
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_broken_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None


def verify(
    session: Session, *, progress: Callable[[int, int], None] | None = None, batch: int = 2000
) -> VerifyReport:
    """Walk the chain in seq order, recompute every hash, check the head and every anchor (rows, and the
    anchor file when configured). Detects an edited row (its hash), a deleted one (a gap, or a head/anchor
    beyond the last row), an inserted one (a prev_hash that does not match, rows beyond the MACed head, or
    a row outside the chain). Read-only."""
    report = VerifyReport(key_configured=keys.key_configured())
    total = session.scalar(select(func.count()).select_from(_ENTRY).where(_ENTRY.c.seq.is_not(None))) or 0
    anchors = [
        (int(a.seq), str(a.head_hash), a.created_at, str(a.mac), "anchor row")
        for a in session.execute(select(_ANCHOR).order_by(_ANCHOR.c.seq, _ANCHOR.c.created_at))
    ]
    anchors.extend(_file_anchors(report))
    report.anchors = len(anchors)
    wanted = {a[0] for a in anchors}
    seen: dict[int, str] = {0: GENESIS}
    expected, prev, last_seq = 1, GENESIS, 0
    problems = report.problems
    while True:
        rows = session.execute(
            select(*_HASHED, _ENTRY.c.seq, _ENTRY.c.prev_hash, _ENTRY.c.entry_hash)
            .where(_ENTRY.c.seq.is_not(None), _ENTRY.c.seq > last_seq)
            .order_by(_ENTRY.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            seq = int(row.seq)
            if seq != expected:
                gap = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                problems.append(Problem(expected, "deleted", f"seq {gap} missing: row(s) deleted"))
            elif row.prev_hash != prev:
                problems.append(
                    Problem(
                        seq,
                        "inserted",
                        f"seq {seq}: prev_hash does not match entry {seq - 1} (chain altered)",
                    )
                )
            if entry_hash(seq, str(row.prev_hash), row) != row.entry_hash:
                problems.append(
                    Problem(seq, "edited", f"seq {seq}: entry hash mismatch (row {row.id} edited)")
                )
            prev = str(row.entry_hash)
            if seq in wanted:
                seen[seq] = prev
            expected = seq + 1
            report.entries += 1
        last_seq = int(rows[-1].seq)
        if progress is not None:
            progress(report.entries, total)
    _check_head(session, report, last_seq, prev)
    for seq, head_hash, created_at, mac, source in anchors:
        if not keys.mac_ok(ANCHOR_PURPOSE, _anchor_message(seq, head_hash, created_at), mac):
            problems.append(Problem(seq, "anchor", f"{source} at seq {seq}: MAC invalid (anchor edited)"))
        elif seq > last_seq:
            problems.append(
                Problem(
                    last_seq + 1,
                    "deleted",
                    f"{source} names seq {seq}, the chain ends at {last_seq}: newest rows deleted",
                )
            )
        elif seen.get(seq) != head_hash:
            problems.append(Problem(seq, "edited", f"{source} at seq {seq}: the chain differs (rewritten)"))
    _check_unchained(session, report)
    problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return report


def _check_head(session: Session, report: VerifyReport, last_seq: int, last_hash: str) -> None:
    head = session.execute(select(_HEAD.c.seq, _HEAD.c.head_hash, _HEAD.c.mac).where(_HEAD.c.id == 1)).first()
    problems = report.problems
    if head is None:
        if last_seq:
            problems.append(Problem(None, "head", "the chain head row is missing"))
        return
    report.head_seq, report.head_hash = int(head.seq), str(head.head_hash)
    if not keys.mac_ok(HEAD_PURPOSE, _head_message(report.head_seq, report.head_hash), head.mac):
        problems.append(Problem(None, "head", "chain head: MAC invalid (head row edited)"))
    if report.head_seq > last_seq:
        problems.append(
            Problem(
                last_seq + 1,
                "deleted",
                f"the head names seq {report.head_seq}, the chain ends at {last_seq}: newest rows deleted",
            )
        )
    elif report.head_seq < last_seq:
        problems.append(
            Problem(
                report.head_seq + 1,
                "inserted",
                f"seq {report.head_seq + 1}..{last_seq} beyond the head: rows inserted",
            )
        )
    elif report.head_hash != last_hash:
        problems.append(Problem(last_seq, "edited", f"seq {last_seq}: differs from the head's hash"))


def _check_unchained(session: Session, report: VerifyReport) -> None:
    now = clock.now()
    grace = timedelta(seconds=get_settings().audit_unchained_grace_seconds)
    for row in session.execute(
        select(_ENTRY.c.id, _ENTRY.c.at).where(_ENTRY.c.seq.is_(None)).order_by(_ENTRY.c.at, _ENTRY.c.id)
    ):
        if now - grace <= row.at <= now + timedelta(seconds=5):
            report.pending.append(str(row.id))
        else:
            report.problems.append(
                Problem(None, "inserted", f"row {row.id} (at {_iso(row.at)}) is outside the chain: inserted")
            )


def _file_anchors(report: VerifyReport) -> list[tuple[int, str, datetime, str, str]]:
    path = get_settings().audit_anchor_file
    if not path or not Path(path).exists():
        return []
    found = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            found.append(
                (
                    int(doc["seq"]),
                    str(doc["headHash"]),
                    datetime.fromisoformat(doc["createdAt"]),
                    str(doc["mac"]),
                    f"anchor file line {n}",
                )
            )
        except (ValueError, KeyError, TypeError):
            report.problems.append(Problem(None, "anchor", f"anchor file line {n}: unreadable"))
    return found


# --- search -------------------------------------------------------------------------------------------------


def search(
    session: Session,
    *,
    resource_type: str | None = None,
    resource_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries matching every given criterion (``since`` inclusive, ``until`` exclusive), oldest first."""
    stmt = select(AuditEntry)
    if resource_type:
        stmt = stmt.where(AuditEntry.resource_type == resource_type)
    if resource_id:
        stmt = stmt.where(AuditEntry.resource_id == resource_id)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    stmt = stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    return list(reversed(session.scalars(stmt).all()))
