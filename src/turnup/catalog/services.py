"""Catalog use cases: create, merge-patch, delete categories, specifications, prices and offerings.

Lifecycle: ``inDesign -> active -> retired`` (``inDesign -> retired`` too; retired is final). Only an
``inDesign`` entity's content may change; an active or retired one only changes ``lifecycleStatus``.
Versions: specifications and offerings are identified by (name, version); activating a version retires
the previously active version of the same name (``supersededBy`` points at the successor) which stays
readable by id for existing orders.

Each public function validates everything first, then writes, audits, publishes events and commits once.
``commit=False`` lets ``publish_catalog`` compose many changes into one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from turnup.catalog.orm import (
    BundledOffering,
    Category,
    OfferingCategory,
    OfferingPrice,
    OfferingSpecification,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
)
from turnup.catalog.render import (
    API,
    money,
    money_str,
    render_category,
    render_offering,
    render_price,
    render_specification,
)
from turnup.catalog.schemas import (
    CategoryCreate,
    CategoryUpdate,
    CharacteristicValue,
    CharValueUse,
    DeliveryRequirements,
    ProductOfferingCreate,
    ProductOfferingPriceCreate,
    ProductOfferingPriceUpdate,
    ProductOfferingUpdate,
    ProductSpecificationCreate,
    ProductSpecificationUpdate,
    Ref,
    RevenueRecognition,
    SpecCharacteristic,
    Tier,
    TimePeriod,
    UnitOfMeasure,
    check_offering_shape,
    check_price_shape,
    check_recognition,
)
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

TRANSITIONS: dict[str, set[str]] = {
    "inDesign": {"active", "retired"},
    "active": {"retired"},
    "retired": set(),
}
STATUS_FIELDS = {"lifecycleStatus", "statusReason"}
ILLEGAL = "Illegal state transition"


@dataclass(frozen=True)
class Kind:
    label: str  # TMF resource name, e.g. "productOffering"
    event: str  # event prefix, e.g. "ProductOffering"
    model: type[Any]
    render: Callable[[Any], dict[str, Any]]


CATEGORY = Kind("category", "Category", Category, render_category)
SPECIFICATION = Kind(
    "productSpecification", "ProductSpecification", ProductSpecification, render_specification
)
PRICE = Kind("productOfferingPrice", "ProductOfferingPrice", ProductOfferingPrice, render_price)
OFFERING = Kind("productOffering", "ProductOffering", ProductOffering, render_offering)


# --- shared helpers ---------------------------------------------------------------------------------


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _get(session: Session, kind: Kind, resource_id: str, field: str | None = None) -> Any:
    obj = session.get(kind.model, resource_id)
    if obj is None:
        prefix = f"{field}: " if field else ""
        raise NotFound(f"{prefix}{kind.label} {resource_id!r} not found")
    return obj


def get_category(session: Session, category_id: str) -> Category:
    category: Category = _get(session, CATEGORY, category_id)
    return category


def get_specification(session: Session, spec_id: str) -> ProductSpecification:
    spec: ProductSpecification = _get(session, SPECIFICATION, spec_id)
    return spec


def get_price(session: Session, price_id: str) -> ProductOfferingPrice:
    price: ProductOfferingPrice = _get(session, PRICE, price_id)
    return price


def get_offering(session: Session, offering_id: str) -> ProductOffering:
    offering: ProductOffering = _get(session, OFFERING, offering_id)
    return offering


def _changes(data: BaseModel) -> dict[str, Any]:
    return {name: getattr(data, name) for name in data.model_fields_set}


def _no_nulls(changes: dict[str, Any], required: Sequence[str], label: str) -> None:
    for name in required:
        if name in changes and changes[name] is None:
            raise InvalidInput(f"{name}: cannot be removed from a {label}")


def _check_transition(kind: Kind, obj: Any, new_status: str) -> None:
    old = obj.lifecycle_status
    if new_status != old and new_status not in TRANSITIONS[old]:
        if old == "retired":
            message = (
                f"lifecycleStatus: {kind.label} {obj.id!r} is retired, which is final; "
                f"it cannot become {new_status}"
            )
        else:
            message = f"lifecycleStatus: an {old} {kind.label} cannot become {new_status}"
        raise Conflict(message, reason=ILLEGAL)


def _check_editable(kind: Kind, obj: Any, changes: dict[str, Any]) -> None:
    content = sorted(set(changes) - STATUS_FIELDS)
    if obj.lifecycle_status != "inDesign" and content:
        raise Conflict(
            f"{kind.label} {obj.id!r} is {obj.lifecycle_status}: its content ({', '.join(content)}) cannot "
            "be changed, only its lifecycleStatus; publish a new version instead",
            reason=ILLEGAL,
        )


def _set_valid_for(obj: Any, period: TimePeriod | None) -> None:
    obj.valid_from = period.startDateTime if period else None
    obj.valid_to = period.endDateTime if period else None


def _recognition_json(value: RevenueRecognition | None) -> dict[str, Any] | None:
    if value is None:
        return None
    document: dict[str, Any] = {"method": value.method}
    if value.standaloneSellingPrice is not None:
        document["standaloneSellingPrice"] = money(
            value.standaloneSellingPrice.unit, value.standaloneSellingPrice.value
        )
    return document


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return value


def _reporting_json(values: dict[str, Any] | None) -> dict[str, Any]:
    return {k: _plain(v) for k, v in (values or {}).items()}


def _tiers_json(tiers: list[Tier] | None) -> list[dict[str, Any]] | None:
    if tiers is None:
        return None
    return [
        {"from": _plain(t.from_), "to": None if t.to is None else _plain(t.to), "rate": money_str(t.rate)}
        for t in tiers
    ]


def _unit_json(unit: UnitOfMeasure | None) -> dict[str, Any] | None:
    return None if unit is None else {"amount": _plain(unit.amount), "units": unit.units}


def _scalar_json(value: Any) -> Any:
    """A characteristic value as JSON: integral decimals as integers, other decimals as exact text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else f"{value.normalize():f}"
    return value


