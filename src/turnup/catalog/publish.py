"""Catalog authoring: validate a whole YAML catalog file, report every problem with its path, and publish
it all or nothing in one transaction.

File shape (names instead of ids; everything defaults to ``lifecycleStatus: active``)::

    catalog: Northwind Fibre & Voice
    categories:
      - {name: Connectivity}
      - {name: Business Fibre, parent: Connectivity}
    productSpecifications:
      - name: Business Fibre Access
        version: "1.0"
        deliveryRequirements: {physical: [...], logicalResources: [...], fieldVisit: {...}, ...}
        revenueRecognition: {method: pointInTime}
        exportClassification: 5A991
        channels: [web, sales]
    productOfferings:
      - name: Business Fibre 1G
        categories: [Business Fibre]
        productSpecifications: [Business Fibre Access]
        prices:
          - {name: Monthly, priceType: recurring, recurringChargePeriodType: month,
             price: {unit: GBP, value: "199.00"}}
      - name: Fibre + Voice
        bundledProductOfferings: [Business Fibre 1G, Hosted Voice Seat]
        discountRules: [{kind: approvalThreshold, maxDiscountPercentWithoutApproval: 10}]

A specification or offering named in the file resolves to the file's own (highest) version, else to the
active version already in the catalog. Categories that already exist (same name and version) are reused.
Publishing a new version of an existing specification or offering supersedes the active one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, Field, StrictBool, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from turnup.catalog import services
from turnup.catalog.orm import Category, ProductOffering, ProductSpecification
from turnup.catalog.schemas import (
    DISCOUNT_KINDS,
    LOGICAL_KINDS,
    CategoryCreate,
    Channels,
    DeliveryRequirements,
    DiscountRule,
    LifecycleStatus,
    Name,
    ProductOfferingCreate,
    ProductOfferingPriceCreate,
    ProductSpecificationCreate,
    SpecCharacteristic,
    Strict,
    TimePeriod,
    Version,
    _ComponentFields,
    _PriceFields,
    check_recognition,
)
from turnup.kernel.errors import Conflict, InvalidInput, TurnupError

SECTIONS = ("categories", "productSpecifications", "productOfferings")
TOP_LEVEL = {"catalog", "description", *SECTIONS}
_SUBPATH = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): (.+)$", re.S)
_TAGS = set(LOGICAL_KINDS) | set(DISCOUNT_KINDS)


def _text_version(value: Any) -> Any:
    """YAML turns ``version: 1.0`` into a number; in a catalog file that means the text '1.0'."""
    if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        return str(value)
    return value


FileVersion = Annotated[Version, BeforeValidator(_text_version)]


# --- file shapes ------------------------------------------------------------------------------------


class FileCategory(Strict):
    name: Name
    description: str | None = Field(default=None, max_length=2000)
    version: FileVersion = "1.0"
    lifecycleStatus: LifecycleStatus = "active"
    parent: Name | None = None
    validFor: TimePeriod | None = None


class FileSpecification(_ComponentFields):
    name: Name
    description: str | None = Field(default=None, max_length=2000)
    brand: str | None = Field(default=None, max_length=100)
    productNumber: str | None = Field(default=None, max_length=100)
    version: FileVersion = "1.0"
    lifecycleStatus: LifecycleStatus = "active"
    validFor: TimePeriod | None = None
    deliveryRequirements: DeliveryRequirements = Field(default_factory=DeliveryRequirements)
    channels: Channels = Field(default_factory=list)
    productSpecCharacteristic: list[SpecCharacteristic] = Field(default_factory=list, max_length=100)


class FilePrice(_PriceFields):
    name: Name
    version: FileVersion = "1.0"


class FileOffering(_ComponentFields):
    name: Name
    description: str | None = Field(default=None, max_length=2000)
    version: FileVersion = "1.0"
    lifecycleStatus: LifecycleStatus = "active"
    isSellable: StrictBool = True
    isBundle: StrictBool | None = None
    validFor: TimePeriod | None = None
    categories: list[Name] = Field(default_factory=list)
    productSpecifications: list[Name] = Field(default_factory=list)
    bundledProductOfferings: list[Name] = Field(default_factory=list)
    prices: list[FilePrice] = Field(default_factory=list, max_length=20)
    channels: Channels = Field(default_factory=list)
    discountRules: list[DiscountRule] = Field(default_factory=list, max_length=20)

    @property
    def bundle(self) -> bool:
        return self.isBundle if self.isBundle is not None else bool(self.bundledProductOfferings)


# --- error paths ------------------------------------------------------------------------------------


def join_path(prefix: str, loc: tuple[Any, ...] | list[Any]) -> str:
    path = prefix
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and isinstance(previous, int) and part in _TAGS:
            pass  # discriminated-union tag, not part of the document
        else:
            path += f".{part}" if path else str(part)
        previous = part
    return path


def format_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    """Pydantic errors as ``path: problem`` strings; a validator's own ``sub.path: problem`` is appended."""
    problems = []
    for error in exc.errors():
        path = join_path(prefix, tuple(error.get("loc", ())))
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        for part in message.split("; "):
            match = _SUBPATH.match(part)
            if match and error.get("type") == "value_error":
                problems.append(
                    f"{path}.{match.group(1)}: {match.group(2)}"
                    if path
                    else f"{match.group(1)}: {match.group(2)}"
                )
            else:
                problems.append(f"{path or '(document)'}: {part}")
    return problems


