"""Billing's rules without a database: bill periods by cycle day and daily proration on actual days."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from turnup.billing.model import next_period, parse_period, period_named, period_of, previous_period, prorate


def test_bill_periods_follow_the_cycle_day() -> None:
    assert period_named(1, 2026, 3) == (date(2026, 3, 1), date(2026, 4, 1))
    assert period_named(15, 2026, 12) == (date(2026, 12, 15), date(2027, 1, 15))
    assert period_of(15, date(2026, 3, 14)) == (date(2026, 2, 15), date(2026, 3, 15))
    assert period_of(15, date(2026, 3, 15)) == (date(2026, 3, 15), date(2026, 4, 15))
    assert period_of(1, date(2026, 1, 31)) == (date(2026, 1, 1), date(2026, 2, 1))
    assert next_period(28, date(2026, 12, 28)) == (date(2027, 1, 28), date(2027, 2, 28))
    assert previous_period(1, date(2026, 1, 1)) == (date(2025, 12, 1), date(2026, 1, 1))


def test_daily_proration_counts_actual_days_and_rounds_half_up_once() -> None:
    march = (date(2026, 3, 1), date(2026, 4, 1))
    # 22 of March's 31 days (10th included), 199.00 a month
    assert prorate(Decimal("199.00"), march, date(2026, 3, 10), date(2026, 4, 1)) == Decimal("141.23")
    # a whole period is the amount itself; nothing outside the period counts
    assert prorate(Decimal("199.00"), march, date(2026, 2, 1), date(2026, 5, 1)) == Decimal("199.00")
    assert prorate(Decimal("199.00"), march, date(2026, 4, 1), date(2026, 5, 1)) == Decimal("0.00")
    # February 2028 has 29 days: 1 day of 29.00 is 1.00; half a cent rounds up
    assert prorate(
        Decimal("29.00"), (date(2028, 2, 1), date(2028, 3, 1)), date(2028, 2, 29), date(2028, 3, 1)
    ) == (Decimal("1.00"))
    assert prorate(Decimal("0.31"), march, date(2026, 3, 1), date(2026, 3, 16)) == Decimal("0.15")
    assert prorate(Decimal("0.62"), march, date(2026, 3, 1), date(2026, 3, 16)) == Decimal("0.30")
    assert prorate(
        Decimal("1.00"), (date(2026, 2, 1), date(2026, 3, 1)), date(2026, 2, 1), date(2026, 2, 15)
    ) == (Decimal("0.50"))
    assert prorate(
        Decimal("0.01"), (date(2026, 2, 1), date(2026, 3, 1)), date(2026, 2, 1), date(2026, 2, 15)
    ) == (
        Decimal("0.01")  # 0.005 rounds half up
    )


def test_periods_are_named_yyyy_mm() -> None:
    assert parse_period("2026-03") == (2026, 3)
    for bad in ("2026-3", "2026-13", "26-03", "2026/03", "1969-12"):
        with pytest.raises(ValueError, match="period must be YYYY-MM"):
            parse_period(bad)
