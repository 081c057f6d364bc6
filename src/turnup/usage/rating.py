"""Rating: which usage price applies to a service, and the tiered amounts of a period's records.

**Which price.** For a service whose product came from an accepted quote (the order item that added it,
through the ordering face, and the order's quote), the agreed usage component of that quote line whose
``unitOfMeasure`` is the record's ``usageType`` (``quoting.agreed_terms``). Otherwise the catalog's usage
price of the service's offering (bundle members' usage prices included: ``catalog.price_rows``) live at
the usage date of the period's earliest record, with ``unitOfMeasure.units`` = ``usageType``. No such price:
the records go to the review queue (``noUsagePrice``).

**Tiers are cumulative per service, usage type and calendar month (UTC)** — a *group*. Rule (documented and
tested): whenever records join a group, the whole group is re-rated. Its billable records are put in a
fixed order — those already billed first (their amounts never change), then the others by
``(usageDate, id)`` — and the record at position *i* is charged ``tiered(Q_i) - tiered(Q_{i-1})``, where
``Q_i`` is the cumulative quantity up to and including it and ``tiered`` is ``catalog.tiered_charge`` (rounded
to cents). So the amounts of a group sum to ``tiered(total quantity)`` exactly, and the result does not
depend on the order in which records arrived or how they were split over files. A record arriving after
part of its month was billed is rated after the billed ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from turnup import catalog, ordering, quoting
from turnup.kernel import clock
from turnup.kernel.db import table_of
from turnup.usage.orm import UsageRecord, UsageService

RECORDS = table_of(UsageRecord)
Group = tuple[str, str, str]  # (service_id, usage_type, period)


@dataclass(frozen=True)
class UsagePrice:
    price_id: str | None
    name: str
    currency: str
    tiers: tuple[catalog.TierSpec, ...]
    source: str  # agreed | catalog


def tier_specs(tiers: Iterable[dict[str, Any]]) -> tuple[catalog.TierSpec, ...]:
    return tuple(
        catalog.TierSpec(
            Decimal(str(t["from"])),
            None if t.get("to") is None else Decimal(str(t["to"])),
            Decimal(str(t["rate"])),
        )
        for t in tiers
    )


def rate_sequence(
    quantities: Sequence[Decimal], tiers: Sequence[catalog.TierSpec], start: Decimal = Decimal(0)
) -> list[tuple[Decimal, list[dict[str, str | None]]]]:
    """Amounts (and the tier parts each quantity fell into) of consecutive quantities, cumulative from
    ``start``: the i-th amount is ``tiered(Q_i) - tiered(Q_{i-1})``."""
    out: list[tuple[Decimal, list[dict[str, str | None]]]] = []
    before = start
    charged_before = catalog.tiered_charge(before, tiers)
    for quantity in quantities:
        after = before + quantity
        charged_after = catalog.tiered_charge(after, tiers)
        parts = []
        for t in tiers:
            low, high = max(before, t.start), after if t.end is None else min(after, t.end)
            if high > low:
                parts.append(
                    {
                        "from": _num(t.start),
                        "to": None if t.end is None else _num(t.end),
                        "rate": _num(t.rate),
                        "quantity": _num(high - low),
                    }
                )
        out.append((charged_after - charged_before, parts))
        before, charged_before = after, charged_after
    return out


def _num(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


class PriceFinder:
    """Usage prices of services, looked up once per (service, usage type) for one rating run."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._agreed_cache: dict[tuple[str, str], UsagePrice | None] = {}
        self._offerings: dict[str, catalog.OfferingTerms | None] = {}

    def find(self, service: UsageService, usage_type: str, at: datetime) -> UsagePrice | None:
        key = (service.service_id, usage_type)
        if key not in self._agreed_cache:
            self._agreed_cache[key] = self._agreed(service.service_id, usage_type)
        return self._agreed_cache[key] or self._catalog(service.offering_id, usage_type, at)

    def _agreed(self, service_id: str, usage_type: str) -> UsagePrice | None:
        item_id = ordering.product_of_service(self.session, service_id)
        product = ordering.ordered_product(self.session, item_id) if item_id else None
        if product is None:
            return None
        quote_id = ordering.get_order(self.session, product.order_id).quote_id
        terms = quoting.agreed_terms(self.session, quote_id) if quote_id else None
        if terms is None:
            return None
        for line in terms.lines:
            if line.item_ref != product.item_ref:
                continue
            for price in line.prices:
                if price.price_type == "usage" and price.unit_of_measure == usage_type and price.tiers:
                    return UsagePrice(
                        price.offering_price_id,
                        price.name,
                        line.currency,
                        tier_specs(price.tiers),
                        "agreed",
                    )
        return None

    def _catalog(self, offering_id: str | None, usage_type: str, at: datetime) -> UsagePrice | None:
        if offering_id and offering_id not in self._offerings:
            self._offerings[offering_id] = catalog.offering_terms(self.session, offering_id)
        offering = self._offerings.get(offering_id) if offering_id else None
        if offering is None:
            return None
        for _, price in catalog.price_rows(offering, at):
            units = (price.unit_of_measure or {}).get("units")
            if price.price_type == "usage" and units == usage_type and price.tiers:
                return UsagePrice(price.id, price.name, price.currency, tier_specs(price.tiers), "catalog")
        return None


