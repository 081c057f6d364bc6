"""TM Forum Open API conventions, implemented once for every resource.

- ``fields=a,b`` keeps only those attributes (plus ``id``, ``href``, ``@type``);
- ``offset``/``limit`` paginate; ``sort=name,-version`` orders;
- any other query parameter is an attribute filter: ``name=x`` equality, ``name=a,b`` OR,
  ``attr.gt|gte|lt|lte=v`` comparisons;
- list responses carry ``X-Total-Count`` (all matches) and ``X-Result-Count`` (this page).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from fastapi import Request, Response
from sqlalchemy import ColumnElement, Select, UnaryExpression, func, select
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.types import TypeDecorator, TypeEngine

from turnup.kernel.errors import InvalidInput, NotFound

RESERVED = {"fields", "offset", "limit", "sort"}
OPERATORS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__", "eq": "__eq__"}
ALWAYS = ("id", "href", "@type")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

# A column a list endpoint filters or sorts on: a mapped attribute (``Customer.name``) or any SQL expression.
ListColumn = ColumnElement[Any] | QueryableAttribute[Any]
# Query attribute name -> column, e.g. ``{"name": Customer.name, "status": Customer.status}``.
Filterable = Mapping[str, ListColumn]

M = TypeVar("M")


@dataclass
class ListQuery:
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    fields: set[str] | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (attribute, descending)
    filters: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (attribute, op, values)


def _int_param(name: str, raw: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {raw!r}", reason=f"Invalid {name}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidInput(f"{name} must be {bound}, got {value}", reason=f"Invalid {name}")
    return value


def parse_fields(raw: str | None) -> set[str] | None:
    if raw is None:
        return None
    return {f.strip() for f in raw.split(",") if f.strip()}


def parse_list_query(request: Request) -> ListQuery:
    params = request.query_params
    query = ListQuery(
        offset=_int_param("offset", params.get("offset", "0"), 0),
        limit=_int_param("limit", params.get("limit", str(DEFAULT_LIMIT)), 1, MAX_LIMIT),
        fields=parse_fields(params.get("fields")),
    )
    for item in (params.get("sort") or "").split(","):
        item = item.strip()
        if item:
            query.sort.append((item.lstrip("-+"), item.startswith("-")))
    for key, raw in params.multi_items():
        if key in RESERVED:
            continue
        attribute, op = key, "eq"
        head, dot, tail = key.rpartition(".")
        if dot and tail in OPERATORS:
            attribute, op = head, tail
        values = [v for v in raw.split(",")] if op == "eq" else [raw]
        query.filters.append((attribute, op, values))
    return query


def _sql_type(column: ListColumn) -> TypeEngine[Any]:
    expression = column.expression if isinstance(column, QueryableAttribute) else column
    sql_type = expression.type
    return sql_type.impl_instance if isinstance(sql_type, TypeDecorator) else sql_type


def _convert(column: ListColumn, attribute: str, raw: str) -> Any:
    column_type = _sql_type(column)
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        python_type = str
    try:
        if python_type is bool:
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if python_type is int:
            return int(raw)
        if python_type is Decimal:
            return Decimal(raw)
        if python_type is float:
            return float(raw)
        if python_type is datetime:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if value.tzinfo is None:
                raise ValueError("timezone offset required")
            return value
    except (ValueError, InvalidOperation):
        raise InvalidInput(
            f"filter {attribute}: {raw!r} is not a valid {python_type.__name__}", reason="Invalid filter"
        ) from None
    return raw


def apply_filters(stmt: Select[M], query: ListQuery, filterable: Filterable) -> Select[M]:
    for attribute, op, values in query.filters:
        column = filterable.get(attribute)
        if column is None:
            allowed = ", ".join(sorted(filterable))
            raise InvalidInput(
                f"cannot filter on {attribute!r}; filterable attributes: {allowed}", reason="Invalid filter"
            )
        converted = [_convert(column, attribute, v) for v in values]
        if op == "eq":
            stmt = stmt.where(column == converted[0] if len(converted) == 1 else column.in_(converted))
        else:
            stmt = stmt.where(getattr(column, OPERATORS[op])(converted[0]))
    return stmt


def select_fields(document: dict[str, Any], fields: set[str] | None) -> dict[str, Any]:
    """Keep only the requested attributes, always with id, href and @type."""
    if not fields:
        return document
    unknown_ok = {f.split(".")[0] for f in fields}
    return {k: v for k, v in document.items() if k in ALWAYS or k in unknown_ok}


def list_resources(
    request: Request,
    response: Response,
    session: Session,
    stmt: Select[M],
    filterable: Filterable,
    render: Callable[[M], dict[str, Any]],
    default_order: Sequence[ListColumn] = (),
) -> list[dict[str, Any]]:
    """Run a TMF list request: filters, total count, sort, page, field selection, headers."""
    query = parse_list_query(request)
    stmt = apply_filters(stmt, query, filterable)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    order: list[UnaryExpression[Any]] = []
    for attribute, descending in query.sort:
        column = filterable.get(attribute)
        if column is None:
            raise InvalidInput(f"cannot sort on {attribute!r}", reason="Invalid sort")
        order.append(column.desc() if descending else column.asc())
    stmt = stmt.order_by(*order, *default_order).offset(query.offset).limit(query.limit)
    items = [select_fields(render(row), query.fields) for row in session.scalars(stmt)]
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(items))
    return items


def confine(stmt: Select[M], column: ListColumn, customer_id: str | None) -> Select[M]:
    """Customer confinement for lists: with a ``customer_id`` (a portal user), only that customer's rows."""
    return stmt if customer_id is None else stmt.where(column == customer_id)


def confine_one(owner_id: str | None, customer_id: str | None, label: str, resource_id: str) -> None:
    """Customer confinement for one resource: another customer's answers 404, exactly as an unknown id."""
    if customer_id is not None and owner_id != customer_id:
        raise NotFound(f"{label} {resource_id!r} not found")


def get_or_404(session: Session, model: type[M], resource_id: str, label: str) -> M:
    obj = session.get(model, resource_id)
    if obj is None:
        raise NotFound(f"{label} {resource_id!r} not found")
    return obj


def render_one(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    """A single resource, honouring ``fields=``."""
    return select_fields(document, parse_fields(request.query_params.get("fields")))
