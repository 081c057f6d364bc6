"""The revenue ledger is balanced by the database itself, on SQLite and PostgreSQL: raw SQL that writes an
unbalanced entry (or changes a sealed one) fails and leaves nothing behind; ``post_entry`` writes balanced
entries once per source reference."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel.errors import InvalidInput
from turnup.revenue.engine import Posting
from turnup.revenue.ledger import post_entry
from turnup.revenue.orm import JournalEntry, JournalLine

NOW = "2026-12-03 12:00:00+00:00"


def _line(conn: object, entry: str, n: int, account: str, debit: str, credit: str) -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO revenue_journal_line (id, entry_id, line_no, account, debit, credit) "
            "VALUES (:id, :entry, :n, :account, :debit, :credit)"
        ),
        {"id": f"{entry}-{n}", "entry": entry, "n": n, "account": account, "debit": debit, "credit": credit},
    )


def _entry(conn: object, entry: str) -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO revenue_journal_entry (id, source_ref, contract_id, entry_date, kind, currency, "
            "memo, created_at) VALUES (:id, :ref, NULL, '2026-12-01', 'recognition', 'GBP', 'raw', :now)"
        ),
        {"id": entry, "ref": f"raw:{entry}", "now": NOW},
    )


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        entries = conn.scalar(select(func.count()).select_from(JournalEntry))
        lines = conn.scalar(select(func.count()).select_from(JournalLine))
    return int(entries or 0), int(lines or 0)


def test_the_database_rejects_an_unbalanced_entry(engine: Engine) -> None:
    # given raw SQL writing an entry whose debits (100.00) exceed its credits (99.99)
    with pytest.raises(DBAPIError, match="unbalanced journal entry"), engine.begin() as conn:
        _line(conn, "e1", 1, "contractLiability", "100.00", "0")
        _line(conn, "e1", 2, "revenue:service", "0", "99.99")
        _entry(conn, "e1")
    # then nothing of it is stored
    assert _counts(engine) == (0, 0)


def test_the_database_rejects_an_entry_with_one_line(engine: Engine) -> None:
    with pytest.raises(DBAPIError, match="unbalanced journal entry"), engine.begin() as conn:
        _line(conn, "e2", 1, "contractLiability", "0", "0.01")
        _entry(conn, "e2")
    assert _counts(engine) == (0, 0)


def test_a_balanced_entry_is_stored_and_then_sealed(engine: Engine) -> None:
    # given a balanced entry written with raw SQL
    with engine.begin() as conn:
        _line(conn, "e3", 1, "contractLiability", "100.00", "0")
        _line(conn, "e3", 2, "revenue:service", "0", "60.00")
        _line(conn, "e3", 3, "revenue:installation", "0", "40.00")
        _entry(conn, "e3")
    assert _counts(engine) == (1, 3)
    # when a line is added to it, or one of its amounts changed, in later transactions: refused
    with pytest.raises(DBAPIError), engine.begin() as conn:
        _line(conn, "e3", 4, "revenue:service", "0", "5.00")
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("UPDATE revenue_journal_line SET credit = 70 WHERE id = 'e3-2'"))
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("DELETE FROM revenue_journal_line WHERE id = 'e3-3'"))
    # then the entry is as written
    with engine.connect() as conn:
        credits = conn.scalar(select(func.sum(JournalLine.credit)).where(JournalLine.entry_id == "e3"))
    assert D(str(credits)) == D("100.00")
    assert _counts(engine) == (1, 3)


def test_lines_without_their_entry_cannot_be_committed(engine: Engine) -> None:
    with pytest.raises(DBAPIError), engine.begin() as conn:
        _line(conn, "e4", 1, "contractLiability", "10.00", "0")
        _line(conn, "e4", 2, "revenue:service", "0", "10.00")
    assert _counts(engine) == (0, 0)


def test_post_entry_writes_once_per_source_reference(session_factory: sessionmaker[Session]) -> None:
    posting = Posting((("receivable", D("45.00"), D("0")), ("contractLiability", D("0"), D("45.00"))))
    with session_factory() as s:
        first = post_entry(
            s,
            source_ref="bill:1",
            contract_id=None,
            entry_date=date(2026, 12, 1),
            kind="billing",
            currency="GBP",
            memo="bill 1",
            posting=posting,
        )
        again = post_entry(
            s,
            source_ref="bill:1",
            contract_id=None,
            entry_date=date(2026, 12, 1),
            kind="billing",
            currency="GBP",
            memo="bill 1",
            posting=posting,
        )
        s.commit()
    assert first is not None and again == first
    with session_factory() as s:
        rows = s.execute(
            select(JournalLine.account, JournalLine.debit, JournalLine.credit).order_by(JournalLine.line_no)
        ).all()
    assert [(a, D(str(d)), D(str(c))) for a, d, c in rows] == [
        ("receivable", D("45.00"), D("0")),
        ("contractLiability", D("0"), D("45.00")),
    ]
    # an unbalanced posting is refused before the database sees it
    with session_factory() as s, pytest.raises(InvalidInput, match="debits and credits differ"):
        post_entry(
            s,
            source_ref="bad",
            contract_id=None,
            entry_date=date(2026, 12, 1),
            kind="billing",
            currency="GBP",
            memo="bad",
            posting=Posting((("receivable", D("1.00"), D("0")), ("contractLiability", D("0"), D("0.99")))),
        )


def test_a_migrated_database_has_the_same_rule(db_url: str) -> None:
    # given a database built by the migrations (not by the models)
    from turnup.kernel import migrate
    from turnup.kernel.db import make_engine

    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with pytest.raises(DBAPIError, match="unbalanced journal entry"), engine.begin() as conn:
            _line(conn, "m1", 1, "contractAsset", "10.00", "0")
            _line(conn, "m1", 2, "revenue:usage", "0", "9.00")
            _entry(conn, "m1")
        with engine.begin() as conn:
            _line(conn, "m2", 1, "contractAsset", "10.00", "0")
            _line(conn, "m2", 2, "revenue:usage", "0", "10.00")
            _entry(conn, "m2")
        assert _counts(engine) == (1, 2)
    finally:
        engine.dispose()
