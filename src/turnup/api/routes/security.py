"""Users, API tokens, the access review and the permission matrix over HTTP: ``/tmf-api/turnupSecurity/v1``
(permission ``security:admin``).

Issuing or rotating a token answers its secret once (``secret``); nothing else ever shows it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import security
from turnup.api.deps import get_session, requires
from turnup.api.tmf import get_or_404, list_resources, render_one
from turnup.kernel import clock
from turnup.kernel.hrefs import api_base
from turnup.security.orm import ApiToken, User
from turnup.security.permissions import APPROVAL_STEPS, CONFINED_PERMISSIONS, MATRIX, ROLE_PERMISSIONS
from turnup.security.render import API, render_token, render_user
from turnup.security.schemas import ApiTokenCreate, UserCreate
from turnup.security.services import issue_api_token, token_state

router = APIRouter(prefix=api_base(API), tags=["security"])


def _token(session: Session, token: ApiToken) -> dict[str, Any]:
    user = session.get(User, token.user_id)
    return render_token(token, user.username if user else "", token_state(token))


@router.get("/user")
def list_users(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        select(User),
        {"id": User.id, "username": User.username, "active": User.active, "createdAt": User.created_at},
        render_user,
        (User.username,),
    )


@router.post("/user", status_code=201)
def create_user(
    body: UserCreate,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> dict[str, Any]:
    user = security.create_user(
        session,
        username=body.username,
        display_name=body.displayName,
        password=body.password,
        roles=body.roles,
        actor=principal.actor,
    )
    return render_user(user)


@router.get("/user/{user_id}")
def get_user(
    user_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> dict[str, Any]:
    return render_one(request, render_user(get_or_404(session, User, user_id, "user")))


@router.post("/user/{user_id}/deactivate")
def deactivate_user(
    user_id: str,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> dict[str, Any]:
    user = get_or_404(session, User, user_id, "user")
    security.deactivate_user(session, user.username, actor=principal.actor)
    return render_user(user)


@router.post("/user/{user_id}/activate")
def activate_user(
    user_id: str,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> dict[str, Any]:
    user = get_or_404(session, User, user_id, "user")
    return render_user(security.activate_user(session, user.username, actor=principal.actor))


@router.get("/apiToken")
def list_tokens(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        select(ApiToken),
        {
            "id": ApiToken.id,
            "userId": ApiToken.user_id,
            "name": ApiToken.name,
            "prefix": ApiToken.prefix,
            "createdAt": ApiToken.created_at,
            "expiresAt": ApiToken.expires_at,
            "lastUsedAt": ApiToken.last_used_at,
        },
        lambda t: _token(session, t),
        (ApiToken.created_at.desc(), ApiToken.id),
    )


@router.post("/apiToken", status_code=201)
def issue_token(
    body: ApiTokenCreate,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> dict[str, Any]:
    token, secret = issue_api_token(
        session,
        username=body.username,
        name=body.name,
        roles=body.roles,
        expires_in=timedelta(days=body.expiresInDays) if body.expiresInDays is not None else None,
        actor=principal.actor,
    )
    session.commit()
    return {**render_token(token, body.username, token_state(token, clock.now())), "secret": secret}


@router.get("/apiToken/{token_id}")
def get_token(
    token_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> dict[str, Any]:
    return render_one(request, _token(session, get_or_404(session, ApiToken, token_id, "apiToken")))


@router.post("/apiToken/{token_id}/revoke")
def revoke_token(
    token_id: str,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> dict[str, Any]:
    get_or_404(session, ApiToken, token_id, "apiToken")
    return _token(session, security.revoke_api_token(session, token_id, actor=principal.actor))


@router.post("/apiToken/{token_id}/rotate", status_code=201)
def rotate_token(
    token_id: str,
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> dict[str, Any]:
    get_or_404(session, ApiToken, token_id, "apiToken")
    token, secret = security.rotate_api_token(session, token_id, actor=principal.actor)
    return {**_token(session, token), "secret": secret}


@router.get("/accessReview", name="access review")
def access_review(
    dormantDays: int = Query(90, ge=1, le=36500),
    changesDays: int = Query(90, ge=1, le=36500),
    session: Session = Depends(get_session),
    principal: security.Principal = requires("security:admin"),
) -> list[dict[str, Any]]:
    """Per user: roles, effective permissions, last login, tokens and their last use, dormancy (no login
    or token use in ``dormantDays``), and privilege changes of the last ``changesDays`` days."""
    review = security.access_review(session, dormant_days=dormantDays, changes_days=changesDays)
    return [{"@type": "AccessReviewEntry", **u.as_json()} for u in review]


@router.get("/role", name="permission matrix")
def roles(principal: security.Principal = requires("security:admin")) -> list[dict[str, Any]]:
    """Every role: who holds it, what it grants (wildcards expanded) and which approval steps it decides."""
    return [
        {
            "@type": "Role",
            "id": role,
            "description": MATRIX.descriptions.get(role, ""),
            "permission": security.effective_permissions([role]),
            "confinedPermission": sorted(CONFINED_PERMISSIONS.get(role, set())),
            "decidesApprovalStep": sorted(s for s, rs in APPROVAL_STEPS.items() if role in rs),
        }
        for role in ROLE_PERMISSIONS
    ]