def _char_values_json(values: list[CharacteristicValue]) -> list[dict[str, Any]]:
    return [
        {
            k: _scalar_json(v)
            for k, v in value.model_dump(exclude_none=True).items()
            if not (k == "isDefault" and v is False)
        }
        for value in values
    ]


def characteristics_json(items: list[SpecCharacteristic]) -> list[dict[str, Any]]:
    """A specification's ``productSpecCharacteristic`` as stored (and rendered)."""
    return [
        {
            "name": c.name,
            **({"description": c.description} if c.description else {}),
            "valueType": c.valueType,
            "configurable": c.configurable,
            "productSpecCharacteristicValue": _char_values_json(c.productSpecCharacteristicValue),
        }
        for c in items
    ]


def char_value_use_json(items: list[CharValueUse] | None) -> list[dict[str, Any]] | None:
    if not items:
        return None
    return [
        {
            "name": u.name,
            "productSpecCharacteristicValue": _char_values_json(u.productSpecCharacteristicValue),
        }
        for u in items
    ]


def _delivery_json(value: DeliveryRequirements) -> dict[str, Any]:
    return value.model_dump(mode="json", exclude_none=True)


def _audit_changes(changes: dict[str, Any]) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if isinstance(v, BaseModel):
            return v.model_dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(v, list):
            return [plain(i) for i in v]
        if isinstance(v, (Decimal, datetime)):
            return str(v)
        return v

    return {k: plain(v) for k, v in changes.items()}


def _emit(
    session: Session, kind: Kind, obj: Any, suffix: str, document: dict[str, Any] | None = None
) -> None:
    publish(
        session,
        api=API,
        event_type=f"{kind.event}{suffix}",
        resource_type=kind.label,
        resource=document if document is not None else kind.render(obj),
    )


def _finish_update(
    session: Session,
    kind: Kind,
    obj: Any,
    changes: dict[str, Any],
    old_status: str,
    actor: str,
    before: dict[str, Any] | None = None,
) -> None:
    obj.updated_at = clock.now()
    session.flush()
    document = kind.render(obj)
    audit.record(
        session,
        actor=actor,
        action=f"{kind.label}.update",
        resource_type=kind.label,
        resource_id=obj.id,
        details=_audit_changes(changes),
        before=before,
        after=document,
    )
    if obj.lifecycle_status != old_status:
        _emit(session, kind, obj, "StateChangeEvent", document)
    if set(changes) - {"lifecycleStatus"}:
        _emit(session, kind, obj, "AttributeValueChangeEvent", document)


