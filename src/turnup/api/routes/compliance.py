"""Compliance over HTTP: ``/tmf-api/turnupCompliance/v1`` review queue, ad-hoc screening, lists, rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.api.tmf import list_resources, render_one
from turnup.compliance import services
from turnup.compliance.orm import ScreeningCase, ScreeningListVersion
from turnup.compliance.render import API, BASE_PATH, render_case, render_list
from turnup.compliance.schemas import CaseResolution, ExportCheckRequest, ScreeningListUpload, ScreenRequest
from turnup.kernel import clock
from turnup.security import Principal

router = APIRouter(tags=["compliance"])
api = APIRouter(prefix=BASE_PATH)

CASE_FILTERS = {
    "id": ScreeningCase.id,
    "state": ScreeningCase.state,
    "refType": ScreeningCase.ref_type,
    "refId": ScreeningCase.ref_id,
    "createdAt": ScreeningCase.created_at,
    "lastUpdate": ScreeningCase.updated_at,
}


@api.get("/screeningCase")
def list_cases(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("compliance:read"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        select(ScreeningCase),
        CASE_FILTERS,
        render_case,
        (ScreeningCase.created_at, ScreeningCase.id),
    )


@api.get("/screeningCase/{case_id}")
def get_case(
    case_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires("compliance:read"),
) -> dict[str, Any]:
    return render_one(request, render_case(services.get_case(session, case_id)))


@api.post("/screeningCase/{case_id}/clear")
def clear_case(
    case_id: str,
    body: CaseResolution,
    session: Session = Depends(get_session),
    principal: Principal = requires("compliance:review"),
) -> dict[str, Any]:
    return render_case(services.clear_case(session, case_id, body.reason, principal.actor))


@api.post("/screeningCase/{case_id}/confirm")
def confirm_case(
    case_id: str,
    body: CaseResolution,
    session: Session = Depends(get_session),
    principal: Principal = requires("compliance:review"),
) -> dict[str, Any]:
    return render_case(services.confirm_case(session, case_id, body.reason, principal.actor))


@api.post("/screening")
def screen(
    body: ScreenRequest,
    session: Session = Depends(get_session),
    principal: Principal = requires("compliance:read"),
) -> dict[str, Any]:
    """Ad-hoc screening of one name; writes nothing."""
    matches = services.screen_name(session, body.name, body.country)
    return {
        "@type": "ScreeningResult",
        "name": body.name,
        "country": body.country,
        "hit": bool(matches),
        "match": [
            {
                "entryId": m.entry_id,
                "entryName": m.entry_name,
                "matchedName": m.matched_name,
                "source": m.source,
                "programs": m.programs,
                "score": m.score,
                "notes": list(m.notes),
            }
            for m in matches
        ],
    }


@api.post("/exportCheck")
def export_check(
    body: ExportCheckRequest,
    session: Session = Depends(get_session),
    principal: Principal = requires("compliance:read"),
) -> dict[str, Any]:
    on = body.onDate or clock.now().date()
    findings = services.check_export(
        session, eccn=body.eccn, destination_country=body.destinationCountry, on_date=on
    )
    return {
        "@type": "ExportCheck",
        "eccn": body.eccn,
        "destinationCountry": body.destinationCountry,
        "onDate": on.isoformat(),
        "allowedWithoutLicence": not findings,
        "finding": [
            {
                "kind": f.kind,
                "ruleId": f.rule_id,
                "reason": f.reason,
                "validFrom": f.valid_from.isoformat(),
                "validUntil": f.valid_until.isoformat() if f.valid_until else None,
            }
            for f in findings
        ],
    }


@api.get("/screeningList")
def list_lists(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("compliance:read"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        select(ScreeningListVersion),
        {
            "id": ScreeningListVersion.id,
            "sha256": ScreeningListVersion.sha256,
            "loadedAt": ScreeningListVersion.loaded_at,
        },
        render_list,
        (ScreeningListVersion.loaded_at.desc(), ScreeningListVersion.id),
    )


@api.post("/screeningList", status_code=201)
def upload_list(
    body: ScreeningListUpload,
    session: Session = Depends(get_session),
    principal: Principal = requires("compliance:admin"),
) -> dict[str, Any]:
    """Load a new list (it comes into force at once) and re-screen every open deal."""
    version, result = services.load_list(session, body.content, body.name, principal.actor)
    document = render_list(version)
    document["rescreened"] = result.screened
    document["held"] = [{"refType": t, "refId": i, "caseId": c} for t, i, c in result.held]
    return document


router.include_router(api)
router.include_router(hub_router(API, "compliance"))
