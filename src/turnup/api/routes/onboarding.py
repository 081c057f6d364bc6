"""Onboarding over HTTP: ``/tmf-api/turnupOnboarding/v1``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.accounts.render import render_customer
from turnup.accounts.services import get_customer
from turnup.api.deps import get_session, public, requires
from turnup.api.hub import hub_router
from turnup.api.tmf import list_resources, render_one
from turnup.onboarding import services
from turnup.onboarding.orm import Onboarding
from turnup.onboarding.render import API, BASE_PATH, render_onboarding
from turnup.onboarding.schemas import InvitationAccept, OnboardingCreate
from turnup.security import Principal

router = APIRouter(tags=["onboarding"])
api = APIRouter(prefix=BASE_PATH)


@api.post("/onboarding", status_code=201)
def start(
    body: OnboardingCreate,
    session: Session = Depends(get_session),
    principal: Principal = requires("onboarding:write"),
) -> dict[str, Any]:
    return render_onboarding(services.start_onboarding(session, body, principal.actor))


@api.get("/onboarding")
def list_onboardings(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("onboarding:read"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        select(Onboarding),
        {
            "id": Onboarding.id,
            "state": Onboarding.state,
            "customerId": Onboarding.customer_id,
            "createdAt": Onboarding.created_at,
        },
        render_onboarding,
        (Onboarding.created_at, Onboarding.id),
    )


@api.get("/onboarding/{onboarding_id}")
def get_onboarding(
    onboarding_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires("onboarding:read"),
) -> dict[str, Any]:
    return render_one(request, render_onboarding(services.get_onboarding(session, onboarding_id)))


@api.post("/onboarding/{onboarding_id}/resume")
def resume(
    onboarding_id: str,
    session: Session = Depends(get_session),
    principal: Principal = requires("onboarding:write"),
) -> dict[str, Any]:
    return render_onboarding(services.resume_onboarding(session, onboarding_id, principal.actor))


@api.post("/invitation/accept")
def accept_invitation(
    body: InvitationAccept, session: Session = Depends(get_session), _: None = public()
) -> dict[str, Any]:
    user = services.accept_invitation(session, body.token, body.password)
    return {"@type": "PortalUser", "username": user.username, "roles": list(user.roles)}


@api.get("/myAccount")
def my_account(
    session: Session = Depends(get_session), principal: Principal = requires("portal:read")
) -> dict[str, Any]:
    """The portal user's own customer account (the only one the ``customer`` role can read)."""
    return render_customer(get_customer(session, services.portal_customer_id(session, principal.user_id)))


router.include_router(api)
router.include_router(hub_router(API, "onboarding"))
