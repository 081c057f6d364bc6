"""Permissions are strings ``<area>:<action>`` (e.g. ``catalog:write``); roles grant sets of them.

The matrix is data: ``turnup/security/data/permissions.yaml`` lists every permission, what each role grants
(``permissions``, and ``confined`` ones a portal user holds only on endpoints that confine them to their own
customer) and which roles decide which approval step. It is loaded once, at import.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import yaml

PUBLIC = "public"
MATRIX_FILE = "permissions.yaml"


@dataclass(frozen=True)
class Matrix:
    permissions: dict[str, str]  # permission -> what it lets a user do
    descriptions: dict[str, str]  # role -> who holds it
    grants: dict[str, set[str]]  # role -> granted permissions (may hold wildcards)
    confined: dict[str, set[str]]  # role -> permissions granted only on confining endpoints
    approval_steps: dict[str, list[str]]  # approval step name -> roles that decide it


def _load(document: Any) -> Matrix:
    if not isinstance(document, dict):
        raise ValueError(f"{MATRIX_FILE}: expected a mapping")
    permissions = {str(k): str(v) for k, v in (document.get("permissions") or {}).items()}
    grants: dict[str, set[str]] = {}
    confined: dict[str, set[str]] = {}
    descriptions: dict[str, str] = {}
    for role, spec in (document.get("roles") or {}).items():
        grants[role] = set(spec.get("permissions") or [])
        confined[role] = set(spec.get("confined") or [])
        descriptions[role] = str(spec.get("description") or "")
        for granted in grants[role] | confined[role]:
            if not _known(granted, permissions):
                raise ValueError(f"{MATRIX_FILE}: role {role!r} grants unknown permission {granted!r}")
    steps = {str(k): list(v) for k, v in (document.get("approvalSteps") or {}).items()}
    for step, roles in steps.items():
        for role in roles:
            if role not in grants:
                raise ValueError(f"{MATRIX_FILE}: approval step {step!r} names unknown role {role!r}")
    return Matrix(permissions, descriptions, grants, confined, steps)


def _known(granted: str, permissions: Collection[str]) -> bool:
    if granted == "*":
        return True
    area, _, action = granted.partition(":")
    if area == "*":
        return any(p.endswith(f":{action}") for p in permissions)
    if action == "*":
        return any(p.startswith(f"{area}:") for p in permissions)
    return granted in permissions


def load_matrix() -> Matrix:
    return _load(yaml.safe_load((files("turnup.security") / "data" / MATRIX_FILE).read_text()))


MATRIX = load_matrix()
# role -> granted permissions (wildcards allowed); a plain dict so tests can add a narrow role
ROLE_PERMISSIONS: dict[str, set[str]] = MATRIX.grants
# role -> permissions held only on endpoints that confine the caller to their own customer
CONFINED_PERMISSIONS: dict[str, set[str]] = MATRIX.confined
PERMISSIONS: dict[str, str] = MATRIX.permissions
APPROVAL_STEPS: dict[str, list[str]] = MATRIX.approval_steps


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    roles: tuple[str, ...] = field(default_factory=tuple)
    # set on a request served under a confined permission: the only customer whose rows it may see
    customer_id: str | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.username}"


def _grants(granted: Collection[str], permission: str) -> bool:
    area, _, action = permission.partition(":")
    return "*" in granted or permission in granted or f"*:{action}" in granted or f"{area}:*" in granted


def has_permission(principal: Principal, permission: str) -> bool:
    """True when one of the principal's roles grants ``permission`` (everywhere, not only confined)."""
    return roles_grant(principal.roles, permission)


def roles_grant(roles: Iterable[str], permission: str) -> bool:
    return any(_grants(ROLE_PERMISSIONS.get(role, set()), permission) for role in roles)


def has_confined_permission(principal: Principal, permission: str) -> bool:
    """True when a role grants ``permission`` only confined to the principal's own customer."""
    return any(_grants(CONFINED_PERMISSIONS.get(role, set()), permission) for role in principal.roles)


def effective_permissions(roles: Iterable[str]) -> list[str]:
    """Every catalogued permission the roles grant (wildcards expanded), sorted."""
    return sorted(p for p in PERMISSIONS if roles_grant(roles, p))


def confined_permissions(roles: Iterable[str]) -> list[str]:
    """Catalogued permissions the roles grant only confined to the user's own customer."""
    return sorted(
        p
        for p in PERMISSIONS
        if not roles_grant(roles, p) and any(_grants(CONFINED_PERMISSIONS.get(r, set()), p) for r in roles)
    )


def approval_step_names() -> set[str]:
    """The approval steps some role decides (what an approval rule's chain may name)."""
    return {step for step, roles in APPROVAL_STEPS.items() if roles}


def step_deciders(step_role: str) -> list[str]:
    """The roles that decide approval step ``step_role``."""
    return list(APPROVAL_STEPS.get(step_role, []))


def may_decide_step(roles: Iterable[str], step_role: str) -> bool:
    """True when one of ``roles`` is bound to the approval step ``step_role`` (no role bypasses this)."""
    deciders = set(step_deciders(step_role))
    return any(role in deciders for role in roles)
