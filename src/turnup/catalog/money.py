"""Price arithmetic with ``Decimal`` only (quotes and change orders): rounding, discounts, tiered usage,
largest-remainder allocation.

Pure functions (no database) so they can be property-tested:

- every charge is rounded once, to the currency's minor unit (0.01), half-up;
- a line's amounts are the sums of its rounded components and the quote's totals the sums of its lines;
- when an amount must be *split* so that the parts add up to it exactly (a bundle price spread over its
  members), the split uses the largest-remainder method: floor every exact share to 0.01, then hand the
  leftover cents to the largest remainders (ties: the earlier part).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal("0.00")


def q2(value: Decimal) -> Decimal:
    """Round to cents, half-up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def discounted(amount: Decimal, percent: Decimal) -> Decimal:
    """``amount`` less ``percent`` %, rounded to cents."""
    if not ZERO <= percent <= HUNDRED:
        raise ValueError(f"discount percent must be between 0 and 100, got {percent}")
    return q2(amount * (HUNDRED - percent) / HUNDRED)


@dataclass(frozen=True)
class TierSpec:
    start: Decimal  # "from"
    end: Decimal | None  # "to" (None: open)
    rate: Decimal


def tiered_charge(quantity: Decimal, tiers: Sequence[TierSpec]) -> Decimal:
    """Graduated tiers: each tier's rate applies to the part of ``quantity`` inside it; rounded to cents."""
    if quantity < 0:
        raise ValueError("usage quantity cannot be negative")
    total = Decimal(0)
    for tier in tiers:
        if quantity <= tier.start:
            break
        top = quantity if tier.end is None else min(quantity, tier.end)
        total += (top - tier.start) * tier.rate
    return q2(total)


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``total`` (a cent amount) in proportion to ``weights`` so the parts sum to ``total`` exactly.

    Largest remainder: each part is its exact share floored to the cent; the cents left over go one by one
    to the parts with the largest remainders (earlier parts first on ties). Zero weights everywhere split
    equally.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights cannot be negative")
    if q2(total) != total:
        raise ValueError(f"total {total} is not a whole number of cents")
    weights = list(weights) if sum(weights) > 0 else [Decimal(1)] * len(weights)
    wsum = sum(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    exact = [magnitude * w / wsum for w in weights]
    floors = [e.quantize(CENT, rounding=ROUND_DOWN) for e in exact]
    leftover = int((magnitude - sum(floors)) / CENT)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:leftover]:
        floors[i] += CENT
    return [sign * f for f in floors]


@dataclass(frozen=True)
class Component:
    """One priced charge of a line (a recurring, one-time or estimated usage charge)."""

    name: str
    price_type: str  # recurring | oneTime | usage
    unit_price: Decimal
    quantity: Decimal
    discount_percent: Decimal
    list_amount: Decimal  # rounded
    net_amount: Decimal  # rounded


def component(
    name: str, price_type: str, unit_price: Decimal, quantity: Decimal, discount_percent: Decimal
) -> Component:
    list_amount = q2(unit_price * quantity)
    return Component(
        name,
        price_type,
        unit_price,
        quantity,
        discount_percent,
        list_amount,
        discounted(list_amount, discount_percent),
    )


@dataclass(frozen=True)
class Totals:
    recurring: Decimal
    one_time: Decimal
    usage: Decimal
    recurring_list: Decimal
    one_time_list: Decimal

    def contract_value(self, term_months: int) -> Decimal:
        """Total contract value: one-time plus ``term_months`` of recurring (estimated usage excluded)."""
        return self.one_time + self.recurring * term_months


def totals(components: Sequence[Component]) -> Totals:
    def s(kind: str, attr: str) -> Decimal:
        return sum((getattr(c, attr) for c in components if c.price_type == kind), ZERO)

    return Totals(
        recurring=s("recurring", "net_amount"),
        one_time=s("oneTime", "net_amount"),
        usage=s("usage", "net_amount"),
        recurring_list=s("recurring", "list_amount"),
        one_time_list=s("oneTime", "list_amount"),
    )


def add_totals(parts: Sequence[Totals]) -> Totals:
    return Totals(
        *(
            sum((getattr(p, f) for p in parts), ZERO)
            for f in ("recurring", "one_time", "usage", "recurring_list", "one_time_list")
        )
    )


def money_text(value: Decimal) -> str:
    return f"{q2(value):f}"
