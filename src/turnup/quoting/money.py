"""Quote arithmetic: the catalog's ``Decimal`` price arithmetic (``turnup.catalog.money``), which change
orders share; re-exported here for the quoting feature and its callers."""

from turnup.catalog import (
    CENT,
    HUNDRED,
    ZERO,
    Component,
    TierSpec,
    Totals,
    add_totals,
    allocate,
    component,
    discounted,
    money_text,
    q2,
    tiered_charge,
    totals,
)

__all__ = [
    "CENT",
    "HUNDRED",
    "ZERO",
    "Component",
    "TierSpec",
    "Totals",
    "add_totals",
    "allocate",
    "component",
    "discounted",
    "money_text",
    "q2",
    "tiered_charge",
    "totals",
]