# --- loading ----------------------------------------------------------------------------------------


class _DecimalLoader(yaml.SafeLoader):
    """YAML with exact decimals: ``45.10`` becomes Decimal('45.10'), never a float."""


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    try:
        return Decimal(str(text).replace("_", ""))
    except ArithmeticError:
        return str(text)


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def load_catalog_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML catalog file; an unreadable file or bad YAML is an ``InvalidInput`` naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read catalog file: {exc}") from None
    try:
        document = yaml.load(text, Loader=_DecimalLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput(f"{path}:{where} not valid YAML: {problem}") from None
    if not isinstance(document, dict):
        raise InvalidInput(
            f"{path}: a catalog file must be a mapping with categories, "
            "productSpecifications and productOfferings"
        )
    return document


# --- publishing -------------------------------------------------------------------------------------


@dataclass
class PublishResult:
    catalog: str | None = None
    categories: list[str] = field(default_factory=list)
    reused_categories: list[str] = field(default_factory=list)
    specifications: list[str] = field(default_factory=list)
    prices: list[str] = field(default_factory=list)
    offerings: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.categories)} categories ({len(self.reused_categories)} reused), "
            f"{len(self.specifications)} product specifications, {len(self.prices)} prices, "
            f"{len(self.offerings)} product offerings; "
            f"{len(self.superseded)} earlier versions superseded"
        )


@dataclass
class _Parsed:
    categories: list[tuple[int, FileCategory]] = field(default_factory=list)
    specifications: list[tuple[int, FileSpecification]] = field(default_factory=list)
    offerings: list[tuple[int, FileOffering]] = field(default_factory=list)
    # names of items that failed validation (already reported): references to them are not errors again
    invalid: dict[str, set[str]] = field(default_factory=lambda: {s: set() for s in SECTIONS})


def _parse(document: Any, errors: list[str]) -> _Parsed:
    parsed = _Parsed()
    if not isinstance(document, dict):
        errors.append(
            "(document): must be a mapping with categories, productSpecifications, productOfferings"
        )
        return parsed
    for key in document:
        if key not in TOP_LEVEL:
            errors.append(f"{key}: unknown section; expected one of {', '.join(sorted(TOP_LEVEL))}")
    if "catalog" in document and not isinstance(document["catalog"], str):
        errors.append("catalog: must be a name (text)")
    shapes: dict[str, tuple[type[BaseModel], list[Any]]] = {
        "categories": (FileCategory, parsed.categories),
        "productSpecifications": (FileSpecification, parsed.specifications),
        "productOfferings": (FileOffering, parsed.offerings),
    }
    for section, (model, target) in shapes.items():
        items = document.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            errors.append(f"{section}: must be a list")
            continue
        for i, item in enumerate(items):
            try:
                target.append((i, model.model_validate(item)))
            except ValidationError as exc:
                errors.extend(format_errors(exc, f"{section}[{i}]"))
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    parsed.invalid[section].add(item["name"].strip())
    return parsed


