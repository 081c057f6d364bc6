"""Billing rules without a database: bill periods, daily proration, money rounding (docs/billing.md).

- A billing account's bill cycle day ``d`` (1..28) cuts time into bill periods ``[d of month M, d of month
  M+1)``; a period is named by the month it starts in (``2026-03`` with cycle day 1 is March 1 to April 1).
- Daily proration on actual days: a recurring amount per period, billed for part of a period, is
  ``amount × days used / days in that period``, days counted as calendar dates in UTC (the start date
  counts, the end date does not), rounded half-up to the cent once per charge.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(value: Decimal) -> Decimal:
    """Round to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def day_of(moment: datetime) -> date:
    """The UTC calendar date of a moment."""
    return moment.astimezone(UTC).date()


def _shift(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, day.day)


def period_named(cycle_day: int, year: int, month: int) -> tuple[date, date]:
    """The bill period of month ``year-month`` for a cycle day: [start, end)."""
    start = date(year, month, cycle_day)
    return start, _shift(start, 1)


def period_of(cycle_day: int, day: date) -> tuple[date, date]:
    """The bill period containing ``day``: [start, end)."""
    start = date(day.year, day.month, cycle_day)
    if day < start:
        start = _shift(start, -1)
    return start, _shift(start, 1)


def next_period(cycle_day: int, period_start: date) -> tuple[date, date]:
    return period_of(cycle_day, _shift(period_start, 1))


def previous_period(cycle_day: int, period_start: date) -> tuple[date, date]:
    return period_of(cycle_day, _shift(period_start, -1))


def prorate(amount: Decimal, period: tuple[date, date], used_from: date, used_to: date) -> Decimal:
    """``amount`` (per full period) for the days [used_from, used_to) of ``period``, clipped to it."""
    start, end = period
    first, last = max(start, used_from), min(end, used_to)
    if last <= first:
        return ZERO
    days = (last - first).days
    total = (end - start).days
    if days == total:
        return cents(amount)
    return cents(amount * days / total)


def parse_period(text: str) -> tuple[int, int]:
    """``YYYY-MM`` -> (year, month); ValueError otherwise."""
    year_text, dash, month_text = text.partition("-")
    if not dash or len(year_text) != 4 or len(month_text) != 2:
        raise ValueError(f"period must be YYYY-MM, got {text!r}")
    year, month = int(year_text), int(month_text)
    if not 1 <= month <= 12 or year < 1970:
        raise ValueError(f"period must be YYYY-MM, got {text!r}")
    return year, month
