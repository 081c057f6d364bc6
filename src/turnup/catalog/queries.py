"""Read models other features use instead of the catalog ORM rows: an offering with everything needed to
price and deliver it (its specifications, prices and bundle members), as frozen snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from turnup.catalog.orm import (
    BundledOffering,
    OfferingSpecification,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
)

# Bundles nest a few levels at most; the snapshot stops well below any runaway (or cyclic) nesting.
MAX_SNAPSHOT_DEPTH = 8


@dataclass(frozen=True)
class PriceTerms:
    id: str
    name: str
    lifecycle_status: str
    price_type: str  # recurring | oneTime | usage
    recurring_period_type: str | None
    currency: str
    amount: Decimal
    unit_of_measure: dict[str, Any] | None
    tiers: list[dict[str, Any]] | None
    valid_from: datetime | None
    valid_to: datetime | None
    # TMF620 prodSpecCharValueUse: the price applies only when these characteristics take these values
    char_value_use: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class SpecificationTerms:
    id: str
    name: str
    eccn: str | None
    delivery_requirements: dict[str, Any]
    # TMF620 productSpecCharacteristic: name, valueType, configurable, productSpecCharacteristicValue
    characteristics: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class OfferingTerms:
    id: str
    name: str
    lifecycle_status: str
    is_sellable: bool
    valid_to: datetime | None
    eccn: str | None
    discount_rules: list[dict[str, Any]]
    reporting_attributes: dict[str, Any]
    revenue_recognition: dict[str, Any] | None
    specifications: tuple[SpecificationTerms, ...]  # catalog order
    prices: tuple[PriceTerms, ...]  # catalog order
    members: tuple[OfferingTerms, ...]  # bundle members, catalog order


def _price(p: ProductOfferingPrice) -> PriceTerms:
    return PriceTerms(
        p.id,
        p.name,
        p.lifecycle_status,
        p.price_type,
        p.recurring_period_type,
        p.currency,
        Decimal(p.amount),
        p.unit_of_measure,
        p.tiers,
        p.valid_from,
        p.valid_to,
        tuple(p.char_value_use or ()),
    )


def _spec(s: ProductSpecification) -> SpecificationTerms:
    return SpecificationTerms(
        s.id, s.name, s.eccn, s.delivery_requirements or {}, tuple(s.characteristics or ())
    )


def _terms(o: ProductOffering, depth: int) -> OfferingTerms:
    members = (
        tuple(_terms(link.member, depth + 1) for link in o.bundle_links) if depth < MAX_SNAPSHOT_DEPTH else ()
    )
    return OfferingTerms(
        id=o.id,
        name=o.name,
        lifecycle_status=o.lifecycle_status,
        is_sellable=o.is_sellable,
        valid_to=o.valid_to,
        eccn=o.eccn,
        discount_rules=list(o.discount_rules or []),
        reporting_attributes=dict(o.reporting_attributes or {}),
        revenue_recognition=o.revenue_recognition,
        specifications=tuple(_spec(link.specification) for link in o.spec_links),
        prices=tuple(_price(link.price) for link in o.price_links),
        members=members,
    )


def offering_terms(session: Session, offering_id: str) -> OfferingTerms | None:
    """The offering with its specifications, prices and bundle members, or None for an unknown id."""
    # its categories are not part of the terms: not loaded (one query and its rows fewer per order)
    offering = session.get(ProductOffering, offering_id, options=[lazyload(ProductOffering.category_links)])
    return _terms(offering, 0) if offering is not None else None


@dataclass(frozen=True)
class BundleMember:
    """A bundle member as a product tree needs it: its id, name, the specifications it and its own members
    deliver, and its own members (a nested bundle)."""

    id: str
    name: str
    specification_ids: frozenset[str]
    members: tuple[BundleMember, ...]


def bundle_members_of(session: Session, offering_id: str, depth: int = 0) -> tuple[BundleMember, ...]:
    """The bundle members of an offering, in catalog order (``()`` for a simple offering). Two small
    queries per bundle level and one for a simple offering: product inventory asks this for every product it
    renders, where ``offering_terms`` (the whole offering) would cost several loads."""
    if depth >= MAX_SNAPSHOT_DEPTH:
        return ()
    rows = session.execute(
        select(BundledOffering.member_id, ProductOffering.name)
        .join(ProductOffering, ProductOffering.id == BundledOffering.member_id)
        .where(BundledOffering.bundle_id == offering_id)
        .order_by(BundledOffering.position)
    ).all()
    if not rows:
        return ()
    specs: dict[str, set[str]] = {member_id: set() for member_id, _ in rows}
    for member_id, spec_id in session.execute(
        select(OfferingSpecification.offering_id, OfferingSpecification.specification_id).where(
            OfferingSpecification.offering_id.in_(list(specs))
        )
    ):
        specs[member_id].add(spec_id)
    members = []
    for member_id, name in rows:
        nested = bundle_members_of(session, member_id, depth + 1)
        delivered = set(specs[member_id]).union(*(m.specification_ids for m in nested))
        members.append(BundleMember(member_id, name, frozenset(delivered), nested))
    return tuple(members)


def specification_terms(session: Session, specification_id: str) -> SpecificationTerms | None:
    """The product specification with this id (name, ECCN, delivery requirements), or None."""
    spec = session.get(ProductSpecification, specification_id)
    return _spec(spec) if spec is not None else None


def offerings_with_specification(session: Session, specification_id: str) -> list[OfferingTerms]:
    """Every offering that lists the specification, in id order."""
    rows = session.scalars(
        select(ProductOffering)
        .join(OfferingSpecification, OfferingSpecification.offering_id == ProductOffering.id)
        .where(OfferingSpecification.specification_id == specification_id)
        .order_by(ProductOffering.id)
    )
    return [_terms(o, 0) for o in rows]
