"""The hash-chained audit trail on SQLite and PostgreSQL: appends chain in commit order (rolled-back work
leaves no trace), concurrent writers never break the chain, and ``turnup audit verify`` exits non-zero and
names the seq on an edited, inserted or deleted row — at the tail too — and on a forged head or anchor."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from turnup.cli.audit import app
from turnup.kernel import audit, clock, keys, migrate
from turnup.kernel.audit import GENESIS, AuditAnchor, AuditChainHead, AuditEntry
from turnup.kernel.db import JSONDoc, UTCDateTime, make_engine, make_sessionmaker
from turnup.kernel.ids import new_id
from turnup.kernel.settings import get_settings

KEY = "test-audit-key-outside-the-database"


@pytest.fixture(autouse=True)
def audit_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_AUDIT_KEY", KEY)
    monkeypatch.setenv("TURNUP_AUDIT_ANCHOR_EVERY", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    return CliRunner()


def _write(factory: sessionmaker[Session], n: int, *, prefix: str = "r") -> list[str]:
    with factory() as s:
        ids = [
            audit.record(
                s,
                actor="user:alice",
                action="thing.update",
                resource_type="thing",
                resource_id=f"{prefix}{i}",
                details={"n": i, "price": "12.50", "note": "naïve"},
                before={"name": "old"},
                after={"name": "new"},
            ).id
            for i in range(n)
        ]
        s.commit()
    return ids


def _chain(factory: sessionmaker[Session]) -> list[tuple[int | None, str | None, str | None, str]]:
    with factory() as s:
        return [
            (r.seq, r.prev_hash, r.entry_hash, r.resource_id)
            for r in s.execute(
                select(
                    AuditEntry.seq, AuditEntry.prev_hash, AuditEntry.entry_hash, AuditEntry.resource_id
                ).order_by(AuditEntry.seq)
            )
        ]


def _verify(cli: CliRunner) -> Result:
    return cli.invoke(app, ["verify"])


def test_commits_append_in_order_and_a_rollback_leaves_no_trace(
    session_factory: sessionmaker[Session], cli: CliRunner
) -> None:
    # Given three entries committed, one rolled back, then two more committed
    _write(session_factory, 3, prefix="a")
    with session_factory() as s:
        audit.record(s, actor="x", action="y", resource_type="thing", resource_id="gone")
        s.rollback()
    _write(session_factory, 2, prefix="b")

    # Then the chain is seq 1..5, each linked to the one before, the head on the last
    chain = _chain(session_factory)
    assert [(seq, rid) for seq, _, _, rid in chain] == [(1, "a0"), (2, "a1"), (3, "a2"), (4, "b0"), (5, "b1")]
    assert chain[0][1] == GENESIS
    assert all(chain[i][1] == chain[i - 1][2] for i in range(1, 5))
    with session_factory() as s:
        head = s.get(AuditChainHead, 1)
        assert head is not None and (head.seq, head.head_hash) == (5, chain[4][2])
        assert keys.mac_ok(audit.HEAD_PURPOSE, f"5:{chain[4][2]}".encode(), head.mac)
        # each hash is SHA-256 over the canonical JSON of the row as stored
        row = s.execute(select(*audit._HASHED).where(AuditEntry.seq == 3)).one()
        assert chain[2][2] == hashlib.sha256(audit.canonical(3, str(chain[2][1]), row)).hexdigest()
        assert json.loads(audit.canonical(3, str(chain[2][1]), row))["after"] == {"name": "new"}
        assert s.scalar(select(AuditEntry.resource_id).where(AuditEntry.resource_id == "gone")) is None

    result = _verify(cli)
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output and "5 entries, head seq 5" in result.output


def test_a_rolled_back_savepoint_drops_only_its_own_entry(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        audit.record(s, actor="x", action="kept", resource_type="thing", resource_id="1")
        with s.begin_nested() as nested:
            audit.record(s, actor="x", action="undone", resource_type="thing", resource_id="2")
            s.flush()
            nested.rollback()
        audit.record(s, actor="x", action="kept", resource_type="thing", resource_id="3")
        s.commit()
        assert audit.verify(s).ok
    assert [(seq, rid) for seq, _, _, rid in _chain(session_factory)] == [(1, "1"), (2, "3")]


def test_entries_are_chained_when_the_transaction_commits_not_when_a_savepoint_is_released(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as s:
        with s.begin_nested():
            inner = audit.record(s, actor="x", action="inner", resource_type="thing", resource_id="1")
        assert s.scalar(select(AuditEntry.seq).where(AuditEntry.id == inner.id)) is None
        with session_factory() as other:  # the head is not locked yet: another writer commits meanwhile
            audit.record(other, actor="y", action="other", resource_type="thing", resource_id="2")
            if other.get_bind().dialect.name == "postgresql":
                other.commit()
        audit.record(s, actor="x", action="outer", resource_type="thing", resource_id="3")
        s.commit()
        assert audit.verify(s).ok
    expected = ["1", "3"] if session_factory.kw["bind"].dialect.name == "sqlite" else ["2", "1", "3"]
    assert [rid for _, _, _, rid in _chain(session_factory)] == expected


def test_an_edited_row_is_detected_and_named(session_factory: sessionmaker[Session], cli: CliRunner) -> None:
    _write(session_factory, 5)
    with session_factory() as s:  # an attacker with database access changes who did it
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="user:mallory"))
        s.commit()

    result = _verify(cli)
    assert result.exit_code == 1
    assert "seq 3: entry hash mismatch" in result.output
    assert "first broken seq 3" in result.output
    with session_factory() as s:
        report = audit.verify(s)
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "edited")]


def test_an_edited_json_value_is_detected(session_factory: sessionmaker[Session], cli: CliRunner) -> None:
    _write(session_factory, 4)
    with session_factory() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(before={"name": "forged"}))
        s.commit()
    result = _verify(cli)
    assert result.exit_code == 1 and "first broken seq 2" in result.output


def test_a_row_inserted_outside_the_chain_is_detected(
    session_factory: sessionmaker[Session], cli: CliRunner
) -> None:
    _write(session_factory, 3)
    forged = new_id()
    with session_factory() as s:  # a backdated row slipped in with plain SQL (no seq, no hash)
        s.execute(
            insert(AuditEntry).values(
                id=forged,
                at=clock.now() - timedelta(days=2),
                actor="user:admin",
                action="customer.delete",
                resource_type="customer",
                resource_id="c1",
            )
        )
        s.commit()

    result = _verify(cli)
    assert result.exit_code == 1
    assert f"row {forged}" in result.output and "outside the chain: inserted" in result.output
    # and a later commit does not absorb it into the chain
    _write(session_factory, 1, prefix="later")
    with session_factory() as s:
        assert s.scalar(select(AuditEntry.seq).where(AuditEntry.id == forged)) is None
        assert [p.kind for p in audit.verify(s).problems] == ["inserted"]


def test_a_row_inserted_at_the_tail_with_correct_hashes_is_detected_by_the_head(
    session_factory: sessionmaker[Session], cli: CliRunner
) -> None:
    _write(session_factory, 4)
    last = _chain(session_factory)[-1]
    row = {
        "id": new_id(),
        "at": clock.now(),
        "actor": "user:admin",
        "action": "customer.update",
        "resource_type": "customer",
        "resource_id": "c9",
        "request_id": None,
        "details": None,
        "comment": None,
        "before": None,
        "after": None,
    }
    with session_factory() as s:  # the attacker knows the hash algorithm but not the key
        s.execute(
            insert(AuditEntry).values(
                **row, seq=5, prev_hash=last[2], entry_hash=audit.entry_hash(5, str(last[2]), row)
            )
        )
        s.commit()
    result = _verify(cli)
    assert result.exit_code == 1
    assert "seq 5..5 beyond the head: rows inserted" in result.output
    assert "first broken seq 5" in result.output


def test_a_row_inserted_mid_chain_is_detected(session_factory: sessionmaker[Session], cli: CliRunner) -> None:
    _write(session_factory, 5)
    chain = _chain(session_factory)
    with session_factory() as s:  # make room at seq 3 and put a forged entry there, linked to entry 2
        for seq in (5, 4, 3):
            s.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(seq=seq + 1))
        row = {
            "id": new_id(),
            "at": clock.now(),
            "actor": "user:admin",
            "action": "quote.approve",
            "resource_type": "quote",
            "resource_id": "q1",
            "request_id": None,
            "details": None,
            "comment": None,
            "before": None,
            "after": None,
        }
        s.execute(
            insert(AuditEntry).values(
                **row, seq=3, prev_hash=chain[1][2], entry_hash=audit.entry_hash(3, str(chain[1][2]), row)
            )
        )
        s.commit()
    result = _verify(cli)
    assert result.exit_code == 1
    assert "seq 4: prev_hash does not match entry 3" in result.output


def test_a_deleted_row_is_detected_and_named(session_factory: sessionmaker[Session], cli: CliRunner) -> None:
    _write(session_factory, 5)
    with session_factory() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
        s.commit()
    result = _verify(cli)
    assert result.exit_code == 1
    assert "seq 3 missing: row(s) deleted" in result.output and "first broken seq 3" in result.output


def test_deleting_the_newest_rows_is_detected_against_the_head(
    session_factory: sessionmaker[Session], cli: CliRunner
) -> None:
    _write(session_factory, 5)
    with session_factory() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))
        s.commit()
    result = _verify(cli)
    assert result.exit_code == 1
    assert "the head names seq 5, the chain ends at 3: newest rows deleted" in result.output
    assert "first broken seq 4" in result.output


def test_deleting_the_tail_and_rewinding_the_head_is_caught_by_its_mac_and_the_anchor(
    session_factory: sessionmaker[Session], cli: CliRunner
) -> None:
    _write(session_factory, 3)
    assert cli.invoke(app, ["anchor"]).exit_code == 0  # anchor at seq 3
    _write(session_factory, 2)
    chain = _chain(session_factory)
    with session_factory() as s:  # delete 2..5 and point the head at entry 1 (no key: the MAC is stale)
        s.execute(delete(AuditEntry).where(AuditEntry.seq >= 2))
        s.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(seq=1, head_hash=chain[0][2]))
        s.commit()
    result = _verify(cli)
    assert result.exit_code == 1
    assert "chain head: MAC invalid" in result.output
    assert "anchor row names seq 3, the chain ends at 1: newest rows deleted" in result.output
    assert "first broken seq 2" in result.output


def test_a_rewritten_chain_is_caught_by_the_anchor(
    session_factory: sessionmaker[Session], cli: CliRunner
) -> None:
    # Given an anchor at seq 4, then an attacker who edits entry 2, recomputes every later hash and the head
    _write(session_factory, 4)
    assert cli.invoke(app, ["anchor"]).exit_code == 0
    with session_factory() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="user:mallory"))
        prev = s.scalar(select(AuditEntry.entry_hash).where(AuditEntry.seq == 1))
        for seq in (2, 3, 4):
            row = s.execute(select(*audit._HASHED).where(AuditEntry.seq == seq)).one()
            digest = audit.entry_hash(seq, str(prev), row)
            s.execute(
                update(AuditEntry).where(AuditEntry.seq == seq).values(prev_hash=prev, entry_hash=digest)
            )
            prev = digest
        s.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(head_hash=prev))
        s.commit()
    with session_factory() as s:
        report = audit.verify(s)
    assert sorted((p.seq, p.kind) for p in report.problems if p.seq is not None) == [(4, "edited")]
    assert [p.message for p in report.problems if p.seq is None] == [
        "chain head: MAC invalid (head row edited)"
    ]
    result = _verify(cli)
    assert result.exit_code == 1 and "anchor row at seq 4: the chain differs" in result.output


def test_a_forged_anchor_is_detected(session_factory: sessionmaker[Session], cli: CliRunner) -> None:
    _write(session_factory, 2)
    with session_factory() as s:
        audit.anchor(s)
        s.execute(update(AuditAnchor).values(seq=1))
        s.commit()
    result = _verify(cli)
    assert result.exit_code == 1 and "anchor row at seq 1: MAC invalid" in result.output


def test_the_key_is_what_makes_the_head_trustworthy(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(session_factory, 2)
    monkeypatch.setenv("TURNUP_AUDIT_KEY", "another-key")
    get_settings.cache_clear()
    with session_factory() as s:
        assert [p.message for p in audit.verify(s).problems] == ["chain head: MAC invalid (head row edited)"]


def test_anchors_every_n_entries_and_in_the_anchor_file(
    session_factory: sessionmaker[Session], cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    anchor_file = tmp_path / "anchors.jsonl"
    monkeypatch.setenv("TURNUP_AUDIT_ANCHOR_EVERY", "3")
    monkeypatch.setenv("TURNUP_AUDIT_ANCHOR_FILE", str(anchor_file))
    get_settings.cache_clear()
    _write(session_factory, 2)  # seq 1-2: no anchor
    _write(session_factory, 2)  # seq 3-4: crosses 3
    with session_factory() as s:
        audit.record(s, actor="x", action="y", resource_type="thing", resource_id="rolled-back")
        s.rollback()  # a rolled-back transaction writes no anchor line
    _write(session_factory, 3)  # seq 5-7: crosses 6
    with session_factory() as s:
        assert s.execute(select(AuditAnchor.seq).order_by(AuditAnchor.seq)).scalars().all() == [4, 7]
    lines = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [4, 7]
    assert _verify(cli).exit_code == 0

    # an attacker who deletes the newest rows and the anchor rows is still caught by the file
    with session_factory() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq >= 6))
        s.execute(delete(AuditAnchor))
        s.execute(update(AuditChainHead).values(seq=5))
        s.commit()
    result = _verify(cli)
    assert result.exit_code == 1
    assert "anchor file line 2 names seq 7, the chain ends at 5: newest rows deleted" in result.output


def test_search_by_resource_actor_and_time(session_factory: sessionmaker[Session], cli: CliRunner) -> None:
    start = clock.now()
    with session_factory() as s:
        for i, (actor, rtype, rid) in enumerate(
            [("user:alice", "customer", "c1"), ("user:bob", "customer", "c1"), ("user:alice", "quote", "q1")]
        ):
            clock.freeze(start + timedelta(minutes=i))
            audit.record(s, actor=actor, action=f"{rtype}.update", resource_type=rtype, resource_id=rid)
        s.commit()
    clock.reset()
    result = cli.invoke(app, ["search", "--resource-type", "customer", "--resource-id", "c1", "--json"])
    assert result.exit_code == 0, result.output
    assert [(d["seq"], d["actor"]) for d in json.loads(result.output)] == [(1, "user:alice"), (2, "user:bob")]
    result = cli.invoke(app, ["search", "--actor", "user:alice", "--json"])
    assert [d["resourceId"] for d in json.loads(result.output)] == ["c1", "q1"]
    since = (start + timedelta(minutes=1)).isoformat()
    until = (start + timedelta(minutes=2)).isoformat()
    result = cli.invoke(app, ["search", "--since", since, "--until", until, "--json"])
    assert [d["actor"] for d in json.loads(result.output)] == ["user:bob"]
    table = cli.invoke(app, ["search", "--actor", "user:bob"])
    assert table.exit_code == 0 and "customer/c1" in table.output and "user:alice" not in table.output
    bad = cli.invoke(app, ["search", "--since", "yesterday"])
    assert bad.exit_code == 2 and "not an ISO 8601 date-time" in bad.output


def _hammer(factory: sessionmaker[Session], worker: int, rounds: int, errors: list[BaseException]) -> None:
    try:
        for r in range(rounds):
            with factory() as s:
                for k in range(3):
                    audit.record(
                        s,
                        actor=f"worker:{worker}",
                        action="concurrent.append",
                        resource_type="thing",
                        resource_id=f"{worker}-{r}-{k}",
                    )
                s.commit()
    except BaseException as exc:  # pragma: no cover - reported by the assertion below
        errors.append(exc)


def test_concurrent_appends_from_eight_threads_keep_one_unbroken_chain(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    # Given 8 threads, each committing 15 transactions of 3 entries at the same time
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_hammer, args=(session_factory, w, 15, errors)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Then 360 entries hold seq 1..360, each transaction's three consecutive, and verify finds nothing
    chain = _chain(session_factory)
    assert [seq for seq, *_ in chain] == list(range(1, 361))
    assert all(chain[i][1] == chain[i - 1][2] for i in range(1, 360))
    transactions: dict[str, list[int]] = {}
    for seq, _, _, rid in chain:
        transactions.setdefault(rid.rsplit("-", 1)[0], []).append(int(seq or 0))
    assert len(transactions) == 120
    assert all(seqs == list(range(seqs[0], seqs[0] + 3)) for seqs in transactions.values())
    with session_factory() as s:
        report = audit.verify(s)
    assert report.ok and report.entries == 360 and report.head_seq == 360


def test_existing_rows_are_chained_by_the_migration(db_url: str) -> None:
    # Given a database at 0008 holding audit rows written before the chain existed
    migrate.upgrade(db_url, "0008")
    eng = make_engine(db_url)
    try:
        now = clock.now()
        rows: list[dict[str, Any]] = [
            {
                "id": f"old{i}",
                "at": now - timedelta(hours=3 - i),
                "actor": "cli",
                "action": "x.create",
                "resource_type": "x",
                "resource_id": str(i),
                "details": {"i": i},
                "comment": None,
            }
            for i in (2, 0, 1)
        ]
        old = sa.table(
            "audit_entry",
            *(sa.column(c) for c in ("id", "actor", "action", "resource_type", "resource_id", "comment")),
            sa.column("at", UTCDateTime()),
            sa.column("details", JSONDoc),
        )
        with eng.begin() as conn:
            conn.execute(sa.insert(old), rows)
        # When the database is upgraded
        migrate.upgrade(db_url, "head")
        factory = make_sessionmaker(eng)
        # Then the old rows are chained in time order and the chain verifies, and new entries follow them
        assert [(seq, rid) for seq, _, _, rid in _chain(factory)] == [(1, "0"), (2, "1"), (3, "2")]
        _write(factory, 1, prefix="new")
        assert [(seq, rid) for seq, _, _, rid in _chain(factory)][-1] == (4, "new0")
        with factory() as s:
            report = audit.verify(s)
        assert report.ok and report.head_seq == 4, report.problems
    finally:
        eng.dispose()


def test_verify_json_and_anchor_when_nothing_changed(
    session_factory: sessionmaker[Session], cli: CliRunner
) -> None:
    _write(session_factory, 2)
    first = cli.invoke(app, ["anchor"])
    assert first.exit_code == 0 and "anchored seq 2" in first.output
    again = cli.invoke(app, ["anchor"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    result = cli.invoke(app, ["verify", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert {
        k: report[k] for k in ("ok", "entries", "headSeq", "anchors", "keyConfigured", "firstBrokenSeq")
    } == {
        "ok": True,
        "entries": 2,
        "headSeq": 2,
        "anchors": 1,
        "keyConfigured": True,
        "firstBrokenSeq": None,
    }
    with session_factory() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 1))
        s.commit()
    broken = cli.invoke(app, ["verify", "--json"])
    assert broken.exit_code == 1
    assert json.loads(broken.output)["firstBrokenSeq"] == 1
    assert [p["kind"] for p in json.loads(broken.output)["problems"]] == ["deleted"]
