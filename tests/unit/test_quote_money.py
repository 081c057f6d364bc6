"""Quote arithmetic (Decimal only): property tests with hypothesis and worked examples."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnup.catalog import (
    CENT,
    TierSpec,
    add_totals,
    allocate,
    component,
    discounted,
    q2,
    tiered_charge,
    totals,
)

cents = st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n) * CENT)
signed_cents = st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: Decimal(n) * CENT)
weights = st.lists(st.integers(min_value=0, max_value=10**6).map(Decimal), min_size=1, max_size=12)
percents = st.integers(min_value=0, max_value=1_000_000).map(lambda n: Decimal(n) / 10_000)
prices = st.integers(min_value=0, max_value=10**8).map(lambda n: Decimal(n) / 10_000)


@given(total=signed_cents, ws=weights)
def test_allocation_sums_exactly_and_each_part_is_within_a_cent_of_its_share(
    total: Decimal, ws: list[Decimal]
) -> None:
    parts = allocate(total, ws)
    assert sum(parts) == total
    assert len(parts) == len(ws)
    effective = ws if sum(ws) > 0 else [Decimal(1)] * len(ws)
    for part, w in zip(parts, effective, strict=True):
        exact = total * w / sum(effective)
        assert abs(part - exact) < CENT
        assert q2(part) == part


@given(total=cents, ws=weights)
def test_largest_remainders_get_the_leftover_cents(total: Decimal, ws: list[Decimal]) -> None:
    parts = allocate(total, ws)
    effective = ws if sum(ws) > 0 else [Decimal(1)] * len(ws)
    exact = [total * w / sum(effective) for w in effective]
    bumped = [i for i, (p, e) in enumerate(zip(parts, exact, strict=True)) if p > e]
    kept = [i for i in range(len(parts)) if i not in bumped]
    if bumped and kept:  # every part that got a cent had a remainder at least as large as any that did not
        remainder = [e - e.quantize(CENT, rounding="ROUND_DOWN") for e in exact]
        assert min(remainder[i] for i in bumped) >= max(remainder[i] for i in kept)


def test_allocation_worked_example_and_refusals() -> None:
    assert allocate(Decimal("100.00"), [Decimal(1)] * 3) == [
        Decimal("33.34"),
        Decimal("33.33"),
        Decimal("33.33"),
    ]
    assert allocate(Decimal("199.20"), [Decimal(199), Decimal(15)]) == [Decimal("185.24"), Decimal("13.96")]
    assert allocate(Decimal("0.01"), [Decimal(0), Decimal(0)]) == [Decimal("0.01"), Decimal("0.00")]
    with pytest.raises(ValueError):
        allocate(Decimal("1.005"), [Decimal(1)])
    with pytest.raises(ValueError):
        allocate(Decimal("1.00"), [])


@given(
    lines=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["recurring", "oneTime"]),
                prices,
                st.integers(min_value=1, max_value=500),
                percents,
            ),
            min_size=1,
            max_size=5,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_quote_totals_equal_the_sum_of_line_totals_which_equal_the_sum_of_components(
    lines: list[list[tuple[str, Decimal, int, Decimal]]],
) -> None:
    line_totals = []
    for line in lines:
        comps = [component("p", kind, price, Decimal(qty), pct) for kind, price, qty, pct in line]
        t = totals(comps)
        assert t.recurring == sum((c.net_amount for c in comps if c.price_type == "recurring"), Decimal(0))
        assert t.one_time == sum((c.net_amount for c in comps if c.price_type == "oneTime"), Decimal(0))
        for c in comps:
            assert q2(c.net_amount) == c.net_amount and c.net_amount <= c.list_amount
        line_totals.append(t)
    quote = add_totals(line_totals)
    assert quote.recurring == sum(t.recurring for t in line_totals)
    assert quote.one_time == sum(t.one_time for t in line_totals)
    assert quote.recurring_list == sum(t.recurring_list for t in line_totals)
    assert quote.contract_value(24) == quote.one_time + 24 * quote.recurring


@given(amount=cents, low=percents, high=percents)
def test_a_larger_discount_never_costs_more(amount: Decimal, low: Decimal, high: Decimal) -> None:
    low, high = min(low, high), max(low, high)
    assert discounted(amount, high) <= discounted(amount, low) <= amount
    assert discounted(amount, Decimal(0)) == amount and discounted(amount, Decimal(100)) == 0


TIERS = [
    TierSpec(Decimal(0), Decimal(1000), Decimal("0.0200")),
    TierSpec(Decimal(1000), Decimal(10000), Decimal("0.0150")),
    TierSpec(Decimal(10000), None, Decimal("0.0100")),
]


@given(a=st.integers(min_value=0, max_value=10**6), b=st.integers(min_value=0, max_value=10**6))
def test_graduated_tiers_are_monotonic_and_additive_across_boundaries(a: int, b: int) -> None:
    lo, hi = sorted((Decimal(a), Decimal(b)))
    assert tiered_charge(lo, TIERS) <= tiered_charge(hi, TIERS)
    exact = sum(
        ((min(hi, t.end) if t.end is not None else hi) - t.start) * t.rate for t in TIERS if hi > t.start
    ) + Decimal(0)
    assert tiered_charge(hi, TIERS) == q2(exact)


def test_tier_worked_examples() -> None:
    assert tiered_charge(Decimal(1500), TIERS) == Decimal("27.50")
    assert tiered_charge(Decimal(0), TIERS) == Decimal("0.00")
    assert tiered_charge(Decimal(20000), TIERS) == Decimal("20.00") + Decimal("135.00") + Decimal("100.00")
    with pytest.raises(ValueError):
        tiered_charge(Decimal(-1), TIERS)
    with pytest.raises(ValueError):
        discounted(Decimal(1), Decimal(101))
