"""Usage rating fills the bill run's usage slot: the rated, unbilled usage records of a billing account's
previous period become ``usage`` charges (one per record, keyed by the usage id, so a record handed over
twice is billed once) and are marked billed on ``<account>:<period start>`` in the bill run's transaction
(a failed run un-marks them). Registered by the composition root (``turnup.wiring``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlalchemy.orm import Session

from turnup import usage
from turnup.billing.billrun import UsageLine, register_usage_source


def _at(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def rated_usage_lines(
    session: Session, billing_account_id: str, period_start: date, period_end: date
) -> list[UsageLine]:
    """The account's rated usage in ``[period_start, period_end)`` not billed yet, marked billed."""
    records = usage.unbilled_rated_usage(
        session, _at(period_start), _at(period_end), billing_account_id=billing_account_id
    )
    if not records:
        return []
    usage.mark_billed(session, [r.id for r in records], f"{billing_account_id}:{period_start.isoformat()}")
    return [
        UsageLine(
            key=r.id,
            service_id=r.service_id,
            description=f"{r.usage_type} usage {r.quantity.normalize():f} on {r.usage_date.date():%Y-%m-%d}",
            amount=r.amount,
            currency=r.currency,
            period_start=period_start,
            period_end=period_end,
        )
        for r in records
    ]


def register() -> None:
    register_usage_source(rated_usage_lines)