def _finish_create(session: Session, kind: Kind, obj: Any, actor: str) -> None:
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"{kind.label}.create",
        resource_type=kind.label,
        resource_id=obj.id,
        details={"name": obj.name, "version": obj.version, "lifecycleStatus": obj.lifecycle_status},
    )
    _emit(session, kind, obj, "CreateEvent")


def _delete(session: Session, kind: Kind, obj: Any, actor: str, commit: bool) -> None:
    if obj.lifecycle_status != "inDesign":
        raise Conflict(
            f"{kind.label} {obj.id!r} is {obj.lifecycle_status}: only inDesign entities can be "
            "deleted; retire it instead",
            reason=ILLEGAL,
        )
    document = kind.render(obj)
    session.delete(obj)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"{kind.label}.delete",
        resource_type=kind.label,
        resource_id=document["id"],
    )
    _emit(session, kind, obj, "DeleteEvent", document)
    if commit:
        session.commit()


# --- versions ---------------------------------------------------------------------------------------


def _check_unique_version(session: Session, kind: Kind, name: str, version: str, own_id: str | None) -> None:
    model = kind.model
    clash = session.scalar(
        select(model.id).where(model.name == name, model.version == version, model.id != (own_id or ""))
    )
    if clash:
        raise Conflict(f"version: {kind.label} {name!r} version {version} already exists (id {clash})")


def _predecessors(session: Session, kind: Kind, obj_id: str, name: str, version: str) -> list[Any]:
    """Active versions of the same name that activating this one supersedes (checked, not yet changed)."""
    model = kind.model
    others = list(
        session.scalars(
            select(model)
            .where(model.name == name, model.id != obj_id, model.lifecycle_status == "active")
            .order_by(model.id)
            .with_for_update()
        )
    )
    for other in others:
        if version_key(other.version) >= version_key(version):
            raise Conflict(
                f"version: {kind.label} {name!r} version {other.version} is active; only a newer "
                f"version than that can be activated, not {version}",
                reason=ILLEGAL,
            )
    return others


def _supersede(session: Session, kind: Kind, successor: Any, others: list[Any], actor: str) -> None:
    for other in others:
        other.lifecycle_status = "retired"
        other.status_reason = f"superseded by version {successor.version}"
        other.superseded_by_id = successor.id
        other.updated_at = clock.now()
        session.flush()
        audit.record(
            session,
            actor=actor,
            action=f"{kind.label}.supersede",
            resource_type=kind.label,
            resource_id=other.id,
            details={"supersededBy": successor.id, "version": successor.version},
        )
        _emit(session, kind, other, "StateChangeEvent")


# --- categories -------------------------------------------------------------------------------------


def _check_parent(session: Session, category_id: str | None, parent_id: str | None) -> None:
    if parent_id is None:
        return
    parent = _get(session, CATEGORY, parent_id, "parentId")
    if parent.lifecycle_status == "retired":
        raise Conflict(f"parentId: category {parent_id!r} is retired")
    seen = set()
    cursor: Category | None = parent
    while cursor is not None:
        if cursor.id == category_id or cursor.id in seen:
            raise Conflict("parentId: a category cannot be its own ancestor")
        seen.add(cursor.id)
        cursor = session.get(Category, cursor.parent_id) if cursor.parent_id else None


def create_category(session: Session, data: CategoryCreate, actor: str, *, commit: bool = True) -> Category:
    _check_parent(session, None, data.parentId)
    if data.isRoot and data.parentId:
        raise InvalidInput("isRoot: a category with a parentId is not a root")
    now = clock.now()
    category = Category(
        id=new_id(),
        name=data.name,
        description=data.description,
        version=data.version,
        lifecycle_status=data.lifecycleStatus,
        parent_id=data.parentId,
        is_root=data.parentId is None,
        created_at=now,
        updated_at=now,
    )
    _set_valid_for(category, data.validFor)
    session.add(category)
    _finish_create(session, CATEGORY, category, actor)
    if commit:
        session.commit()
    return category


