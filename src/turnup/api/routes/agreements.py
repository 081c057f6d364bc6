"""Agreements over HTTP: TMF651 agreement (+ hub), document versions, redline, signatures, verify."""

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.agreements import services
from turnup.agreements.orm import Agreement
from turnup.agreements.render import API, render_agreement, render_signature
from turnup.agreements.schemas import DocumentVersionCreate, SignatureCreate
from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.security import Principal

router = APIRouter(tags=["agreements"])
BASE = f"/tmf-api/{API}/v4/agreement"

add_crud_routes(
    router,
    CrudSpec(
        path=BASE,
        label="agreement",
        area="agreements",
        model=Agreement,
        select=lambda: select(Agreement),
        filterable={
            "id": Agreement.id,
            "status": Agreement.status,
            "documentNumber": Agreement.document_number,
            "quote.id": Agreement.quote_id,
            "engagedParty.id": Agreement.customer_id,
        },
        render=render_agreement,
        default_order=(Agreement.created_at, Agreement.id),
        owner_column=Agreement.customer_id,
        owner=lambda a: a.customer_id,
    ),
)


@router.get(BASE + "/{agreement_id}/document", name="agreement document")
def document(
    agreement_id: str,
    version: int | None = Query(default=None, ge=1),
    session: Session = Depends(get_session),
    principal: Principal = requires("agreements:read"),
) -> Response:
    doc = services.get_document(session, agreement_id, version)
    return Response(
        content=doc.content,
        media_type=doc.media_type,
        headers={"X-Content-SHA256": doc.sha256, "X-Document-Version": str(doc.version)},
    )


@router.post(BASE + "/{agreement_id}/version", status_code=201, name="new agreement version")
def new_version(
    agreement_id: str,
    body: DocumentVersionCreate,
    session: Session = Depends(get_session),
    principal: Principal = requires("agreements:write"),
) -> dict[str, Any]:
    return render_agreement(services.add_version(session, agreement_id, body, principal.actor))


@router.get(BASE + "/{agreement_id}/redline", name="agreement redline")
def redline(
    agreement_id: str,
    from_version: int = Query(alias="from", ge=1),
    to_version: int = Query(alias="to", ge=1),
    format: str = Query(default="unified"),
    session: Session = Depends(get_session),
    principal: Principal = requires("agreements:read"),
) -> Response:
    text = services.redline(session, agreement_id, from_version, to_version, format)
    return HTMLResponse(text) if format == "html" else PlainTextResponse(text)


@router.post(BASE + "/{agreement_id}/signature", status_code=201, name="sign agreement")
def sign(
    agreement_id: str,
    body: SignatureCreate,
    session: Session = Depends(get_session),
    principal: Principal = requires("agreements:sign"),
) -> dict[str, Any]:
    return render_signature(services.sign(session, agreement_id, body, principal.actor))


@router.get(BASE + "/{agreement_id}/verify", name="verify agreement signatures")
def verify(
    agreement_id: str,
    session: Session = Depends(get_session),
    principal: Principal = requires("agreements:read"),
) -> dict[str, Any]:
    return services.verify(session, agreement_id)


router.include_router(hub_router(API, "agreements"))
