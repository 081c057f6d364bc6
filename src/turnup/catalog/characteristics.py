"""Product characteristics against the catalog (pure functions, no database): what an offering's products
may carry (TMF620 ``productSpecCharacteristic`` of its specifications and bundle members), which values are
allowed (listed values, inclusive ``valueFrom``/``valueTo`` ranges), their defaults, and whether a price
applies to a product with given characteristics (``prodSpecCharValueUse``).

Values compare as numbers when both sides are numbers (``1000`` equals ``"1000"`` and ``1000.0``), as
themselves otherwise; booleans only equal booleans.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from turnup.catalog.queries import OfferingTerms, PriceTerms

MAX_DEPTH = 8


def bundle_members(offering: OfferingTerms, depth: int = 0) -> list[OfferingTerms]:
    """The offering and every bundle member below it (depth first, catalog order)."""
    found = [offering]
    if depth < MAX_DEPTH:
        for member in offering.members:
            found.extend(bundle_members(member, depth + 1))
    return found


def value_problem(value_type: str, value: Any) -> str | None:
    """Why ``value`` is not of ``value_type`` (string, integer, number, boolean); None when it is."""
    if value_type == "boolean":
        return None if isinstance(value, bool) else "not a boolean"
    if value_type == "string":
        return None if isinstance(value, str) else "not a string"
    number = _number(value)
    if number is None:
        return "not an integer" if value_type == "integer" else "not a number"
    if value_type == "integer" and number != number.to_integral_value():
        return "not an integer"
    return None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return x == y
    return bool(a == b)


def value_allowed(allowed: list[dict[str, Any]] | tuple[dict[str, Any], ...], value: Any) -> bool:
    """Whether ``value`` is one of the listed values or inside one of the ranges (nothing listed: any)."""
    if not allowed:
        return True
    for entry in allowed:
        if "value" in entry:
            if _same(entry["value"], value):
                return True
            continue
        number = _number(value)
        low, high = _number(entry.get("valueFrom")), _number(entry.get("valueTo"))
        if number is not None and (low is None or number >= low) and (high is None or number <= high):
            return True
    return False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _number(value)
    if number is not None and not isinstance(value, str):
        return f"{number.normalize():f}" if number != number.to_integral_value() else str(int(number))
    return repr(value)


def describe_allowed(allowed: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> str:
    """``1000``, ``500, 1000``, ``1..8`` — the allowed values and ranges as people read them."""
    parts = []
    for entry in allowed:
        if "value" in entry:
            parts.append(_text(entry["value"]))
        else:
            low, high = entry.get("valueFrom"), entry.get("valueTo")
            parts.append(f"{'' if low is None else _text(low)}..{'' if high is None else _text(high)}")
    return ", ".join(parts)


def characteristic_definitions(offering: OfferingTerms) -> dict[str, dict[str, Any]]:
    """Every characteristic the offering's specifications (and its bundle members') define, by name (the
    first definition of a name wins)."""
    found: dict[str, dict[str, Any]] = {}
    for member in bundle_members(offering):
        for spec in member.specifications:
            for definition in spec.characteristics:
                found.setdefault(str(definition["name"]), definition)
    return found


def default_characteristics(offering: OfferingTerms) -> dict[str, Any]:
    """The characteristics a new product of the offering has: each definition's ``isDefault`` value, then
    the provisioning parameters of its specifications (what its services are created with)."""
    values: dict[str, Any] = {}
    for name, definition in characteristic_definitions(offering).items():
        for entry in definition.get("productSpecCharacteristicValue") or []:
            if entry.get("isDefault") and "value" in entry:
                values[name] = entry["value"]
                break
    for member in bundle_members(offering):
        for spec in member.specifications:
            for action in spec.delivery_requirements.get("provisioning") or []:
                for key, value in (action.get("parameters") or {}).items():
                    values.setdefault(key, value)
    return values


def characteristic_problem(offering: OfferingTerms, name: str, value: Any, known: set[str]) -> str | None:
    """Why a product of ``offering`` cannot take ``value`` for characteristic ``name`` (None when it can).

    ``known``: names the product may carry besides the defined ones (e.g. its services' parameters); a name
    neither defined nor known is refused. A defined characteristic must be configurable, of its type and
    among its allowed values / ranges.
    """
    definitions = characteristic_definitions(offering)
    definition = definitions.get(name)
    if definition is None:
        if name in known:
            return None
        names = ", ".join(sorted(set(definitions) | known)) or "none"
        return f"unknown characteristic of {offering.name!r} (known: {names})"
    if definition.get("configurable") is False:
        return f"not configurable on {offering.name!r}"
    value_type = str(definition.get("valueType") or "string")
    wrong = value_problem(value_type, value)
    if wrong:
        return f"{_text(value)} is {wrong}: {name} takes {value_type} values on {offering.name!r}"
    allowed = definition.get("productSpecCharacteristicValue") or []
    if not value_allowed(allowed, value):
        listed = describe_allowed(allowed)
        return f"{_text(value)} is not an allowed value of {offering.name!r} (allowed: {listed})"
    return None


def price_applies(price: PriceTerms, characteristics: dict[str, Any]) -> bool:
    """Whether a price's ``prodSpecCharValueUse`` conditions (if any) hold for these characteristics."""
    for use in price.char_value_use:
        name = str(use.get("name"))
        if name not in characteristics:
            return False
        if not value_allowed(use.get("productSpecCharacteristicValue") or [], characteristics[name]):
            return False
    return True
