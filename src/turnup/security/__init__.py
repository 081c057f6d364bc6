"""Who is calling and what they may do: users, API tokens (stored hashed), web sessions, permissions."""

from turnup.security.access import access_review, change_roles, find_principal
from turnup.security.permissions import (
    Principal,
    approval_step_names,
    effective_permissions,
    has_permission,
    may_decide_step,
    step_deciders,
)
from turnup.security.services import (
    authenticate_token,
    create_api_token,
    create_user,
    set_password,
    username_taken,
)

__all__ = [
    "Principal",
    "access_review",
    "approval_step_names",
    "authenticate_token",
    "change_roles",
    "create_api_token",
    "create_user",
    "effective_permissions",
    "find_principal",
    "has_permission",
    "may_decide_step",
    "set_password",
    "step_deciders",
    "username_taken",
]
