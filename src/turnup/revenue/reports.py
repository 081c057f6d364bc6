"""Revenue reports: the documents the API and CLI show, the deferred-revenue waterfall, revenue by
obligation type and product, and the general-ledger export (CSV and Parquet)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.kernel.errors import InvalidInput, NotFound
from turnup.kernel.hrefs import api_base, href, iso
from turnup.revenue.ledger import balance
from turnup.revenue.orm import (
    JournalEntry,
    JournalLine,
    RevenueContract,
    RevenueObligation,
    RevenueScheduleLine,
)
from turnup.revenue.services import obligations_of, schedule_lines

REVENUE_API = "turnupRevenue"
BASE_PATH = api_base(REVENUE_API)  # /tmf-api/turnupRevenue/v1
ZERO = Decimal("0.00")


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value).quantize(Decimal('0.01')):f}"


def render_line(line: RevenueScheduleLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "period": line.period.strftime("%Y-%m"),
        "days": line.days,
        "amount": money(line.amount),
        "source": line.source,
        "status": line.status,
        "journalEntryId": line.entry_id,
    }


def render_obligation(o: RevenueObligation, lines: list[RevenueScheduleLine] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": o.id,
        "key": o.key,
        "productOrderItemId": o.item_ref,
        "product": o.product,
        "productOfferingId": o.offering_id,
        "kind": o.kind,
        "pattern": o.pattern,
        "standaloneSellingPrice": money(o.ssp),
        "allocatedAmount": money(o.allocated),
        "billedAmount": money(o.billed_plan),
        "recognisedAmount": money(o.recognised),
        "termMonths": o.months or None,
        "serviceId": o.service_id,
        "state": o.state,
        "startDate": o.start_date.isoformat() if o.start_date else None,
        "stopDate": o.stop_date.isoformat() if o.stop_date else None,
    }
    if o.milestones:
        doc["milestone"] = [
            {"name": name, "revenuePercent": pct, "accepted": name in o.accepted}
            for name, pct in o.milestones
        ]
    if o.modifications:
        doc["modification"] = list(o.modifications)
    if lines is not None:
        doc["schedule"] = [render_line(line) for line in lines]
    return doc


def render_contract(session: Session, contract: RevenueContract, *, detail: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": contract.id,
        "href": href(REVENUE_API, "contract", contract.id),
        "@type": "RevenueContract",
        "productOrderId": contract.order_id,
        "quoteId": contract.quote_id,
        "customerId": contract.customer_id,
        "currency": contract.currency,
        "termMonths": contract.term_months,
        "transactionPrice": money(contract.transaction_price),
        "allocationMethod": contract.allocation_method,
        "status": contract.status,
        "reviewReason": contract.review_reason,
        "createdAt": iso(contract.created_at),
    }
    if detail:
        obligations = obligations_of(session, contract.id)
        lines = schedule_lines(session, [o.id for o in obligations])
        by_obligation: dict[str, list[RevenueScheduleLine]] = defaultdict(list)
        for line in lines:
            by_obligation[line.obligation_id].append(line)
        doc["performanceObligation"] = [render_obligation(o, by_obligation[o.id]) for o in obligations]
        doc["contractAsset"] = money(balance(session, contract.id, "contractAsset"))
        doc["contractLiability"] = money(-balance(session, contract.id, "contractLiability"))
    return doc


def get_contract(session: Session, contract_id: str) -> RevenueContract:
    contract = session.get(RevenueContract, contract_id)
    if contract is None:
        raise NotFound(f"revenueContract {contract_id!r} not found")
    return contract


def _month(value: str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except ValueError as error:
        raise InvalidInput(f"{name}: {value!r} is not a month (YYYY-MM)") from error


def waterfall(session: Session, *, start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
    """The deferred-revenue waterfall: per month and obligation type, revenue already recognised (posted)
    and revenue still deferred (scheduled, to be recognised in that month); cancelled periods excluded."""
    first, last = _month(start, "from"), _month(end, "to")
    query = (
        select(
            RevenueScheduleLine.period,
            RevenueObligation.kind,
            RevenueScheduleLine.status,
            RevenueScheduleLine.amount,
        )
        .join(RevenueObligation, RevenueObligation.id == RevenueScheduleLine.obligation_id)
        .where(RevenueScheduleLine.status != "cancelled")
    )
    if first:
        query = query.where(RevenueScheduleLine.period >= first)
    if last:
        query = query.where(RevenueScheduleLine.period <= last)
    cells: dict[tuple[date, str], dict[str, Decimal]] = defaultdict(
        lambda: {"posted": ZERO, "scheduled": ZERO}
    )
    for period, kind, status, amount in session.execute(query):
        cells[(period, kind)][status] += Decimal(str(amount))
    return [
        {
            "period": period.strftime("%Y-%m"),
            "kind": kind,
            "recognised": money(v["posted"]),
            "deferred": money(v["scheduled"]),
            "total": money(v["posted"] + v["scheduled"]),
        }
        for (period, kind), v in sorted(cells.items())
    ]


def revenue_by(
    session: Session, *, start: date | None = None, end: date | None = None
) -> list[dict[str, Any]]:
    """Revenue recognised in the ledger (credits less debits of the revenue accounts) by obligation type
    and product, for entries dated from ``start`` to ``end`` (inclusive)."""
    query = (
        select(JournalLine.obligation_kind, JournalLine.product, JournalLine.debit, JournalLine.credit)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalLine.account.like("revenue:%"))
    )
    if start:
        query = query.where(JournalEntry.entry_date >= start)
    if end:
        query = query.where(JournalEntry.entry_date <= end)
    totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for kind, product, debit, credit in session.execute(query):
        totals[(kind or "", product or "")] += Decimal(str(credit)) - Decimal(str(debit))
    return [
        {"kind": kind, "product": product, "revenue": money(amount)}
        for (kind, product), amount in sorted(totals.items())
    ]


GL_COLUMNS = (
    "entryId",
    "entryDate",
    "kind",
    "contractId",
    "lineNo",
    "account",
    "debit",
    "credit",
    "currency",
    "obligationKind",
    "product",
    "memo",
)


def gl_rows(session: Session, *, start: date | None = None, end: date | None = None) -> list[dict[str, Any]]:
    """Every journal line with its entry, in entry date order: the general-ledger export."""
    query = select(JournalEntry, JournalLine).join(JournalLine, JournalLine.entry_id == JournalEntry.id)
    if start:
        query = query.where(JournalEntry.entry_date >= start)
    if end:
        query = query.where(JournalEntry.entry_date <= end)
    query = query.order_by(
        JournalEntry.entry_date, JournalEntry.created_at, JournalEntry.id, JournalLine.line_no
    )
    return [
        {
            "entryId": e.id,
            "entryDate": e.entry_date.isoformat(),
            "kind": e.kind,
            "contractId": e.contract_id or "",
            "lineNo": line.line_no,
            "account": line.account,
            "debit": money(line.debit),
            "credit": money(line.credit),
            "currency": e.currency,
            "obligationKind": line.obligation_kind or "",
            "product": line.product or "",
            "memo": e.memo,
        }
        for e, line in session.execute(query)
    ]


def gl_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=GL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def gl_parquet(rows: list[dict[str, Any]]) -> bytes:
    """The export as Parquet: amounts as decimal128(18, 2) (exact), dates as date32."""
    amount = pa.decimal128(18, 2)
    schema = pa.schema(
        [
            ("entryId", pa.string()),
            ("entryDate", pa.date32()),
            ("kind", pa.string()),
            ("contractId", pa.string()),
            ("lineNo", pa.int32()),
            ("account", pa.string()),
            ("debit", amount),
            ("credit", amount),
            ("currency", pa.string()),
            ("obligationKind", pa.string()),
            ("product", pa.string()),
            ("memo", pa.string()),
        ]
    )
    columns: dict[str, list[Any]] = {name: [] for name in GL_COLUMNS}
    for row in rows:
        for name in GL_COLUMNS:
            value = row[name]
            if name == "entryDate":
                value = date.fromisoformat(value)
            elif name in ("debit", "credit"):
                value = Decimal(value)
            columns[name].append(value)
    table = pa.table(columns, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()
