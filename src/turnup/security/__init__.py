"""Who is calling and what they may do: users, API tokens (stored hashed), web sessions, permissions."""

from turnup.security.access import access_review, change_roles, find_principal
from turnup.security.passwords import check_password_policy
from turnup.security.permissions import (
    Principal,
    approval_step_names,
    effective_permissions,
    has_permission,
    may_decide_step,
    step_deciders,
)
from turnup.security.services import (
    LoginPolicy,
    LoginRefused,
    activate_user,
    authenticate_token,
    create_api_token,
    create_user,
    deactivate_user,
    disable_totp,
    enable_totp,
    list_api_tokens,
    revoke_api_token,
    rotate_api_token,
    set_password,
    username_taken,
)

__all__ = [
    "LoginPolicy",
    "LoginRefused",
    "Principal",
    "access_review",
    "activate_user",
    "approval_step_names",
    "authenticate_token",
    "change_roles",
    "check_password_policy",
    "create_api_token",
    "create_user",
    "deactivate_user",
    "disable_totp",
    "effective_permissions",
    "enable_totp",
    "find_principal",
    "has_permission",
    "list_api_tokens",
    "may_decide_step",
    "revoke_api_token",
    "rotate_api_token",
    "set_password",
    "step_deciders",
    "username_taken",
]