def rerate_groups(session: Session, groups: Iterable[Group], finder: PriceFinder | None = None) -> None:
    """Re-rate every billable record of these groups (see the module's rule). Records of a group without a
    usage price that were never rated go to the review queue (``noUsagePrice``). Callers hold the lock of
    the groups' services (``lock_services``)."""
    finder = finder or PriceFinder(session)
    now = clock.now()
    services: dict[str, UsageService] = {}
    wanted = sorted(set(groups))
    loaded = _load_groups(session, wanted)
    for service_id, usage_type, period in wanted:
        rows = loaded.get((service_id, usage_type, period), [])
        if not rows:
            continue
        service = services.get(service_id) or session.get(UsageService, service_id)
        assert service is not None  # records are rated only for services usage knows
        services[service_id] = service
        price = finder.find(service, usage_type, rows[0].usage_date)
        billed = [r for r in rows if r.status == "billed"]
        open_rows = [r for r in rows if r.status == "rated"]
        if price is None:
            unpriced = [{"b_id": r.id} for r in open_rows if r.amount is None]
            if unpriced:
                session.execute(
                    RECORDS.update()
                    .where(RECORDS.c.id == bindparam("b_id"))
                    .values(
                        status="guided",
                        review_state="open",
                        review_reason="noUsagePrice",
                        review_message=f"no usage price for {usage_type!r} on the service's offering",
                        updated_at=now,
                    ),
                    unpriced,
                )
            continue
        start = sum((Decimal(r.quantity) for r in billed), Decimal(0))
        rated = rate_sequence([Decimal(r.quantity) for r in open_rows], price.tiers, start)
        changes = [
            {
                "b_id": r.id,
                "b_amount": amount,
                "b_tiers": parts,
                "b_currency": price.currency,
                "b_price_id": price.price_id,
                "b_price_source": price.source,
                "b_rated_at": now,
                "b_updated_at": now,
            }
            for r, (amount, parts) in zip(open_rows, rated, strict=True)
            if r.amount is None
            or Decimal(r.amount) != amount
            or r.tiers != parts
            or r.price_id != price.price_id
        ]
        if changes:
            session.execute(
                RECORDS.update()
                .where(RECORDS.c.id == bindparam("b_id"))
                .values(
                    amount=bindparam("b_amount"),
                    tiers=bindparam("b_tiers"),
                    currency=bindparam("b_currency"),
                    price_id=bindparam("b_price_id"),
                    price_source=bindparam("b_price_source"),
                    rated_at=bindparam("b_rated_at"),
                    updated_at=bindparam("b_updated_at"),
                ),
                changes,
            )


def _load_groups(session: Session, groups: Iterable[Group]) -> dict[Group, list[Any]]:
    """The billable records of these groups, each group in (usage date, id) order (ids compared as Python
    strings, not by the database's collation): one query per 500 services."""
    wanted = set(groups)
    service_ids = sorted({g[0] for g in wanted})
    types, periods = sorted({g[1] for g in wanted}), sorted({g[2] for g in wanted})
    out: dict[Group, list[Any]] = {}
    for i in range(0, len(service_ids), 500):
        for row in session.execute(
            select(
                UsageRecord.service_id,
                UsageRecord.usage_type,
                UsageRecord.period,
                UsageRecord.id,
                UsageRecord.quantity,
                UsageRecord.status,
                UsageRecord.amount,
                UsageRecord.tiers,
                UsageRecord.price_id,
                UsageRecord.usage_date,
            ).where(
                UsageRecord.service_id.in_(service_ids[i : i + 500]),
                UsageRecord.usage_type.in_(types),
                UsageRecord.period.in_(periods),
                UsageRecord.status.in_(("rated", "billed")),
            )
        ):
            key = (row.service_id, row.usage_type, row.period)
            if key in wanted:
                out.setdefault(key, []).append(row)
    for rows in out.values():
        rows.sort(key=lambda r: (r.usage_date, r.id))  # in Python: the same order whatever the collation
    return out


def lock_services(session: Session, service_ids: Iterable[str]) -> dict[str, UsageService]:
    """Usage's records of these services, locked ``FOR UPDATE`` in id order (rating of one service's groups
    is serialised)."""
    ids = sorted(set(service_ids))
    found: dict[str, UsageService] = {}
    for i in range(0, len(ids), 500):
        for row in session.scalars(
            select(UsageService)
            .where(UsageService.service_id.in_(ids[i : i + 500]))
            .order_by(UsageService.service_id)
            .with_for_update()
        ):
            found[row.service_id] = row
    return found