def update_category(session: Session, category_id: str, data: CategoryUpdate, actor: str) -> Category:
    category = get_category(session, category_id)
    before = CATEGORY.render(category)
    changes = _changes(data)
    _no_nulls(changes, ("name", "version", "lifecycleStatus"), "category")
    _check_editable(CATEGORY, category, changes)
    old_status = category.lifecycle_status
    if "lifecycleStatus" in changes:
        _check_transition(CATEGORY, category, changes["lifecycleStatus"])
    if "parentId" in changes:
        _check_parent(session, category.id, changes["parentId"])
    parent_id = changes.get("parentId", category.parent_id)
    if changes.get("isRoot") and parent_id:
        raise InvalidInput("isRoot: a category with a parentId is not a root")
    for key, column in (
        ("name", "name"),
        ("description", "description"),
        ("version", "version"),
        ("lifecycleStatus", "lifecycle_status"),
        ("parentId", "parent_id"),
    ):
        if key in changes:
            setattr(category, column, changes[key])
    category.is_root = category.parent_id is None
    if "validFor" in changes:
        _set_valid_for(category, changes["validFor"])
    _finish_update(session, CATEGORY, category, changes, old_status, actor, before)
    session.commit()
    return category


def delete_category(session: Session, category_id: str, actor: str) -> None:
    category = get_category(session, category_id)
    users = session.scalars(
        select(OfferingCategory.offering_id).where(OfferingCategory.category_id == category_id)
    ).all()
    if users:
        raise Conflict(f"category {category_id!r} is used by productOffering {', '.join(sorted(users))}")
    children = session.scalars(select(Category.id).where(Category.parent_id == category_id)).all()
    if children:
        raise Conflict(f"category {category_id!r} has sub-categories {', '.join(sorted(children))}")
    _delete(session, CATEGORY, category, actor, commit=True)


# --- specifications ---------------------------------------------------------------------------------


def create_specification(
    session: Session, data: ProductSpecificationCreate, actor: str, *, commit: bool = True
) -> ProductSpecification:
    spec_id = new_id()
    _check_unique_version(session, SPECIFICATION, data.name, data.version, None)
    others = (
        _predecessors(session, SPECIFICATION, spec_id, data.name, data.version)
        if data.lifecycleStatus == "active"
        else []
    )
    now = clock.now()
    spec = ProductSpecification(
        id=spec_id,
        name=data.name,
        description=data.description,
        brand=data.brand,
        product_number=data.productNumber,
        version=data.version,
        lifecycle_status=data.lifecycleStatus,
        delivery_requirements=_delivery_json(data.deliveryRequirements),
        characteristics=characteristics_json(data.productSpecCharacteristic),
        revenue_recognition=_recognition_json(data.revenueRecognition),
        reporting_attributes=_reporting_json(data.reportingAttributes),
        eccn=data.exportClassification,
        channels=[c.id for c in data.channel],
        created_at=now,
        updated_at=now,
    )
    _set_valid_for(spec, data.validFor)
    session.add(spec)
    _finish_create(session, SPECIFICATION, spec, actor)
    _supersede(session, SPECIFICATION, spec, others, actor)
    if commit:
        session.commit()
    return spec


