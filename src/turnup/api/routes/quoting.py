"""Quotes over HTTP: TMF648 quote (+ hub) and Turnup's approval API (rules, decisions, work queue)."""

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.api.tmf import list_resources
from turnup.quoting import approvals, services
from turnup.quoting.orm import ApprovalRule, Quote, QuoteApproval, QuoteVersion
from turnup.quoting.render import API, APPROVAL_BASE, render_approval, render_quote, render_rule
from turnup.quoting.schemas import (
    ApprovalDecisionIn,
    ApprovalRuleCreate,
    ApprovalRuleImport,
    ApprovalRuleUpdate,
    QuoteAccept,
    QuoteCreate,
    QuoteUpdate,
)
from turnup.security import Principal

router = APIRouter(tags=["quotes"])
QUOTES = f"/tmf-api/{API}/v4/quote"

add_crud_routes(
    router,
    CrudSpec(
        path=QUOTES,
        label="quote",
        area="quotes",
        model=Quote,
        select=lambda: select(Quote),
        filterable={
            "id": Quote.id,
            "state": Quote.state,
            "relatedParty.id": Quote.customer_id,
            "customerId": Quote.customer_id,
            "externalId": Quote.external_id,
            "approvalStatus": Quote.approval_status,
            "quoteDate": Quote.quote_date,
            "validFor.endDateTime": Quote.valid_until,
            "lastUpdate": Quote.updated_at,
        },
        render=render_quote,
        default_order=(Quote.created_at, Quote.id),
        create_schema=QuoteCreate,
        create=services.create_quote,
        update_schema=QuoteUpdate,
        update=services.update_quote,
        owner_column=Quote.customer_id,
        owner=lambda q: q.customer_id,
    ),
)


@router.post(QUOTES + "/{quote_id}/price", name="price quote")
def price_quote(
    quote_id: str, session: Session = Depends(get_session), principal: Principal = requires("quotes:write")
) -> dict[str, Any]:
    return render_quote(services.price_quote(session, quote_id, principal.actor))


@router.post(QUOTES + "/{quote_id}/accept", name="accept quote")
def accept_quote(
    quote_id: str,
    body: QuoteAccept,
    session: Session = Depends(get_session),
    principal: Principal = requires("quotes:accept"),
) -> dict[str, Any]:
    return render_quote(services.accept_quote(session, quote_id, body, principal.actor))


@router.get(QUOTES + "/{quote_id}/version", name="quote versions")
def quote_versions(
    quote_id: str, session: Session = Depends(get_session), principal: Principal = requires("quotes:read")
) -> list[dict[str, Any]]:
    services.get_quote(session, quote_id)
    rows = session.scalars(
        select(QuoteVersion).where(QuoteVersion.quote_id == quote_id).order_by(QuoteVersion.version)
    )
    return [
        {
            "version": v.version,
            "reason": v.reason,
            "actor": v.actor,
            "createdAt": v.created_at.isoformat(),
            "quote": v.snapshot,
        }
        for v in rows
    ]


@router.post(QUOTES + "/sweepExpired", name="sweep expired quotes")
def sweep(
    session: Session = Depends(get_session), principal: Principal = requires("quotes:write")
) -> dict[str, Any]:
    return {"expired": services.sweep_expired(session, actor=principal.actor).expired}


router.include_router(hub_router(API, "quotes"))

# --- approval API ----------------------------------------------------------------------------------------

add_crud_routes(
    router,
    CrudSpec(
        path=APPROVAL_BASE + "/approvalRule",
        label="approvalRule",
        area="approvals",
        model=ApprovalRule,
        select=lambda: select(ApprovalRule),
        filterable={
            "id": ApprovalRule.id,
            "name": ApprovalRule.name,
            "active": ApprovalRule.active,
            "priority": ApprovalRule.priority,
        },
        render=render_rule,
        default_order=(ApprovalRule.priority, ApprovalRule.name),
        create_schema=ApprovalRuleCreate,
        create=approvals.create_rule,
        update_schema=ApprovalRuleUpdate,
        update=approvals.update_rule,
        delete=approvals.delete_rule,
        # approval rules decide who must approve a discount: administered, not edited by operations
        create_action="admin",
        update_action="admin",
        delete_action="admin",
    ),
)


@router.post(APPROVAL_BASE + "/approvalRuleImport", status_code=201, name="import approval rules")
def import_rules(
    body: ApprovalRuleImport,
    session: Session = Depends(get_session),
    principal: Principal = requires("approvals:admin"),
) -> dict[str, Any]:
    return approvals.import_rules(session, body, principal.actor)


@router.get(APPROVAL_BASE + "/approvalRequest", name="list approval requests")
def list_requests(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("approvals:read"),
) -> list[dict[str, Any]]:
    filterable = {
        "quoteId": QuoteApproval.quote_id,
        "state": QuoteApproval.state,
        "name": QuoteApproval.role,
        "role": QuoteApproval.role,
        "step": QuoteApproval.step,
    }
    return list_resources(
        request,
        response,
        session,
        select(QuoteApproval),
        filterable,
        render_approval,
        (QuoteApproval.requested_at, QuoteApproval.quote_id, QuoteApproval.step),
    )


@router.post(APPROVAL_BASE + "/approvalDecision", status_code=201, name="decide approval")
def decide(
    body: ApprovalDecisionIn = Body(...),
    session: Session = Depends(get_session),
    principal: Principal = requires("approvals:approve"),
) -> dict[str, Any]:
    return render_quote(services.decide(session, body, principal.actor, principal.roles))
