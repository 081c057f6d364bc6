"""Revenue schedules and journal entries for 1M contract lines over 36 months (issue 14: <= 60 s, <= 2 GB),
against a baseline of the same arithmetic written plainly (a per-line Python loop with Decimal,
``turnup.revenue.engine.ratable``) in the same run.

Each line: an allocated amount (1 cent to 100,000.00) earned ratably for 36 months from a start date in
2026 (daily proration, calendar-month periods, largest remainder per line), and one balanced journal entry
per period (debit contract liability, credit service revenue), summarised per month and account.

The vectorised path (``turnup.revenue.bulk``: integer cents, Arrow compute, chunks of lines) runs on every
line. The baseline runs on the first ``--baseline-lines`` lines (default 50,000) and its time is scaled
linearly to all lines (it does the same work per line); both paths' per-month totals for those lines are
compared and must be equal to the cent.

    nice -n 10 .venv/bin/python bench/revenue_schedules.py            # 1M lines
    .venv/bin/python bench/revenue_schedules.py --lines 20000 --baseline-lines 5000   # smoke
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import pyarrow as pa
import pyarrow.compute as pc

from turnup.revenue import bulk
from turnup.revenue.engine import Posting, ratable

MONTHS = 36
STARTS = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_lines(count: int, seed: int) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    return [rng.randrange(1, 10_000_001) for _ in range(count)], [rng.randrange(365) for _ in range(count)]


def vectorised(
    amounts: list[int], starts: list[int], chunk: int
) -> tuple[dict[tuple[int, int], list[int]], int, int]:
    """Every line's schedule and journal through the bulk path; the per (month, account) totals, the
    schedule rows and journal lines written."""
    summary: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    rows = journal_lines = 0
    for first, size in bulk.chunks(len(amounts), chunk):
        part = bulk.schedules(
            pa.array(amounts[first : first + size], pa.int64()),
            pa.array(starts[first : first + size], pa.int32()),
            STARTS,
            MONTHS,
            first_line=first,
        )
        lines = bulk.journal(part)
        rows += part.table.num_rows
        journal_lines += lines.num_rows
        for r in bulk.summarise(lines).to_pylist():
            cell = summary[(r["period"], r["account"])]
            cell[0] += r["debit_sum"]
            cell[1] += r["credit_sum"]
        # every line's periods sum exactly to its amount: chunk totals agree
        assert pc.sum(part.table.column("cents")).as_py() == sum(amounts[first : first + size])
    return summary, rows, journal_lines


def baseline(amounts: list[int], starts: list[int]) -> dict[tuple[int, int], list[int]]:
    """The same, plainly: per line, ``engine.ratable`` in Decimal, then one two-line entry per period."""
    summary: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    zero = Decimal("0.00")
    for amount_cents, start_index in zip(amounts, starts, strict=True):
        amount = Decimal(amount_cents) / 100
        for period in ratable(amount, STARTS[start_index], MONTHS):
            entry = Posting(
                (("contractLiability", period.amount, zero), ("revenue:service", zero, period.amount))
            )
            assert entry.balanced()
            month = period.month.year * 12 + period.month.month - 1
            cents = int(period.amount * 100)
            summary[(month, bulk.LIABILITY)][0] += cents
            summary[(month, bulk.REVENUE)][1] += cents
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--baseline-lines", type=int, default=50_000)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()

    amounts, starts = make_lines(args.lines, args.seed)
    print(
        f"{args.lines:,} contract lines x {MONTHS} months, chunks of {args.chunk:,}; "
        f"RSS {peak_rss_mb():.0f} MB"
    )

    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    summary, rows, journal_lines = vectorised(amounts, starts, args.chunk)
    fast, fast_cpu = time.perf_counter() - t0, time.process_time() - c0
    debit = sum(v[0] for v in summary.values())
    credit = sum(v[1] for v in summary.values())
    assert debit == credit == sum(amounts), "the journal does not balance"
    print(
        f"vectorised: {fast:.2f} s wall, {fast_cpu:.2f} s CPU for {rows:,} schedule rows and "
        f"{journal_lines:,} journal lines "
        f"({journal_lines // 2:,} entries); debit = credit = {debit / 100:,.2f}; "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )

    sample = min(args.baseline_lines, args.lines)
    t0, c0 = time.perf_counter(), time.process_time()
    plain = baseline(amounts[:sample], starts[:sample])
    slow, slow_cpu = time.perf_counter() - t0, time.process_time() - c0
    scaled, scaled_cpu = slow * args.lines / sample, slow_cpu * args.lines / sample
    check, _, _ = vectorised(amounts[:sample], starts[:sample], args.chunk)
    assert {k: tuple(v) for k, v in plain.items()} == {k: tuple(v) for k, v in check.items()}, "paths differ"
    print(
        f"baseline (per-line Python loop, Decimal): {slow:.2f} s wall, {slow_cpu:.2f} s CPU for {sample:,} "
        f"lines -> {scaled:.1f} s wall, {scaled_cpu:.1f} s CPU scaled to {args.lines:,} lines; per-month "
        "totals equal to the vectorised path's"
    )
    print(
        f"speed-up: {scaled / fast:.1f}x wall, {scaled_cpu / fast_cpu:.1f}x CPU; vectorised {fast:.2f} s "
        "wall "
        f"(limit 60 s); peak RSS {peak_rss_mb():.0f} MB (limit 2048 MB); load average at start {load:.1f} "
        f"on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