def update_specification(
    session: Session, spec_id: str, data: ProductSpecificationUpdate, actor: str
) -> ProductSpecification:
    spec = get_specification(session, spec_id)
    before = SPECIFICATION.render(spec)
    changes = _changes(data)
    _no_nulls(
        changes,
        ("name", "version", "lifecycleStatus", "deliveryRequirements", "channel", "reportingAttributes"),
        "productSpecification",
    )
    _check_editable(SPECIFICATION, spec, changes)
    old_status = spec.lifecycle_status
    new_status = changes.get("lifecycleStatus", old_status)
    _check_transition(SPECIFICATION, spec, new_status)
    name, version = changes.get("name", spec.name), changes.get("version", spec.version)
    if "name" in changes or "version" in changes:
        _check_unique_version(session, SPECIFICATION, name, version, spec.id)
    delivery = changes.get("deliveryRequirements") or DeliveryRequirements.model_validate(
        spec.delivery_requirements
    )
    recognition = (
        changes["revenueRecognition"]
        if "revenueRecognition" in changes
        else RevenueRecognition.model_validate(spec.revenue_recognition)
        if spec.revenue_recognition
        else None
    )
    try:
        check_recognition(recognition, delivery)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    others = (
        _predecessors(session, SPECIFICATION, spec.id, name, version)
        if new_status == "active" and old_status != "active"
        else []
    )
    simple = {
        "name": "name",
        "description": "description",
        "brand": "brand",
        "productNumber": "product_number",
        "version": "version",
        "lifecycleStatus": "lifecycle_status",
        "statusReason": "status_reason",
        "exportClassification": "eccn",
    }
    for key, column in simple.items():
        if key in changes:
            setattr(spec, column, changes[key])
    if "validFor" in changes:
        _set_valid_for(spec, changes["validFor"])
    if "deliveryRequirements" in changes:
        spec.delivery_requirements = _delivery_json(changes["deliveryRequirements"])
    if "revenueRecognition" in changes:
        spec.revenue_recognition = _recognition_json(changes["revenueRecognition"])
    if "reportingAttributes" in changes:
        spec.reporting_attributes = _reporting_json(changes["reportingAttributes"])
    if "channel" in changes:
        spec.channels = [c.id for c in changes["channel"]]
    _finish_update(session, SPECIFICATION, spec, changes, old_status, actor, before)
    _supersede(session, SPECIFICATION, spec, others, actor)
    session.commit()
    return spec


def delete_specification(session: Session, spec_id: str, actor: str) -> None:
    spec = get_specification(session, spec_id)
    users = session.scalars(
        select(OfferingSpecification.offering_id).where(OfferingSpecification.specification_id == spec_id)
    ).all()
    if users:
        raise Conflict(
            f"productSpecification {spec_id!r} is used by productOffering {', '.join(sorted(users))}"
        )
    _delete(session, SPECIFICATION, spec, actor, commit=True)


# --- prices -----------------------------------------------------------------------------------------


def create_price(
    session: Session, data: ProductOfferingPriceCreate, actor: str, *, commit: bool = True
) -> ProductOfferingPrice:
    now = clock.now()
    price = ProductOfferingPrice(
        id=new_id(),
        name=data.name,
        description=data.description,
        version=data.version,
        lifecycle_status=data.lifecycleStatus,
        price_type=data.priceType,
        recurring_period_type=data.recurringChargePeriodType,
        recurring_period_length=(data.recurringChargePeriodLength or 1)
        if data.priceType == "recurring"
        else None,
        currency=data.price.unit,
        amount=data.price.value,
        unit_of_measure=_unit_json(data.unitOfMeasure),
        tiers=_tiers_json(data.tiers),
        char_value_use=char_value_use_json(data.prodSpecCharValueUse),
        created_at=now,
        updated_at=now,
    )
    _set_valid_for(price, data.validFor)
    session.add(price)
    _finish_create(session, PRICE, price, actor)
    if commit:
        session.commit()
    return price


