"""The revenue engine against the standard's kinds of illustrations, with their figures (ASC 606 / IFRS 15
illustrative examples, telecom flavoured where the standard's own example is not)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnup.revenue.engine import (
    HARDWARE,
    INSTALLATION,
    SERVICE,
    USAGE,
    Added,
    Allocable,
    Component,
    LineSpec,
    MissingSSP,
    Position,
    Remaining,
    RevenueError,
    SubsetEvidence,
    allocate,
    billing_posting,
    cumulative_catch_up,
    milestone_progress,
    modification_treatment,
    percent_complete,
    progress_ratio,
    prospective,
    ratable,
    recognise_posting,
    segment,
    separate_contract,
    split_amount,
    stop_schedule,
)


def test_bundle_discount_is_allocated_proportionally_to_ssp() -> None:
    # given products A, B, C with SSPs 50, 25, 75 (150) sold together for 100 (IFRS 15 para 81's kind)
    items = [Allocable("A", D("50")), Allocable("B", D("25")), Allocable("C", D("75"))]
    # when the price is allocated
    result = allocate(D("100.00"), items)
    # then each gets its share of the 50 discount: 33.33, 16.67, 50.00, summing exactly to 100
    assert result.method == "relative"
    assert result.amounts == {"A": D("33.33"), "B": D("16.67"), "C": D("50.00")}
    assert sum(result.amounts.values()) == D("100.00")


def test_discount_is_allocated_to_the_subset_the_evidence_points_at() -> None:
    # Example 34 Case A: A 40, B 55, C 45 (140) for 100; B and C are regularly sold together for 60
    items = [Allocable("A", D("40")), Allocable("B", D("55")), Allocable("C", D("45"))]
    evidence = [SubsetEvidence(frozenset({"B", "C"}), D("60"))]
    result = allocate(D("100.00"), items, evidence)
    # the whole 40 discount belongs to B and C: A 40, B 33, C 27
    assert result.method == "subsetDiscount"
    assert result.amounts == {"A": D("40.00"), "B": D("33.00"), "C": D("27.00")}


def test_evidence_whose_discount_differs_is_not_used() -> None:
    # the same, but B + C sell together for 80 (a 20 discount, not the contract's 40): proportional
    items = [Allocable("A", D("40")), Allocable("B", D("55")), Allocable("C", D("45"))]
    result = allocate(D("100.00"), items, [SubsetEvidence(frozenset({"B", "C"}), D("80"))])
    assert result.method == "relative"
    assert result.amounts == {"A": D("28.57"), "B": D("39.29"), "C": D("32.14")}


def test_residual_approach_after_the_subset_discount() -> None:
    # Example 34 Case B: the same plus D, whose SSP is highly variable (20-40), total price 130
    items = [
        Allocable("A", D("40")),
        Allocable("B", D("55")),
        Allocable("C", D("45")),
        Allocable("D", None, residual_allowed=True, ssp_range=(D("15"), D("45"))),
    ]
    result = allocate(D("130.00"), items, [SubsetEvidence(frozenset({"B", "C"}), D("60"))])
    assert result.method == "subsetDiscount+residual"
    assert result.amounts == {"A": D("40.00"), "B": D("33.00"), "C": D("27.00"), "D": D("30.00")}


def test_residual_outside_the_observed_prices_is_refused() -> None:
    # Example 34 Case C: price 105 leaves 5 for D, far below its observed prices: not appropriate
    items = [
        Allocable("A", D("40")),
        Allocable("B", D("55")),
        Allocable("C", D("45")),
        Allocable("D", None, residual_allowed=True, ssp_range=(D("15"), D("45"))),
    ]
    with pytest.raises(RevenueError, match=r"residual 5\.00 for D is outside its observed selling prices"):
        allocate(D("105.00"), items, [SubsetEvidence(frozenset({"B", "C"}), D("60"))])


def test_a_missing_ssp_is_an_error_not_a_guess() -> None:
    with pytest.raises(MissingSSP, match="missing for voice") as caught:
        allocate(D("100.00"), [Allocable("fibre", D("80")), Allocable("voice", None)])
    assert caught.value.keys == ("voice",)


def test_handset_subsidy_creates_a_contract_asset_at_hand_over() -> None:
    # given a 24-month plan at 45/month including a handset (handset SSP 480, plan alone 30/month)
    line = LineSpec(
        ref="1",
        product="Mobile with handset",
        offering_id="bundle",
        components=(Component("Plan with handset monthly", "recurring", D("45.00")),),
        members=(
            LineSpec(ref="1", product="Handset", offering_id="h", method="pointInTime", ssp=D("480")),
            LineSpec(ref="1", product="Mobile plan", offering_id="p", method="overTime", ssp=D("30")),
        ),
    )
    handset, plan = segment(line, 24)
    assert (handset.kind, handset.ssp, handset.billed) == (HARDWARE, D("480.00"), D("0.00"))
    assert (plan.kind, plan.ssp, plan.billed) == (SERVICE, D("720.00"), D("1080.00"))
    alloc = allocate(D("1080.00"), [Allocable(o.key, o.ssp) for o in (handset, plan)]).amounts
    assert (alloc[handset.key], alloc[plan.key]) == (D("432.00"), D("648.00"))
    # when the handset is handed over (nothing billed yet): all its revenue is recognised, a contract asset
    position = Position(recognised=D("0"), billed=D("0"))
    at_hand_over = recognise_posting(position, alloc[handset.key], "revenue:hardware")
    assert at_hand_over.lines == (
        ("contractAsset", D("432.00"), D("0.00")),
        ("revenue:hardware", D("0.00"), D("432.00")),
    )
    position = Position(recognised=D("432.00"), billed=D("0"))
    assert (position.contract_asset, position.contract_liability) == (D("432.00"), D("0.00"))
    # and each month: 45 billed settles the asset, about 27 of plan revenue is earned (648 over the 731 days
    # from 1 March 2026, March's 31 days: 27.48) -> the asset falls by about 18 a month
    months = ratable(alloc[plan.key], date(2026, 3, 1), 24)
    assert (len(months), months[0].amount, sum(p.amount for p in months)) == (24, D("27.48"), D("648.00"))
    bill = billing_posting(position, D("45.00"))
    assert bill.lines == (("receivable", D("45.00"), D("0.00")), ("contractAsset", D("0.00"), D("45.00")))
    position = Position(recognised=D("432.00") + months[0].amount, billed=D("45.00"))
    assert position.contract_asset == D("414.48")
    # after 24 months billed and earned agree: no asset, no liability
    final = Position(recognised=D("432.00") + sum(p.amount for p in months), billed=D("45.00") * 24)
    assert (final.contract_asset, final.contract_liability) == (D("0.00"), D("0.00"))


def test_ratable_schedule_from_a_mid_month_activation() -> None:
    # given a 12-month service allocated 360.00, activated on 16 January 2026 (365 days to 16 January 2027)
    schedule = ratable(D("360.00"), date(2026, 1, 16), 12)
    # then each calendar month earns its days' share, and the periods sum exactly to 360.00
    assert [(p.month.month, p.days, p.amount) for p in schedule] == [
        (1, 16, D("15.78")),
        (2, 28, D("27.62")),
        (3, 31, D("30.58")),
        (4, 30, D("29.59")),
        (5, 31, D("30.58")),
        (6, 30, D("29.59")),
        (7, 31, D("30.58")),
        (8, 31, D("30.57")),
        (9, 30, D("29.59")),
        (10, 31, D("30.57")),
        (11, 30, D("29.59")),
        (12, 31, D("30.57")),
        (1, 15, D("14.79")),
    ]
    assert schedule[-1].month == date(2027, 1, 1)
    assert sum(p.amount for p in schedule) == D("360.00")


def test_termination_stops_the_schedule_mid_month() -> None:
    schedule = ratable(D("360.00"), date(2026, 1, 16), 12)
    stopped = stop_schedule(schedule, D("360.00"), date(2026, 1, 16), date(2026, 3, 11))
    # January and February kept, 10 days of March (360 * 10 / 365 = 9.86), nothing after
    assert [(p.month, p.days, p.amount) for p in stopped] == [
        (date(2026, 1, 1), 16, D("15.78")),
        (date(2026, 2, 1), 28, D("27.62")),
        (date(2026, 3, 1), 10, D("9.86")),
    ]
    assert stop_schedule(schedule, D("360.00"), date(2026, 1, 16), date(2026, 1, 16)) == []


def test_modification_treated_prospectively() -> None:
    # Example 5 Case B: 120 products at 100; after 60 delivered, 30 more at 80 (not their SSP of 100) and
    # the rest distinct: prospectively, 60 * 100 + 30 * 80 = 8,400 over the 90 products left (93.33 each)
    assert (
        modification_treatment(adds_distinct=True, priced_at_ssp=False, remaining_distinct=True)
        == "prospective"
    )
    result = prospective(
        [Remaining("original", D("6000.00"), D("6000"))], [Added("added", D("2400.00"), D("3000"))]
    )
    assert result.treatment == "prospective"
    assert result.amounts == {"original": D("5600.00"), "added": D("2800.00")}
    assert sum(result.amounts.values()) / 90 == pytest.approx(D("93.33"), abs=D("0.01"))


def test_modification_at_ssp_is_a_separate_contract() -> None:
    # Example 5 Case A: the 30 more at 95, their SSP: a separate contract, the original untouched
    assert modification_treatment(adds_distinct=True, priced_at_ssp=True, remaining_distinct=True) == (
        "separateContract"
    )
    result = separate_contract([Added("added", D("2850.00"), D("2850"))])
    assert result.amounts == {"added": D("2850.00")}


def test_modification_by_cumulative_catch_up() -> None:
    # Example 8: 1,000,000 for a project of 700,000 cost (here: hours); 420,000 done -> 60%, 600,000 revenue
    first = progress_ratio(D("420000"), D("700000"))
    assert first == D("0.6")
    assert percent_complete(D("1000000"), first, D("0")) == D("600000.00")
    # the modification adds 150,000 to the price and 120,000 to the cost, and the 200,000 bonus is now
    # included: 1,350,000 over 820,000 -> 51.2% complete, 691,200 to date, a catch-up of 91,200
    assert modification_treatment(adds_distinct=False, priced_at_ssp=False, remaining_distinct=False) == (
        "cumulativeCatchUp"
    )
    progress = progress_ratio(D("420000"), D("820000"))
    assert progress == D("0.512")
    result = cumulative_catch_up(
        new_price=D("1350000"), progress=progress, recognised=D("600000.00"), key="x"
    )
    assert result.catch_up == D("91200.00")


def test_milestones_progress_by_their_revenue_percent() -> None:
    milestones = (("Design", D("20")), ("Build", D("30")), ("Cut-over", D("40")), ("Handover", D("10")))
    assert milestone_progress(milestones, ["Design", "Build"]) == D("0.5")
    assert percent_complete(D("3200.00"), milestone_progress(milestones, ["Design"]), D("0")) == D("640.00")


def test_bundle_segmented_into_members_and_installation() -> None:
    # the demo's Fibre + Voice: a bundle with a monthly and an installation price; fibre has a field visit
    line = LineSpec(
        ref="1",
        product="Fibre + Voice",
        offering_id="fv",
        components=(
            Component("monthly", "recurring", D("224.10")),
            Component("installation", "oneTime", D("179.10")),
            Component("minutes", "usage", D("0")),
        ),
        members=(
            LineSpec(
                "1",
                "Business Fibre 1G",
                "f",
                method="overTime",
                ssp=D("199"),
                delivery=frozenset({"fieldVisit"}),
                install_ssp=D("350"),
            ),
            LineSpec(
                "1", "Hosted Voice Seat", "v", method="overTime", ssp=D("14"), delivery=frozenset({"shipped"})
            ),
        ),
    )
    obligations = segment(line, 24)
    assert [(o.product, o.kind, o.ssp, o.billed) for o in obligations] == [
        ("Business Fibre 1G", SERVICE, D("4776.00"), D("5024.89")),
        ("Hosted Voice Seat", SERVICE, D("336.00"), D("353.51")),
        ("Business Fibre 1G", INSTALLATION, D("350.00"), D("179.10")),
        ("Fibre + Voice", USAGE, None, D("0")),
    ]


def test_postings_balance() -> None:
    for position in (Position(D("0"), D("100")), Position(D("100"), D("0")), Position(D("50"), D("50"))):
        assert recognise_posting(position, D("70.00"), "revenue:service").balanced()
        assert recognise_posting(position, D("-20.00"), "revenue:service").balanced()
        assert billing_posting(position, D("70.00")).balanced()


@given(
    st.integers(min_value=0, max_value=10**9),
    st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30),
)
def test_allocations_always_sum_exactly_to_the_price(total_cents: int, weights: list[int]) -> None:
    price = D(total_cents) / 100
    parts = split_amount(price, [D(w) for w in weights])
    assert sum(parts, D(0)) == price
    assert all(p >= 0 for p in parts)
    if any(weights):
        items = [Allocable(str(i), D(w) / 100) for i, w in enumerate(weights)]
        assert sum(allocate(price, items).amounts.values(), D(0)) == price


@given(
    st.integers(min_value=1, max_value=10**8),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    st.integers(min_value=1, max_value=60),
)
def test_ratable_schedules_sum_exactly(total_cents: int, start: date, months: int) -> None:
    schedule = ratable(D(total_cents) / 100, start, months)
    assert sum((p.amount for p in schedule), D(0)) == D(total_cents) / 100
