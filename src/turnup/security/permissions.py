"""Permissions are strings ``<area>:<action>`` (e.g. ``catalog:write``); roles grant sets of them.

This is the groundwork: the full role matrix and the customer portal come later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLE_PERMISSIONS: dict[str, set[str]] = {
    "admin": {"*"},
    "operator": {"*:read", "*:write"},
    "viewer": {"*:read"},
    # export-compliance reviewers: read everything, work the screening review queue, load lists
    "compliance_officer": {"*:read", "compliance:review", "compliance:admin"},
    # approvers of quote approval chains (the chain's role is named in each decision): read, decide approvals
    "approver": {"*:read", "approvals:approve"},
    # portal users created by onboarding: read-only, and only their own account (portal:* routes)
    "customer": {"portal:read"},
}

PUBLIC = "public"


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    roles: tuple[str, ...] = field(default_factory=tuple)

    @property
    def actor(self) -> str:
        return f"user:{self.username}"


def has_permission(principal: Principal, permission: str) -> bool:
    """True when one of the principal's roles grants ``permission``."""
    area, _, action = permission.partition(":")
    for role in principal.roles:
        granted = ROLE_PERMISSIONS.get(role, set())
        if "*" in granted or permission in granted or f"*:{action}" in granted or f"{area}:*" in granted:
            return True
    return False