def update_price(
    session: Session, price_id: str, data: ProductOfferingPriceUpdate, actor: str
) -> ProductOfferingPrice:
    price = get_price(session, price_id)
    before = PRICE.render(price)
    changes = _changes(data)
    _no_nulls(changes, ("name", "version", "lifecycleStatus", "priceType", "price"), "productOfferingPrice")
    _check_editable(PRICE, price, changes)
    old_status = price.lifecycle_status
    if "lifecycleStatus" in changes:
        _check_transition(PRICE, price, changes["lifecycleStatus"])
    price_type = changes.get("priceType", price.price_type)
    period = changes.get("recurringChargePeriodType", price.recurring_period_type)
    tiers = (
        changes["tiers"]
        if "tiers" in changes
        else [Tier.model_validate(t) for t in price.tiers]
        if price.tiers
        else None
    )
    unit = (
        changes["unitOfMeasure"]
        if "unitOfMeasure" in changes
        else UnitOfMeasure.model_validate(price.unit_of_measure)
        if price.unit_of_measure
        else None
    )
    try:
        check_price_shape(price_type, period, tiers, unit)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    for key, column in (
        ("name", "name"),
        ("description", "description"),
        ("version", "version"),
        ("lifecycleStatus", "lifecycle_status"),
        ("priceType", "price_type"),
        ("recurringChargePeriodType", "recurring_period_type"),
        ("recurringChargePeriodLength", "recurring_period_length"),
    ):
        if key in changes:
            setattr(price, column, changes[key])
    if price.price_type == "recurring":
        price.recurring_period_length = price.recurring_period_length or 1
    else:
        price.recurring_period_length = None
    if "price" in changes:
        price.currency, price.amount = changes["price"].unit, changes["price"].value
    if "tiers" in changes:
        price.tiers = _tiers_json(changes["tiers"])
    if "unitOfMeasure" in changes:
        price.unit_of_measure = _unit_json(changes["unitOfMeasure"])
    if "validFor" in changes:
        _set_valid_for(price, changes["validFor"])
    _finish_update(session, PRICE, price, changes, old_status, actor, before)
    session.commit()
    return price


def delete_price(session: Session, price_id: str, actor: str) -> None:
    price = get_price(session, price_id)
    users = session.scalars(select(OfferingPrice.offering_id).where(OfferingPrice.price_id == price_id)).all()
    if users:
        raise Conflict(
            f"productOfferingPrice {price_id!r} is used by productOffering {', '.join(sorted(users))}"
        )
    _delete(session, PRICE, price, actor, commit=True)


# --- offerings --------------------------------------------------------------------------------------


@dataclass
class _Links:
    specs: list[ProductSpecification]
    prices: list[ProductOfferingPrice]
    categories: list[Category]
    members: list[ProductOffering]


def _resolve(session: Session, kind: Kind, refs: list[Ref], field: str) -> list[Any]:
    found = []
    for i, ref in enumerate(refs):
        obj = _get(session, kind, ref.id, f"{field}[{i}].id")
        if obj.lifecycle_status == "retired":
            raise Conflict(f"{field}[{i}].id: {kind.label} {ref.id!r} ({obj.name}) is retired")
        found.append(obj)
    return found


def _resolve_links(
    session: Session,
    offering_id: str,
    specs: list[Ref],
    prices: list[Ref],
    categories: list[Ref],
    members: list[Ref],
) -> _Links:
    links = _Links(
        specs=_resolve(session, SPECIFICATION, specs, "productSpecification"),
        prices=_resolve(session, PRICE, prices, "productOfferingPrice"),
        categories=_resolve(session, CATEGORY, categories, "category"),
        members=_resolve(session, OFFERING, members, "bundledProductOffering"),
    )
    for i, member in enumerate(links.members):
        if member.id == offering_id:
            raise InvalidInput(f"bundledProductOffering[{i}].id: a bundle cannot contain itself")
        if member.is_bundle:
            raise InvalidInput(
                f"bundledProductOffering[{i}].id: {member.name!r} is itself a bundle; "
                "bundles contain single offerings"
            )
    return links


def _check_activation(offering_name: str, is_bundle: bool, links: _Links) -> None:
    """An active offering is complete and only refers to active entities."""
    if not is_bundle and not links.specs:
        raise Conflict(
            f"productSpecification: offering {offering_name!r} cannot be active without at least "
            "one productSpecification",
            reason=ILLEGAL,
        )
    if not links.prices:
        raise Conflict(
            f"productOfferingPrice: offering {offering_name!r} cannot be active without at least "
            "one productOfferingPrice",
            reason=ILLEGAL,
        )
    groups: tuple[tuple[str, Kind, Sequence[Any]], ...] = (
        ("productSpecification", SPECIFICATION, links.specs),
        ("productOfferingPrice", PRICE, links.prices),
        ("category", CATEGORY, links.categories),
        ("bundledProductOffering", OFFERING, links.members),
    )
    for field, kind, items in groups:
        for i, item in enumerate(items):
            if item.lifecycle_status != "active":
                raise Conflict(
                    f"{field}[{i}].id: {kind.label} {item.name!r} is {item.lifecycle_status}; "
                    "an active offering only refers to active entities",
                    reason=ILLEGAL,
                )


