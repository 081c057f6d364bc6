"""Usage over HTTP: TMF635 v4 ``usage`` (list, get, create), bulk ``usageImport`` (CSV or JSON) and the
review queue (``usageReview``: list, re-rate, write off)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.api.tmf import get_or_404, list_resources, render_one
from turnup.kernel.errors import InvalidInput
from turnup.security import Principal
from turnup.usage import services
from turnup.usage.files import kind_of, read_records
from turnup.usage.orm import UsageRecord
from turnup.usage.render import render_usage
from turnup.usage.schemas import ReviewRerate, ReviewWriteOff, UsageCreate

BASE = "/tmf-api/usageManagement/v4"
router = APIRouter(tags=["usage"])

FILTERABLE = {
    "id": UsageRecord.id,
    "usageDate": UsageRecord.usage_date,
    "usageType": UsageRecord.usage_type,
    "status": UsageRecord.status,
    "relatedParty.id": UsageRecord.customer_id,
    "relatedService.id": UsageRecord.service_id,
    "serviceId": UsageRecord.service_id,
    "billingAccount.id": UsageRecord.billing_account_id,
    "review.state": UsageRecord.review_state,
    "review.reason": UsageRecord.review_reason,
    "lastUpdate": UsageRecord.updated_at,
}
ORDER = (UsageRecord.usage_date, UsageRecord.id)


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.get(BASE + "/usage", name="list usage")
def list_usage(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("usage:read"),
) -> list[dict[str, Any]]:
    return list_resources(request, response, session, select(UsageRecord), FILTERABLE, render_usage, ORDER)


@router.get(BASE + "/usage/{usage_id}", name="get usage")
def get_usage(
    usage_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires("usage:read"),
) -> dict[str, Any]:
    return render_one(request, render_usage(get_or_404(session, UsageRecord, usage_id, "usage")))


@router.post(BASE + "/usage", status_code=201, name="create usage")
def create_usage(
    response: Response,
    body: UsageCreate = Body(...),
    session: Session = Depends(get_session),
    principal: Principal = requires("usage:write"),
) -> dict[str, Any]:
    """201 with the record; 200 with the stored record when the same record (same id and content) was
    already received; 409 for the same id with other content."""
    record, created = services.create_usage(session, body, principal.actor)
    if not created:
        response.status_code = 200
    return render_usage(record)


@router.post(BASE + "/usageImport", name="import usage")
def import_usage(
    request: Request,
    raw: bytes = Depends(_raw_body),
    session: Session = Depends(get_session),
    principal: Principal = requires("usage:write"),
) -> dict[str, Any]:
    """A CSV (``Content-Type: text/csv``) or JSON file of usage records: the accepted records are written in
    one transaction; the report counts them and lists every rejected line with its reason."""
    kind = kind_of(request.headers.get("content-type"))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("file: not UTF-8 text") from None
    parsed = [services.parse_one(line, doc) for line, doc in read_records(text, kind)]
    if not parsed:
        raise InvalidInput("file: no usage records")
    report = services.import_usage(session, parsed, source=f"api:{principal.actor}", actor=principal.actor)
    return report.document()


@router.get(BASE + "/usageReview", name="list usage review")
def list_review(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("usage:read"),
) -> list[dict[str, Any]]:
    """Usage held for review (not billed): ``review.state = open``."""
    stmt = select(UsageRecord).where(UsageRecord.review_state == "open")
    return list_resources(request, response, session, stmt, FILTERABLE, render_usage, ORDER)


@router.post(BASE + "/usageReview/{usage_id}/rerate", name="re-rate usage under review")
def rerate(
    usage_id: str,
    body: ReviewRerate = Body(default_factory=ReviewRerate),
    session: Session = Depends(get_session),
    principal: Principal = requires("usage:write"),
) -> dict[str, Any]:
    record = services.rerate_review(
        session, usage_id, force=body.force, note=body.note, actor=principal.actor
    )
    return render_usage(record)


@router.post(BASE + "/usageReview/{usage_id}/writeOff", name="write off usage under review")
def write_off(
    usage_id: str,
    body: ReviewWriteOff = Body(...),
    session: Session = Depends(get_session),
    principal: Principal = requires("usage:write"),
) -> dict[str, Any]:
    return render_usage(services.write_off(session, usage_id, note=body.note, actor=principal.actor))


router.include_router(hub_router("usageManagement", "usage"))
