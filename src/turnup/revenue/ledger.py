"""The revenue ledger: balanced journal entries, contract balances, and the reports read from them.

Accounts: ``receivable`` (billed, not yet paid), ``contractAsset`` (revenue recognised ahead of billing:
unbilled), ``contractLiability`` (billed ahead of revenue: deferred revenue), ``revenue:<kind>`` (revenue by
obligation type: service, hardware, installation, professionalServices, usage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from turnup.kernel import clock
from turnup.kernel.errors import InvalidInput
from turnup.kernel.ids import new_id
from turnup.revenue.engine import ZERO, Position, Posting
from turnup.revenue.orm import JournalEntry, JournalLine


@dataclass(frozen=True)
class LineTag:
    """What a journal line is about (for reports): the obligation, its kind and product."""

    obligation_id: str | None = None
    obligation_kind: str | None = None
    product: str | None = None


def post_entry(
    session: Session,
    *,
    source_ref: str,
    contract_id: str | None,
    entry_date: date,
    kind: str,
    currency: str,
    memo: str,
    posting: Posting,
    tag: LineTag = LineTag(),
) -> str | None:
    """Write one balanced entry (lines first, then the entry that seals them: see ``revenue.orm``).
    Idempotent: an entry with ``source_ref`` already written is not written again (its id is returned).
    An empty posting writes nothing (None). An unbalanced posting is refused before the database does."""
    existing = session.scalar(select(JournalEntry.id).where(JournalEntry.source_ref == source_ref))
    if existing is not None:
        return existing
    if not posting.lines:
        return None
    if not posting.balanced():
        raise InvalidInput(f"journal entry {source_ref}: debits and credits differ")
    session.flush()
    entry_id = new_id()
    session.execute(
        insert(JournalLine),
        [
            {
                "id": new_id(),
                "entry_id": entry_id,
                "line_no": n,
                "account": account,
                "debit": debit,
                "credit": credit,
                "obligation_id": tag.obligation_id,
                "obligation_kind": tag.obligation_kind,
                "product": tag.product,
            }
            for n, (account, debit, credit) in enumerate(posting.lines, 1)
        ],
    )
    session.execute(
        insert(JournalEntry).values(
            id=entry_id,
            source_ref=source_ref,
            contract_id=contract_id,
            entry_date=entry_date,
            kind=kind,
            currency=currency,
            memo=memo[:500],
            created_at=clock.now(),
        )
    )
    return entry_id


def balance(session: Session, contract_id: str, account: str) -> Decimal:
    """Debits less credits of ``account`` on the contract's entries."""
    value = session.scalar(
        select(func.coalesce(func.sum(JournalLine.debit), 0) - func.coalesce(func.sum(JournalLine.credit), 0))
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalEntry.contract_id == contract_id, JournalLine.account == account)
    )
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def position(session: Session, contract_id: str) -> Position:
    """The contract's position as the ledger has it (recognised and billed amounts that give its asset and
    liability balances)."""
    asset = balance(session, contract_id, "contractAsset")
    liability = -balance(session, contract_id, "contractLiability")
    # recognised - billed = asset - liability; the engine only needs the difference
    if asset >= liability:
        return Position(recognised=asset - liability, billed=ZERO)
    return Position(recognised=ZERO, billed=liability - asset)


def entries(session: Session, *, contract_id: str | None = None) -> Sequence[JournalEntry]:
    query = select(JournalEntry).order_by(JournalEntry.entry_date, JournalEntry.created_at, JournalEntry.id)
    if contract_id:
        query = query.where(JournalEntry.contract_id == contract_id)
    return session.scalars(query).all()
