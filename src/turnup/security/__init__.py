"""Who is calling and what they may do: users, API tokens (stored hashed), web sessions, permissions."""

from turnup.security.passwords import check_password_policy
from turnup.security.permissions import Principal, has_permission
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
    "activate_user",
    "authenticate_token",
    "check_password_policy",
    "create_api_token",
    "create_user",
    "deactivate_user",
    "disable_totp",
    "enable_totp",
    "has_permission",
    "list_api_tokens",
    "revoke_api_token",
    "rotate_api_token",
    "set_password",
    "username_taken",
]