def _apply_links(offering: ProductOffering, links: _Links) -> None:
    offering.spec_links = [
        OfferingSpecification(specification_id=s.id, specification=s, position=i)
        for i, s in enumerate(links.specs)
    ]
    offering.price_links = [
        OfferingPrice(price_id=p.id, price=p, position=i) for i, p in enumerate(links.prices)
    ]
    offering.category_links = [
        OfferingCategory(category_id=c.id, category=c, position=i) for i, c in enumerate(links.categories)
    ]
    offering.bundle_links = [
        BundledOffering(member_id=m.id, member=m, position=i) for i, m in enumerate(links.members)
    ]


def _current_refs(offering: ProductOffering) -> dict[str, list[Ref]]:
    return {
        "productSpecification": [Ref(id=link.specification_id) for link in offering.spec_links],
        "productOfferingPrice": [Ref(id=link.price_id) for link in offering.price_links],
        "category": [Ref(id=link.category_id) for link in offering.category_links],
        "bundledProductOffering": [Ref(id=link.member_id) for link in offering.bundle_links],
    }


def create_offering(
    session: Session, data: ProductOfferingCreate, actor: str, *, commit: bool = True
) -> ProductOffering:
    offering_id = new_id()
    _check_unique_version(session, OFFERING, data.name, data.version, None)
    links = _resolve_links(
        session,
        offering_id,
        data.productSpecification,
        data.productOfferingPrice,
        data.category,
        data.bundledProductOffering,
    )
    others: list[ProductOffering] = []
    if data.lifecycleStatus == "active":
        _check_activation(data.name, data.isBundle, links)
        others = _predecessors(session, OFFERING, offering_id, data.name, data.version)
    now = clock.now()
    offering = ProductOffering(
        id=offering_id,
        name=data.name,
        description=data.description,
        version=data.version,
        lifecycle_status=data.lifecycleStatus,
        status_reason=data.statusReason,
        is_bundle=data.isBundle,
        is_sellable=data.isSellable,
        channels=[c.id for c in data.channel],
        revenue_recognition=_recognition_json(data.revenueRecognition),
        reporting_attributes=_reporting_json(data.reportingAttributes),
        eccn=data.exportClassification,
        discount_rules=[r.model_dump(mode="json", exclude_none=True) for r in data.discountRules],
        created_at=now,
        updated_at=now,
    )
    _set_valid_for(offering, data.validFor)
    _apply_links(offering, links)
    session.add(offering)
    _finish_create(session, OFFERING, offering, actor)
    _supersede(session, OFFERING, offering, others, actor)
    if commit:
        session.commit()
    return offering


