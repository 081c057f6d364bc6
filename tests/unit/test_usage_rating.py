"""The rating arithmetic of ``turnup.usage.rating`` (no database): consecutive quantities through graduated
tiers, and the activity timeline's reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from turnup.catalog import TierSpec, tiered_charge
from turnup.usage.periods import Timeline
from turnup.usage.rating import rate_sequence

MINUTES = (
    TierSpec(Decimal(0), Decimal(1000), Decimal("0.0200")),
    TierSpec(Decimal(1000), Decimal(10000), Decimal("0.0150")),
    TierSpec(Decimal(10000), None, Decimal("0.0100")),
)


def test_a_record_crossing_a_tier_boundary_is_charged_in_both() -> None:
    rated = rate_sequence([Decimal(500), Decimal(600), Decimal(9500)], MINUTES)
    assert [amount for amount, _ in rated] == [
        Decimal("10.00"),
        Decimal("11.50"),
        Decimal("139.50"),
    ]  # 8900 @ 0.015 + 600 @ 0.01
    assert rated[2][1] == [
        {"from": "1000", "to": "10000", "rate": "0.015", "quantity": "8900"},
        {"from": "10000", "to": None, "rate": "0.01", "quantity": "600"},
    ]


def test_rating_continues_from_a_starting_quantity() -> None:
    assert rate_sequence([Decimal(100)], MINUTES, start=Decimal(950)) == [
        (
            Decimal("1.75"),  # 50 @ 0.02 + 50 @ 0.015
            [
                {"from": "0", "to": "1000", "rate": "0.02", "quantity": "50"},
                {"from": "1000", "to": "10000", "rate": "0.015", "quantity": "50"},
            ],
        )
    ]


quantities = st.lists(
    st.decimals(min_value=0, max_value=5000, places=3, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=40,
)


@given(quantities)
def test_a_periods_amounts_sum_to_the_tiered_charge_of_its_total(values: list[Decimal]) -> None:
    rated = rate_sequence(values, MINUTES)
    assert sum((amount for amount, _ in rated), Decimal(0)) == tiered_charge(sum(values, Decimal(0)), MINUTES)
    for quantity, (_, parts) in zip(values, rated, strict=True):
        assert sum((Decimal(str(p["quantity"])) for p in parts), Decimal(0)) == quantity


def test_the_timeline_names_why_usage_is_not_billable() -> None:
    t0 = datetime(2026, 3, 10, tzinfo=UTC)
    day = timedelta(days=1)
    timeline = Timeline(
        [
            ("s", t0, 1, "active"),
            ("s", t0 + 5 * day, 2, "inactive"),
            ("s", t0 + 8 * day, 3, "active"),
            ("s", t0 + 8 * day, 4, "inactive"),  # the same instant: the later event wins
            ("s", t0 + 9 * day, 5, "active"),
            ("s", t0 + 20 * day, 6, "terminated"),
        ]
    )
    asks = [t0 - day, t0, t0 + day, t0 + 6 * day, t0 + 8 * day, t0 + 10 * day, t0 + 20 * day, t0 + 30 * day]
    assert [timeline.reason_not_billable("s", when) for when in asks] == [
        "beforeActivation",
        None,
        None,
        "suspended",
        "suspended",
        None,
        "afterTermination",
        "afterTermination",
    ]
    assert timeline.reason_not_billable("other", t0) == "beforeActivation"
