"""The audit trail over HTTP: search entries by resource, actor and time (``audit:read``).

``GET /tmf-api/turnupAudit/v1/auditEntry?resourceType=&resourceId=&actor=&from=&to=`` (TMF paging, sorting,
``fields``; ``from`` inclusive, ``to`` exclusive, ISO 8601 with an offset) and ``GET …/auditEntry/{id}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.deps import get_session, requires
from turnup.api.tmf import get_or_404, list_resources, render_one
from turnup.kernel.audit import AuditEntry
from turnup.kernel.errors import InvalidInput
from turnup.kernel.hrefs import api_base, href, iso
from turnup.security import Principal

API = "turnupAudit"
PATH = f"{api_base(API)}/auditEntry"
TIME_BOUNDS = ("from", "to")

router = APIRouter(tags=["audit"])

FILTERABLE = {
    "id": AuditEntry.id,
    "seq": AuditEntry.seq,
    "resourceType": AuditEntry.resource_type,
    "resourceId": AuditEntry.resource_id,
    "actor": AuditEntry.actor,
    "action": AuditEntry.action,
    "requestId": AuditEntry.request_id,
    "at": AuditEntry.at,
}


def render_entry(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "href": href(API, "auditEntry", e.id),
        "@type": "AuditEntry",
        "seq": e.seq,
        "at": iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "resourceType": e.resource_type,
        "resourceId": e.resource_id,
        "requestId": e.request_id,
        "details": e.details,
        "comment": e.comment,
        "before": e.before,
        "after": e.after,
        "prevHash": e.prev_hash,
        "entryHash": e.entry_hash,
    }


def _bound(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{name}: {raw!r} is not an ISO 8601 date-time", reason=f"Invalid {name}"
        ) from None
    if value.tzinfo is None:
        raise InvalidInput(f"{name}: {raw!r} needs a timezone offset", reason=f"Invalid {name}")
    return value


@router.get(PATH)
def list_entries(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    _: Principal = requires("audit:read"),
) -> list[dict[str, Any]]:
    """Audit entries, newest first unless ``sort`` says otherwise."""
    stmt = select(AuditEntry)
    params = request.query_params
    for name in TIME_BOUNDS:
        values = params.getlist(name)
        if len(values) > 1:
            raise InvalidInput(f"{name}: give it once", reason=f"Invalid {name}")
        if values:
            bound = _bound(name, values[0])
            stmt = stmt.where(AuditEntry.at >= bound if name == "from" else AuditEntry.at < bound)
    rest = [(k, v) for k, v in params.multi_items() if k not in TIME_BOUNDS]
    scope = {**request.scope, "query_string": urlencode(rest).encode()}
    return list_resources(
        Request(scope),
        response,
        session,
        stmt,
        FILTERABLE,
        render_entry,
        (AuditEntry.at.desc(), AuditEntry.id.desc()),
    )


@router.get(PATH + "/{entry_id}")
def get_entry(
    entry_id: str,
    request: Request,
    session: Session = Depends(get_session),
    _: Principal = requires("audit:read"),
) -> dict[str, Any]:
    return render_one(request, render_entry(get_or_404(session, AuditEntry, entry_id, "auditEntry")))