def update_offering(
    session: Session, offering_id: str, data: ProductOfferingUpdate, actor: str
) -> ProductOffering:
    offering = get_offering(session, offering_id)
    before = OFFERING.render(offering)
    changes = _changes(data)
    _no_nulls(
        changes,
        (
            "name",
            "version",
            "lifecycleStatus",
            "isBundle",
            "isSellable",
            "productSpecification",
            "bundledProductOffering",
            "productOfferingPrice",
            "category",
            "channel",
            "discountRules",
            "reportingAttributes",
        ),
        "productOffering",
    )
    _check_editable(OFFERING, offering, changes)
    old_status = offering.lifecycle_status
    new_status = changes.get("lifecycleStatus", old_status)
    _check_transition(OFFERING, offering, new_status)
    name, version = changes.get("name", offering.name), changes.get("version", offering.version)
    if "name" in changes or "version" in changes:
        _check_unique_version(session, OFFERING, name, version, offering.id)
    refs = _current_refs(offering)
    refs.update({k: v for k, v in changes.items() if k in refs})
    is_bundle = changes.get("isBundle", offering.is_bundle)
    try:
        check_offering_shape(is_bundle, refs["productSpecification"], refs["bundledProductOffering"])
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    links = _resolve_links(
        session,
        offering.id,
        refs["productSpecification"],
        refs["productOfferingPrice"],
        refs["category"],
        refs["bundledProductOffering"],
    )
    others: list[ProductOffering] = []
    if new_status == "active" and old_status != "active":
        _check_activation(name, is_bundle, links)
        others = _predecessors(session, OFFERING, offering.id, name, version)
    simple = {
        "name": "name",
        "description": "description",
        "version": "version",
        "lifecycleStatus": "lifecycle_status",
        "statusReason": "status_reason",
        "isBundle": "is_bundle",
        "isSellable": "is_sellable",
        "exportClassification": "eccn",
    }
    for key, column in simple.items():
        if key in changes:
            setattr(offering, column, changes[key])
    if "validFor" in changes:
        _set_valid_for(offering, changes["validFor"])
    if "channel" in changes:
        offering.channels = [c.id for c in changes["channel"]]
    if "revenueRecognition" in changes:
        offering.revenue_recognition = _recognition_json(changes["revenueRecognition"])
    if "reportingAttributes" in changes:
        offering.reporting_attributes = _reporting_json(changes["reportingAttributes"])
    if "discountRules" in changes:
        offering.discount_rules = [
            r.model_dump(mode="json", exclude_none=True) for r in changes["discountRules"]
        ]
    if set(changes) & set(refs):
        _apply_links(offering, links)
    _finish_update(session, OFFERING, offering, changes, old_status, actor, before)
    _supersede(session, OFFERING, offering, others, actor)
    session.commit()
    return offering


def delete_offering(session: Session, offering_id: str, actor: str) -> None:
    offering = get_offering(session, offering_id)
    bundles = session.scalars(
        select(BundledOffering.bundle_id).where(BundledOffering.member_id == offering_id)
    ).all()
    if bundles:
        raise Conflict(f"productOffering {offering_id!r} is part of bundle {', '.join(sorted(bundles))}")
    _delete(session, OFFERING, offering, actor, commit=True)


def retire(session: Session, resource_id: str, actor: str, reason: str | None = None) -> tuple[Kind, Any]:
    """Retire whatever catalog entity has this id (``turnup catalog retire``)."""
    candidates: tuple[tuple[Kind, Callable[..., Any], type[BaseModel]], ...] = (
        (OFFERING, update_offering, ProductOfferingUpdate),
        (SPECIFICATION, update_specification, ProductSpecificationUpdate),
        (PRICE, update_price, ProductOfferingPriceUpdate),
        (CATEGORY, update_category, CategoryUpdate),
    )
    for kind, update, schema in candidates:
        obj = session.get(kind.model, resource_id)
        if obj is not None:
            if obj.lifecycle_status == "retired":
                raise Conflict(
                    f"{kind.label} {resource_id!r} ({obj.name} {obj.version}) is already retired, "
                    "which is final",
                    reason=ILLEGAL,
                )
            values: dict[str, Any] = {"lifecycleStatus": "retired"}
            if reason and kind in (OFFERING, SPECIFICATION):
                values["statusReason"] = reason
            return kind, update(session, resource_id, schema(**values), actor)
    raise NotFound(f"no catalog entity with id {resource_id!r}")


# --- read helpers (web catalog browser, CLI) ----------------------------------------------------------


class OfferingPage(list[dict[str, Any]]):
    """A page of rendered offerings; ``total`` counts every match, not just this page."""

    total: int = 0


def list_offerings(
    session: Session,
    *,
    lifecycle_status: str | None = None,
    search: str | None = None,
    category_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> OfferingPage:
    stmt = select(ProductOffering)
    if lifecycle_status:
        stmt = stmt.where(ProductOffering.lifecycle_status == lifecycle_status)
    if search:
        pattern = f"%{search.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(ProductOffering.name).like(pattern),
                func.lower(ProductOffering.description).like(pattern),
            )
        )
    if category_id:
        stmt = stmt.where(
            ProductOffering.id.in_(
                select(OfferingCategory.offering_id).where(OfferingCategory.category_id == category_id)
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(ProductOffering.name, ProductOffering.version, ProductOffering.id)
        .offset(max(offset, 0))
        .limit(max(limit, 0))
    )
    page = OfferingPage(render_offering(o) for o in rows)
    page.total = total
    return page
