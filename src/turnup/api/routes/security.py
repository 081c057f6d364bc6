"""Security administration over HTTP: the access review and the permission matrix."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from turnup import security
from turnup.api.deps import get_session, requires
from turnup.security import Principal
from turnup.security.permissions import APPROVAL_STEPS, CONFINED_PERMISSIONS, MATRIX, ROLE_PERMISSIONS

BASE = "/tmf-api/turnupSecurity/v1"
router = APIRouter(tags=["security"])


@router.get(BASE + "/accessReview", name="access review")
def access_review(
    dormantDays: int = Query(90, ge=1, le=36500),
    changesDays: int = Query(90, ge=1, le=36500),
    session: Session = Depends(get_session),
    principal: Principal = requires("security:admin"),
) -> list[dict[str, Any]]:
    """Per user: roles, effective permissions, last login, tokens and their last use, dormancy (no login
    or token use in ``dormantDays``), and privilege changes of the last ``changesDays`` days."""
    review = security.access_review(session, dormant_days=dormantDays, changes_days=changesDays)
    return [{"@type": "AccessReviewEntry", **u.as_json()} for u in review]


@router.get(BASE + "/role", name="permission matrix")
def roles(principal: Principal = requires("security:admin")) -> list[dict[str, Any]]:
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