def _duplicates(section: str, items: list[tuple[int, Any]], errors: list[str], *, by_version: bool) -> None:
    seen: dict[Any, int] = {}
    for i, item in items:
        key = (item.name, item.version) if by_version else item.name
        if key in seen:
            what = f"{item.name!r} version {item.version}" if by_version else repr(item.name)
            errors.append(f"{section}[{i}].name: {what} is already declared at {section}[{seen[key]}]")
        else:
            seen[key] = i


def _latest(items: list[tuple[int, Any]], name: str) -> tuple[int, Any] | None:
    matches = [(i, item) for i, item in items if item.name == name]
    if not matches:
        return None
    return max(matches, key=lambda pair: services.version_key(pair[1].version))


def _active_in_db(session: Session, model: type[Any], name: str) -> Any:
    return session.scalar(
        select(model).where(model.name == name, model.lifecycle_status == "active").order_by(model.id)
    )


def _check(session: Session, parsed: _Parsed, errors: list[str]) -> None:
    """Cross-item rules: duplicates, references, versions, bundle shape. Writes nothing."""
    _duplicates("categories", parsed.categories, errors, by_version=False)
    _duplicates("productSpecifications", parsed.specifications, errors, by_version=True)
    _duplicates("productOfferings", parsed.offerings, errors, by_version=True)
    file_categories = {c.name for _, c in parsed.categories} | parsed.invalid["categories"]

    for i, cat in parsed.categories:
        if (
            cat.parent is not None
            and cat.parent not in file_categories
            and _category_in_db(session, cat.parent) is None
        ):
            errors.append(f"categories[{i}].parent: unknown category {cat.parent!r}")
        if cat.parent == cat.name:
            errors.append(f"categories[{i}].parent: a category cannot be its own parent")

    sections: tuple[tuple[str, type[Any], Any], ...] = (
        ("productSpecifications", ProductSpecification, parsed.specifications),
        ("productOfferings", ProductOffering, parsed.offerings),
    )
    for section, model, items in sections:
        label = "productSpecification" if model is ProductSpecification else "productOffering"
        for i, item in items:
            existing = session.scalar(
                select(model).where(model.name == item.name, model.version == item.version)
            )
            if existing is not None:
                errors.append(
                    f"{section}[{i}].version: {label} {item.name!r} version {item.version} is "
                    f"already published (id {existing.id}); give the file a new version"
                )
                continue
            active = _active_in_db(session, model, item.name)
            if (
                item.lifecycleStatus == "active"
                and active is not None
                and services.version_key(active.version) >= services.version_key(item.version)
            ):
                errors.append(
                    f"{section}[{i}].version: {label} {item.name!r} version {active.version} is "
                    f"active; a new version must be higher than that, not {item.version}"
                )

    for i, spec in parsed.specifications:
        try:
            check_recognition(spec.revenueRecognition, spec.deliveryRequirements)
        except ValueError as exc:
            errors.append(f"productSpecifications[{i}].{exc}")

    for i, off in parsed.offerings:
        path = f"productOfferings[{i}]"
        for j, name in enumerate(off.categories):
            if name not in file_categories and _category_in_db(session, name) is None:
                errors.append(f"{path}.categories[{j}]: unknown category {name!r}")
        for j, name in enumerate(off.productSpecifications):
            found = _latest(parsed.specifications, name)
            if found is None and name in parsed.invalid["productSpecifications"]:
                continue
            if found is None and _active_in_db(session, ProductSpecification, name) is None:
                errors.append(f"{path}.productSpecifications[{j}]: unknown specification {name!r}")
            elif (
                found is not None and off.lifecycleStatus == "active" and found[1].lifecycleStatus != "active"
            ):
                errors.append(
                    f"{path}.productSpecifications[{j}]: specification {name!r} is "
                    f"{found[1].lifecycleStatus}; an active offering needs active specifications"
                )
        for j, name in enumerate(off.bundledProductOfferings):
            found = _latest([(k, o) for k, o in parsed.offerings if k != i], name)
            member = found[1] if found else _active_in_db(session, ProductOffering, name)
            if member is None and name in parsed.invalid["productOfferings"]:
                continue
            if member is None:
                errors.append(f"{path}.bundledProductOfferings[{j}]: unknown offering {name!r}")
            elif member.bundle if isinstance(member, FileOffering) else member.is_bundle:
                errors.append(
                    f"{path}.bundledProductOfferings[{j}]: {name!r} is itself a bundle; "
                    "bundles contain single offerings"
                )
        if len(set(off.bundledProductOfferings)) != len(off.bundledProductOfferings):
            errors.append(f"{path}.bundledProductOfferings: an offering is listed twice")
        if len(set(off.productSpecifications)) != len(off.productSpecifications):
            errors.append(f"{path}.productSpecifications: a specification is listed twice")
        if off.bundle and len(off.bundledProductOfferings) < 2:
            errors.append(f"{path}.bundledProductOfferings: a bundle needs at least 2 offerings")
        if not off.bundle and off.bundledProductOfferings:
            errors.append(f"{path}.isBundle: bundledProductOfferings given but isBundle is false")
        if not off.bundle and not off.productSpecifications:
            errors.append(f"{path}.productSpecifications: an offering needs at least one specification")
        if off.lifecycleStatus == "active" and not off.prices:
            errors.append(f"{path}.prices: an active offering needs at least one price")


