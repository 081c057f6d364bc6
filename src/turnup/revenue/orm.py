"""Revenue recognition tables: contracts, their performance obligations, recognition schedules and the
double-entry ledger (journal entries and their lines).

The ledger is balanced by the database itself, on both databases (``LEDGER_DDL``):

- PostgreSQL: constraint triggers, deferred to commit, on ``revenue_journal_line`` (any insert, update or
  delete) and ``revenue_journal_entry`` (insert) check that the entry has at least two lines and that its
  debits equal its credits; a transaction leaving an unbalanced entry fails at commit.
- SQLite (no deferred triggers): an entry is *sealed* — its lines are written first (their foreign key to the
  entry is deferred to commit), then the entry row, whose insert trigger refuses it unless its lines balance;
  a line cannot be added to, changed in or deleted from a sealed entry, and a line without an entry fails its
  deferred foreign key at commit. ``ledger.post_entry`` writes in that order on both databases.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DDL, CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from turnup.kernel.db import Base, JSONDoc, Money, UTCDateTime
from turnup.kernel.ids import new_id


class RevenueContract(Base):
    """An ASC 606 contract: one per product order (its accepted quote's agreed prices)."""

    __tablename__ = "revenue_contract"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'review', 'closed')", name="revenue_contract_status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(String(32), unique=True)
    quote_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    term_months: Mapped[int] = mapped_column(Integer)
    transaction_price: Mapped[Decimal] = mapped_column(Money)
    allocation_method: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    review_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RevenueObligation(Base):
    """A performance obligation of a contract, its allocated price and how far it is satisfied."""

    __tablename__ = "revenue_obligation"
    __table_args__ = (
        UniqueConstraint("contract_id", "key"),
        CheckConstraint(
            "state IN ('pending', 'inProgress', 'satisfied', 'stopped')", name="revenue_obligation_state"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    contract_id: Mapped[str] = mapped_column(
        ForeignKey("revenue_contract.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(300))
    item_ref: Mapped[str] = mapped_column(String(50))
    product: Mapped[str] = mapped_column(String(200))
    offering_id: Mapped[str] = mapped_column(String(32))
    specification_ids: Mapped[list[str]] = mapped_column(JSONDoc)
    kind: Mapped[str] = mapped_column(String(30))
    pattern: Mapped[str] = mapped_column(String(20))
    ssp: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    allocated: Mapped[Decimal] = mapped_column(Money)
    billed_plan: Mapped[Decimal] = mapped_column(Money)  # what the contract's prices bill for it
    months: Mapped[int] = mapped_column(Integer)
    milestones: Mapped[list[Any]] = mapped_column(JSONDoc)  # [[name, percent], ...]
    accepted: Mapped[list[str]] = mapped_column(JSONDoc)  # milestones accepted so far
    # contract modifications applied: [{"eventId", "treatment", "effective", "added"}]
    modifications: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    service_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(20))
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    stop_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    recognised: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RevenueScheduleLine(Base):
    """One period of an obligation's recognition schedule: scheduled, posted to the ledger, or cancelled."""

    __tablename__ = "revenue_schedule_line"
    __table_args__ = (
        UniqueConstraint("obligation_id", "ref"),
        CheckConstraint("status IN ('scheduled', 'posted', 'cancelled')", name="revenue_schedule_status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    obligation_id: Mapped[str] = mapped_column(
        ForeignKey("revenue_obligation.id", ondelete="CASCADE"), index=True
    )
    ref: Mapped[str] = mapped_column(String(200))  # what made it: "ratable:2026-01", an event id…
    period: Mapped[date] = mapped_column(Date, index=True)  # the first day of its month
    days: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)
    source: Mapped[str] = mapped_column(String(20))  # ratable | pointInTime | percentComplete | usage
    status: Mapped[str] = mapped_column(String(10))
    entry_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class JournalEntry(Base):
    """A double-entry journal entry (sealed once written; see the module docstring)."""

    __tablename__ = "revenue_journal_entry"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source_ref: Mapped[str] = mapped_column(String(200), unique=True)  # makes posting idempotent
    contract_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    entry_date: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(20))  # recognition | billing | usage
    currency: Mapped[str] = mapped_column(String(3))
    memo: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JournalLine(Base):
    __tablename__ = "revenue_journal_line"
    __table_args__ = (
        UniqueConstraint("entry_id", "line_no"),
        CheckConstraint(
            "(debit > 0 AND credit = 0) OR (credit > 0 AND debit = 0)", name="revenue_journal_line_side"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    entry_id: Mapped[str] = mapped_column(
        ForeignKey("revenue_journal_entry.id", deferrable=True, initially="DEFERRED"), index=True
    )
    line_no: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(60), index=True)
    debit: Mapped[Decimal] = mapped_column(Money)
    credit: Mapped[Decimal] = mapped_column(Money)
    obligation_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    obligation_kind: Mapped[str | None] = mapped_column(String(30), nullable=True)
    product: Mapped[str | None] = mapped_column(String(200), nullable=True)


# --- the balance rule, in the database ----------------------------------------------------------------

SQLITE_LEDGER_DDL = (
    """CREATE TRIGGER revenue_journal_entry_balanced BEFORE INSERT ON revenue_journal_entry
BEGIN
  SELECT RAISE(ABORT, 'unbalanced journal entry')
  WHERE (SELECT count(*) FROM revenue_journal_line WHERE entry_id = NEW.id) < 2
     OR (SELECT round(sum(debit) - sum(credit), 4) FROM revenue_journal_line WHERE entry_id = NEW.id) <> 0;
END""",
    """CREATE TRIGGER revenue_journal_line_sealed BEFORE INSERT ON revenue_journal_line
WHEN EXISTS (SELECT 1 FROM revenue_journal_entry WHERE id = NEW.entry_id)
BEGIN
  SELECT RAISE(ABORT, 'journal entry is sealed');
END""",
    """CREATE TRIGGER revenue_journal_line_immutable BEFORE UPDATE ON revenue_journal_line
BEGIN
  SELECT RAISE(ABORT, 'journal lines are immutable');
END""",
    """CREATE TRIGGER revenue_journal_line_kept BEFORE DELETE ON revenue_journal_line
WHEN EXISTS (SELECT 1 FROM revenue_journal_entry WHERE id = OLD.entry_id)
BEGIN
  SELECT RAISE(ABORT, 'journal lines are immutable');
END""",
)

POSTGRES_LEDGER_DDL = (
    """CREATE OR REPLACE FUNCTION revenue_journal_balanced() RETURNS trigger AS $$
DECLARE
  target varchar;
  lines integer;
  difference numeric;
BEGIN
  IF TG_TABLE_NAME = 'revenue_journal_entry' THEN
    target := NEW.id;
  ELSIF TG_OP = 'DELETE' THEN
    target := OLD.entry_id;
  ELSE
    target := NEW.entry_id;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM revenue_journal_entry WHERE id = target) THEN
    RETURN NULL;
  END IF;
  SELECT count(*), coalesce(sum(debit), 0) - coalesce(sum(credit), 0) INTO lines, difference
    FROM revenue_journal_line WHERE entry_id = target;
  IF lines < 2 OR difference <> 0 THEN
    RAISE EXCEPTION 'unbalanced journal entry % (% lines, debit - credit = %)', target, lines, difference
      USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql""",
    """CREATE CONSTRAINT TRIGGER revenue_journal_line_balanced
AFTER INSERT OR UPDATE OR DELETE ON revenue_journal_line
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION revenue_journal_balanced()""",
    """CREATE CONSTRAINT TRIGGER revenue_journal_entry_balanced
AFTER INSERT ON revenue_journal_entry
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION revenue_journal_balanced()""",
)


def _ddl(statement: str, dialect: str) -> DDL:
    # DDL formats its text with %: the function body's own % placeholders are escaped
    return DDL(statement.replace("%", "%%")).execute_if(dialect=dialect)  # type: ignore[no-untyped-call]


for _statement in SQLITE_LEDGER_DDL:
    event.listen(JournalLine.__table__, "after_create", _ddl(_statement, "sqlite"))
for _statement in POSTGRES_LEDGER_DDL:
    event.listen(JournalLine.__table__, "after_create", _ddl(_statement, "postgresql"))
