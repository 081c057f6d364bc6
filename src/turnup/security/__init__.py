"""Who is calling and what they may do: users, API tokens (stored hashed), web sessions, permissions."""

from turnup.security.permissions import Principal, has_permission
from turnup.security.services import (
    authenticate_token,
    create_api_token,
    create_user,
    set_password,
    username_taken,
)

__all__ = [
    "Principal",
    "authenticate_token",
    "create_api_token",
    "create_user",
    "has_permission",
    "set_password",
    "username_taken",
]