def _category_in_db(session: Session, name: str) -> Category | None:
    return session.scalar(
        select(Category)
        .where(Category.name == name, Category.lifecycle_status != "retired")
        .order_by(Category.id)
    )


def _category_order(
    categories: list[tuple[int, FileCategory]], errors: list[str]
) -> list[tuple[int, FileCategory]]:
    """Parents before children; a cycle is an error."""
    by_name = {c.name: (i, c) for i, c in categories}
    ordered: list[tuple[int, FileCategory]] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        i, cat = by_name[name]
        if state.get(name) == "visiting":
            errors.append(f"categories[{i}].parent: categories form a cycle ({' -> '.join([*chain, name])})")
            return
        state[name] = "visiting"
        if cat.parent in by_name and cat.parent != name:
            visit(cat.parent, [*chain, name])
        state[name] = "done"
        ordered.append((i, cat))

    for _, cat in categories:
        visit(cat.name, [])
    return ordered


def publish_catalog(session: Session, document: dict[str, Any], actor: str) -> PublishResult:
    """Validate the whole document, then publish it in one transaction; raise ``InvalidInput`` whose
    ``details`` lists every ``path: problem`` and change nothing when anything is wrong."""
    try:
        return _publish(session, document, actor)
    except IntegrityError:
        # a concurrent publisher created the same name and version between our checks and our writes
        session.rollback()
        raise Conflict(
            "the catalog changed while publishing (an entity with the same name and version "
            "was created concurrently); nothing was published, try again"
        ) from None


