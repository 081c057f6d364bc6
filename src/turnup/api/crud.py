"""Standard TMF routes for a resource: list, retrieve, create (201), merge-patch (200), delete (204).

PATCH and DELETE record the resource's document before the change, and for PATCH after it (rendered when the
transaction commits), in the audit entries the feature's use case writes for that resource
(``turnup.kernel.audit.changing``).

Note: no ``from __future__ import annotations`` here; FastAPI reads the schema classes given to
``add_crud_routes`` from real annotations at runtime.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Session

from turnup.api.deps import get_session, requires
from turnup.api.tmf import (
    Filterable,
    ListColumn,
    confine,
    confine_one,
    get_or_404,
    list_resources,
    render_one,
)
from turnup.kernel import audit
from turnup.kernel.errors import NotFound
from turnup.security import Principal

MERGE_PATCH: dict[str, dict[str, Any]] = {"application/merge-patch+json": {}, "application/json": {}}

M = TypeVar("M")  # the mapped class served
C = TypeVar("C", bound=BaseModel)  # its create schema
U = TypeVar("U", bound=BaseModel)  # its merge-patch schema


def _id_of(found: Any, item_id: str) -> str:
    """The primary key of a resource found by ``item_id`` (which may be another unique key, e.g. a name)."""
    return str(getattr(found, "id", item_id))


@dataclass
class CrudSpec(Generic[M, C, U]):
    path: str  # e.g. "/tmf-api/customerManagement/v4/customer"
    label: str  # e.g. "customer" (used in messages)
    area: str  # permission area, e.g. "accounts"
    model: type[M]
    select: Callable[[], Select[M]]
    filterable: Filterable
    render: Callable[[M], dict[str, Any]]
    default_order: Sequence[ListColumn]
    create_schema: type[C] | None = None
    create: Callable[[Session, C, str], M] | None = None
    update_schema: type[U] | None = None
    update: Callable[[Session, str, U, str], M] | None = None
    delete: Callable[[Session, str, str], None] | None = None
    # how ``GET …/{id}`` finds one (404 when unknown); default: by primary key. Lets a resource be
    # addressed by another unique key too (a pool by its name).
    get: Callable[[Session, str], M] | None = None
    # customer confinement: the column holding the owning customer's id (``Customer.id`` for customers,
    # ``Quote.customer_id`` …) and how to read it from a row. With these, a portal user (role ``customer``)
    # may list/get only their own rows (404 for others'); without, such a user gets 403.
    owner_column: ListColumn | None = None
    owner: Callable[[M], str | None] | None = None
    # the action of the permission for DELETE and PATCH (default ``write``), e.g. ``delete`` or ``admin``
    delete_action: str = "write"
    update_action: str = "write"
    create_action: str = "write"


def add_crud_routes(router: APIRouter, spec: CrudSpec[M, C, U]) -> None:
    owned = spec.owner_column is not None and spec.owner is not None
    read = requires(f"{spec.area}:read", confinable=owned)
    owner_column, owner = spec.owner_column, spec.owner

    def list_items(
        request: Request,
        response: Response,
        session: Session = Depends(get_session),
        principal: Principal = read,
    ) -> list[dict[str, Any]]:
        stmt = spec.select()
        if owner_column is not None:
            stmt = confine(stmt, owner_column, principal.customer_id)
        return list_resources(
            request, response, session, stmt, spec.filterable, spec.render, spec.default_order
        )

    def _find(session: Session, item_id: str) -> M:
        if spec.get is not None:
            return spec.get(session, item_id)
        return get_or_404(session, spec.model, item_id, spec.label)

    def _before(session: Session, item_id: str) -> tuple[str | None, dict[str, Any] | None]:
        """The resource's id and document before a change, read through a separate session on the same
        connection and transaction: the use case's session loads (and locks) the row itself, unaffected."""
        peek = Session(bind=session.connection())
        try:
            found = _find(peek, item_id)
            return _id_of(found, item_id), spec.render(found)
        except NotFound:
            return None, None
        finally:
            peek.close()

    def _after(session: Session, resource_id: str) -> dict[str, Any] | None:
        found = session.get(spec.model, resource_id)
        return None if found is None else spec.render(found)

    def get_item(
        item_id: str, request: Request, session: Session = Depends(get_session), principal: Principal = read
    ) -> dict[str, Any]:
        found = _find(session, item_id)
        if owner is not None:
            confine_one(owner(found), principal.customer_id, spec.label, item_id)
        return render_one(request, spec.render(found))

    router.add_api_route(spec.path, list_items, methods=["GET"], name=f"list {spec.label}")
    router.add_api_route(spec.path + "/{item_id}", get_item, methods=["GET"], name=f"get {spec.label}")

    # The body annotations below name the spec's schema class, chosen at runtime: FastAPI validates the
    # request body against it; mypy cannot use a variable as a type (hence the narrow valid-type ignores).
    if spec.create and spec.create_schema:
        create_fn, schema = spec.create, spec.create_schema

        def create_item(
            body: schema = Body(...),  # type: ignore[valid-type]
            session: Session = Depends(get_session),
            principal: Principal = requires(f"{spec.area}:{spec.create_action}"),
        ) -> dict[str, Any]:
            return spec.render(create_fn(session, body, principal.actor))

        router.add_api_route(
            spec.path, create_item, methods=["POST"], status_code=201, name=f"create {spec.label}"
        )

    if spec.update and spec.update_schema:
        update_fn, patch_schema = spec.update, spec.update_schema

        def patch_item(
            item_id: str,
            body: patch_schema = Body(..., media_type="application/merge-patch+json"),  # type: ignore[valid-type]
            session: Session = Depends(get_session),
            principal: Principal = requires(f"{spec.area}:{spec.update_action}"),
        ) -> dict[str, Any]:
            resource_id, before = _before(session, item_id)
            if resource_id is None:  # unknown: the use case answers (its own 404)
                return spec.render(update_fn(session, item_id, body, principal.actor))
            with audit.changing(resource_id, before=before, after=lambda: _after(session, resource_id)):
                return spec.render(update_fn(session, item_id, body, principal.actor))

        router.add_api_route(
            spec.path + "/{item_id}", patch_item, methods=["PATCH"], name=f"patch {spec.label}"
        )

    if spec.delete:
        delete_fn = spec.delete

        def delete_item(
            item_id: str,
            session: Session = Depends(get_session),
            principal: Principal = requires(f"{spec.area}:{spec.delete_action}"),
        ) -> Response:
            resource_id, before = _before(session, item_id)
            with audit.changing(resource_id or item_id, before=before, after=None):
                delete_fn(session, item_id, principal.actor)
            return Response(status_code=204)

        router.add_api_route(
            spec.path + "/{item_id}",
            delete_item,
            methods=["DELETE"],
            status_code=204,
            name=f"delete {spec.label}",
        )
