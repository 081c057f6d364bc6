"""The bulk path: ratable schedules and their journal entries for many contract lines at once, in integer
cents with Arrow compute (no Python loop per line or period), with exactly the arithmetic of
``engine.ratable`` (daily proration over calendar months, largest remainder per line).

Every line has the same term (``months``), so it has ``months + 1`` period slots: the month of its start,
the full months, and the month of its end (zero days when it starts on the 1st). Days per slot depend only
on the start date, so they are computed once per distinct start date and gathered by index. A line's
slot share is ``amount * days // total_days`` cents; the cents left over go one each to the slots with the
largest remainders (ties: the earlier slot), found by one sort of the chunk by (line, remainder desc,
slot) — each line's block has the same length, so a slot's rank in its line is its position modulo the
block length.

Journal: each period posts one balanced entry, debit ``contractLiability`` and credit ``revenue:<kind>``,
summarised per month and account for the general ledger.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from turnup.revenue.engine import add_months, month_days


def slot_days(start: date, months: int) -> list[int]:
    """Days of [start, start + months) in each of the ``months + 1`` slots (the last may be 0)."""
    spans = [d for _, d in month_days(start, add_months(start, months))]
    return spans + [0] * (months + 1 - len(spans))


@dataclass(frozen=True)
class Chunk:
    """One chunk's schedules: per (line, slot) the period (months since 1970-01) and amount in cents."""

    table: pa.Table  # line, slot, period, days, cents


def schedules(
    amounts: pa.Array, start_index: pa.Array, starts: Sequence[date], months: int, first_line: int = 0
) -> Chunk:
    """Schedules for lines with ``amounts`` (int64 cents, below 2**40) starting on ``starts[start_index[i]]``.
    Rows come grouped by line (slots within a line in remainder order)."""
    width = months + 1
    n = len(amounts)
    if width > 64:
        raise ValueError("at most 63 months per line in the bulk path")
    flat_days, totals, base_period = _day_tables(tuple(starts), months)

    position = _positions(n * width)
    line_local = pc.divide(position, width)
    slot = pc.subtract(position, pc.multiply(line_local, width))
    starts_rep = pc.take(pc.cast(start_index, pa.int64()), line_local)
    days = pc.take(flat_days, pc.add(pc.multiply(starts_rep, width), slot))
    total = pc.take(totals, starts_rep)
    amount = pc.take(amounts, line_local)
    product = pc.multiply(amount, days)
    floor = pc.divide(product, total)  # integer division (non-negative operands)
    remainder = pc.subtract(product, pc.multiply(floor, total))
    leftover = pc.subtract(amounts, _block_sums(floor, width, n))
    # one int64 sort key: line, then remainder descending, then slot
    key = pc.add(pc.add(pc.shift_left(line_local, 17), pc.shift_left(pc.subtract(2047, remainder), 6)), slot)
    order = pc.sort_indices(key)
    rank = pc.subtract(position, pc.multiply(line_local, width))  # position in the sorted line block
    sorted_line = line_local  # blocks keep their line: block i of the sorted order is line i
    extra = pc.cast(pc.less(rank, pc.take(leftover, sorted_line)), pa.int64())
    sorted_slot = pc.take(slot, order)
    cents = pc.add(pc.take(floor, order), extra)
    sorted_days = pc.take(days, order)
    period = pc.add(pc.take(base_period, pc.take(starts_rep, order)), sorted_slot)
    table = pa.table(
        {
            "line": pc.add(sorted_line, first_line),
            "slot": pc.cast(sorted_slot, pa.int8()),
            "period": pc.cast(period, pa.int32()),
            "days": pc.cast(sorted_days, pa.int16()),
            "cents": cents,
        }
    )
    return Chunk(table.filter(pc.greater(table.column("days"), 0)))


@lru_cache(maxsize=4)
def _day_tables(starts: tuple[date, ...], months: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Per distinct start date: the days of each slot (flattened), the term's days, the first period."""
    table_days = [slot_days(s, months) for s in starts]
    totals = [sum(row) for row in table_days]
    if max(totals, default=0) >= 2048:
        raise ValueError("terms longer than 2047 days do not fit the sort key")
    return (
        pa.array([d for row in table_days for d in row], pa.int64()),
        pa.array(totals, pa.int64()),
        pa.array([s.year * 12 + s.month - 1 for s in starts], pa.int64()),
    )


@lru_cache(maxsize=4)
def _positions(count: int) -> pa.Array:
    ones = pa.repeat(pa.scalar(1, pa.int64()), count)
    return pc.subtract(pc.cumulative_sum(ones), 1)


def _block_sums(values: pa.Array, width: int, n: int) -> pa.Array:
    """Sum of each consecutive block of ``width`` values (n blocks), as int64."""
    stride = pc.multiply(_positions(n), width)
    total = pc.take(values, stride)
    for k in range(1, width):
        total = pc.add(total, pc.take(values, pc.add(stride, k)))
    return total


ACCOUNTS = ("contractLiability", "revenue:service")  # the journal's account codes (int8)
LIABILITY, REVENUE = 0, 1


def journal(chunk: Chunk) -> pa.Table:
    """The balanced journal of the chunk's periods: one entry per (line, period) with two lines, debit the
    contract liability, credit service revenue (account codes index ``ACCOUNTS``)."""
    t = chunk.table
    entry = pc.add(pc.multiply(t.column("line"), 64), pc.cast(t.column("slot"), pa.int64()))
    n = t.num_rows
    zeros = pa.repeat(pa.scalar(0, pa.int64()), n)
    debit = pa.table(
        {
            "entry": entry,
            "period": t.column("period"),
            "account": pa.repeat(pa.scalar(LIABILITY, pa.int8()), n),
            "debit": t.column("cents"),
            "credit": zeros,
        }
    )
    credit = pa.table(
        {
            "entry": entry,
            "period": t.column("period"),
            "account": pa.repeat(pa.scalar(REVENUE, pa.int8()), n),
            "debit": zeros,
            "credit": t.column("cents"),
        }
    )
    return pa.concat_tables([debit, credit])


def summarise(lines: pa.Table) -> pa.Table:
    """The journal summarised per period and account (the general-ledger view)."""
    return (
        lines.group_by(["period", "account"], use_threads=False)
        .aggregate([("debit", "sum"), ("credit", "sum")])
        .sort_by([("period", "ascending"), ("account", "ascending")])
    )


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(size, total - start)