def _publish(session: Session, document: dict[str, Any], actor: str) -> PublishResult:
    errors: list[str] = []
    parsed = _parse(document, errors)
    _check(session, parsed, errors)
    ordered_categories = _category_order(parsed.categories, errors)
    if errors:
        session.rollback()
        raise InvalidInput(_summary(errors), reason="Invalid catalog", details=errors)

    result = PublishResult(catalog=document.get("catalog") if isinstance(document, dict) else None)
    category_ids: dict[str, str] = {}
    spec_ids: dict[str, str] = {}
    offering_ids: dict[str, str] = {}
    failed: set[str] = set()

    def attempt(path: str, action: Any) -> Any:
        try:
            return action()
        except TurnupError as exc:
            errors.append(f"{path}: {exc.message}")
        except ValidationError as exc:
            errors.extend(format_errors(exc, path))
        return None

    for i, cat in ordered_categories:
        existing = session.scalar(
            select(Category).where(Category.name == cat.name, Category.version == cat.version)
        )
        if existing is not None:
            category_ids[cat.name] = existing.id
            result.reused_categories.append(existing.id)
            continue
        parent_id = category_ids.get(cat.parent) if cat.parent else None
        if cat.parent and parent_id is None:
            found = _category_in_db(session, cat.parent)
            parent_id = found.id if found else None
        created = attempt(
            f"categories[{i}]",
            lambda cat=cat, parent_id=parent_id: services.create_category(
                session,
                CategoryCreate(
                    name=cat.name,
                    description=cat.description,
                    version=cat.version,
                    lifecycleStatus=cat.lifecycleStatus,
                    parentId=parent_id,
                    validFor=cat.validFor,
                ),
                actor,
                commit=False,
            ),
        )
        if created is not None:
            category_ids[cat.name] = created.id
            result.categories.append(created.id)

    for i, spec in sorted(parsed.specifications, key=lambda p: services.version_key(p[1].version)):
        values = spec.model_dump(exclude={"channels"}, exclude_unset=False)
        values["channel"] = [{"id": c} for c in spec.channels]
        created = attempt(
            f"productSpecifications[{i}]",
            lambda values=values: services.create_specification(
                session, ProductSpecificationCreate.model_validate(values), actor, commit=False
            ),
        )
        if created is not None:
            spec_ids[spec.name] = created.id  # ascending versions: the highest wins
            result.specifications.append(created.id)

    members_first = sorted(parsed.offerings, key=lambda p: (p[1].bundle, services.version_key(p[1].version)))
    for i, off in members_first:
        path = f"productOfferings[{i}]"
        price_refs = []
        for j, price in enumerate(off.prices):
            values = price.model_dump(by_alias=True, exclude_none=True)
            values["lifecycleStatus"] = "active" if off.lifecycleStatus == "active" else "inDesign"
            created_price = attempt(
                f"{path}.prices[{j}]",
                lambda values=values: services.create_price(
                    session, ProductOfferingPriceCreate.model_validate(values), actor, commit=False
                ),
            )
            if created_price is not None:
                price_refs.append({"id": created_price.id})
                result.prices.append(created_price.id)
        refs = {
            "category": _refs(off.categories, category_ids, session, Category),
            "productSpecification": _refs(off.productSpecifications, spec_ids, session, ProductSpecification),
            "bundledProductOffering": _refs(
                off.bundledProductOfferings, offering_ids, session, ProductOffering
            ),
        }
        if any(r is None for group in refs.values() for r in group):
            failed.add(off.name)
            continue  # the missing reference was itself reported
        values = off.model_dump(
            exclude={
                "categories",
                "productSpecifications",
                "bundledProductOfferings",
                "prices",
                "channels",
                "isBundle",
            }
        )
        values.update(
            refs,
            isBundle=off.bundle,
            productOfferingPrice=price_refs,
            channel=[{"id": c} for c in off.channels],
        )
        created = attempt(
            path,
            lambda values=values: services.create_offering(
                session, ProductOfferingCreate.model_validate(values), actor, commit=False
            ),
        )
        if created is not None:
            offering_ids[off.name] = created.id
            result.offerings.append(created.id)
        else:
            failed.add(off.name)

    if errors:
        session.rollback()
        raise InvalidInput(_summary(errors), reason="Invalid catalog", details=errors)
    session.flush()
    result.superseded = sorted(
        [
            *session.scalars(
                select(ProductSpecification.id).where(
                    ProductSpecification.superseded_by_id.in_(result.specifications)
                )
            ),
            *session.scalars(
                select(ProductOffering.id).where(ProductOffering.superseded_by_id.in_(result.offerings))
            ),
        ]
    )
    session.commit()
    return result


def _refs(
    names: list[str], created: dict[str, str], session: Session, model: type[Any]
) -> list[dict[str, str] | None]:
    refs: list[dict[str, str] | None] = []
    for name in names:
        if name in created:
            refs.append({"id": created[name]})
            continue
        found = _category_in_db(session, name) if model is Category else _active_in_db(session, model, name)
        refs.append({"id": found.id} if found is not None else None)
    return refs


def _summary(errors: list[str]) -> str:
    head = f"the catalog has {len(errors)} problem{'s' if len(errors) != 1 else ''}; nothing was published"
    return head + ": " + "; ".join(errors[:5]) + ("; …" if len(errors) > 5 else "")
