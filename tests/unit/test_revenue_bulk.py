"""The bulk path (Arrow, integer cents) computes exactly what the Decimal engine computes, line by line."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from turnup.revenue import bulk
from turnup.revenue.engine import ratable

STARTS = [date(2026, 1, 1) + timedelta(days=i) for i in range(0, 730, 7)]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=len(STARTS) - 1)
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([1, 12, 24, 36]),
)
def test_bulk_schedules_equal_the_engine(lines: list[tuple[int, int]], months: int) -> None:
    amounts = pa.array([a for a, _ in lines], pa.int64())
    starts = pa.array([s for _, s in lines], pa.int32())
    chunk = bulk.schedules(amounts, starts, STARTS, months, first_line=100)
    got: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for row in chunk.table.to_pylist():
        got[row["line"]].append((row["period"], row["days"], row["cents"]))
    for i, (amount, start) in enumerate(lines):
        expected = [
            (p.month.year * 12 + p.month.month - 1, p.days, int(p.amount * 100))
            for p in ratable(Decimal(amount) / 100, STARTS[start], months)
        ]
        assert sorted(got[100 + i]) == expected
    journal = bulk.journal(chunk)
    summary = bulk.summarise(journal).to_pylist()
    assert (
        sum(r["debit_sum"] for r in summary)
        == sum(r["credit_sum"] for r in summary)
        == sum(a for a, _ in lines)
    )
