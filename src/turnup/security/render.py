"""JSON documents for users and API tokens (``/tmf-api/turnupSecurity/v1``). Secrets never appear here,
except the one-time ``secret`` of a token just issued (added by the route)."""

from __future__ import annotations

from typing import Any

from turnup.kernel.hrefs import href, iso
from turnup.security.orm import ApiToken, User

API = "turnupSecurity"


def render_user(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "href": href(API, "user", u.id),
        "@type": "User",
        "username": u.username,
        "displayName": u.display_name,
        "roles": list(u.roles),
        "active": u.active,
        "hasPassword": u.password_hash is not None,
        "secondFactor": u.totp_secret is not None,
        "createdAt": iso(u.created_at),
    }


def render_token(t: ApiToken, username: str, state: str) -> dict[str, Any]:
    return {
        "id": t.id,
        "href": href(API, "apiToken", t.id),
        "@type": "ApiToken",
        "username": username,
        "name": t.name,
        "prefix": t.prefix,
        "scopes": t.scopes,
        "state": state,
        "createdAt": iso(t.created_at),
        "expiresAt": iso(t.expires_at),
        "lastUsedAt": iso(t.last_used_at),
        "revokedAt": iso(t.revoked_at),
    }
