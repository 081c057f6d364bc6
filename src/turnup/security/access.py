"""Roles of users and the access review: who can do what, when they last did, dormant accounts, changes.

Role changes are audited as ``user.roles`` (details: before, after, added, removed); the review reads them
back with ``user.create`` rows as the recent privilege changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from turnup.kernel import audit, clock
from turnup.kernel.errors import InvalidInput, NotFound
from turnup.security.orm import ApiToken, User, WebSession
from turnup.security.permissions import (
    ROLE_PERMISSIONS,
    Principal,
    confined_permissions,
    effective_permissions,
)

DEFAULT_DORMANT_DAYS = 90
PRIVILEGE_ACTIONS = ("user.create", "user.roles")


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def find_principal(session: Session, username: str) -> Principal:
    """The active user ``username`` as a principal (NotFound when unknown or deactivated)."""
    user = _user(session, username)
    if not user.active:
        raise NotFound(f"user {username!r} is deactivated")
    return Principal(user_id=user.id, username=user.username, roles=tuple(user.roles or ()))


def change_roles(
    session: Session, username: str, *, add: list[str], remove: list[str], actor: str
) -> list[str]:
    """Add and remove roles of a user, audited as ``user.roles``; returns the new roles; commits."""
    unknown = sorted({r for r in add if r not in ROLE_PERMISSIONS})
    if unknown:
        raise InvalidInput(f"add: unknown role(s): {', '.join(unknown)}", reason="Unknown role")
    if not add and not remove:
        raise InvalidInput("give at least one role to --add or --remove")
    both = sorted(set(add) & set(remove))
    if both:
        raise InvalidInput(f"role(s) both added and removed: {', '.join(both)}")
    user = _user(session, username)
    before = list(user.roles or [])
    missing = sorted(r for r in remove if r not in before)
    if missing:
        raise InvalidInput(f"remove: user {username!r} does not have role(s) {', '.join(missing)}")
    after = [r for r in before if r not in remove] + [r for r in add if r not in before]
    if after == before:
        return before
    user.roles = after
    audit.record(
        session,
        actor=actor,
        action="user.roles",
        resource_type="user",
        resource_id=user.id,
        details={
            "username": username,
            "before": before,
            "after": after,
            "added": [r for r in after if r not in before],
            "removed": [r for r in before if r not in after],
        },
        before={"roles": before},
        after={"roles": after},
    )
    session.commit()
    return after


@dataclass
class TokenUse:
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prefix": self.prefix,
            "createdAt": _iso(self.created_at),
            "revokedAt": _iso(self.revoked_at),
            "lastUsedAt": _iso(self.last_used_at),
        }


@dataclass
class UserReview:
    username: str
    display_name: str
    active: bool
    roles: list[str]
    permissions: list[str]
    confined_permissions: list[str]
    created_at: datetime
    last_login_at: datetime | None
    last_activity_at: datetime | None
    dormant: bool
    tokens: list[TokenUse] = field(default_factory=list)
    privilege_changes: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "displayName": self.display_name,
            "active": self.active,
            "roles": self.roles,
            "permissions": self.permissions,
            "confinedPermissions": self.confined_permissions,
            "createdAt": _iso(self.created_at),
            "lastLoginAt": _iso(self.last_login_at),
            "lastActivityAt": _iso(self.last_activity_at),
            "dormant": self.dormant,
            "tokens": [t.as_json() for t in self.tokens],
            "recentPrivilegeChanges": self.privilege_changes,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _latest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def access_review(
    session: Session, *, dormant_days: int = DEFAULT_DORMANT_DAYS, changes_days: int = 90
) -> list[UserReview]:
    """Per user: roles, effective permissions, last login, tokens and their last use, dormancy, and the
    privilege changes (``user.create``/``user.roles`` audit rows) of the last ``changes_days`` days.

    A user is dormant when active and neither logged in nor used a token (nor was created) in the last
    ``dormant_days`` days. Token use is read from ``api_token.last_used_at`` where that column exists.
    """
    if dormant_days < 1 or changes_days < 1:
        raise InvalidInput("dormant and change windows must be at least one day")
    now = clock.now()
    dormant_since = now - timedelta(days=dormant_days)
    users = session.scalars(select(User).order_by(User.username)).all()
    logins: dict[str, datetime] = {
        user_id: at
        for user_id, at in session.execute(
            select(audit.AuditEntry.resource_id, func.max(audit.AuditEntry.at))
            .where(audit.AuditEntry.action == "user.login", audit.AuditEntry.resource_type == "user")
            .group_by(audit.AuditEntry.resource_id)
        ).all()
    }
    sessions: dict[str, datetime] = {
        user_id: at
        for user_id, at in session.execute(
            select(WebSession.user_id, func.max(WebSession.created_at)).group_by(WebSession.user_id)
        ).all()
    }
    tokens: dict[str, list[TokenUse]] = {}
    for token in session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)):
        tokens.setdefault(token.user_id, []).append(
            TokenUse(
                name=token.name,
                prefix=token.prefix,
                created_at=token.created_at,
                revoked_at=token.revoked_at,
                last_used_at=getattr(token, "last_used_at", None),
            )
        )
    changes: dict[str, list[dict[str, Any]]] = {}
    for entry in session.scalars(
        select(audit.AuditEntry)
        .where(
            audit.AuditEntry.action.in_(PRIVILEGE_ACTIONS),
            audit.AuditEntry.resource_type == "user",
            audit.AuditEntry.at >= now - timedelta(days=changes_days),
        )
        .order_by(audit.AuditEntry.at, audit.AuditEntry.id)
    ):
        details = entry.details or {}
        changes.setdefault(entry.resource_id, []).append(
            {
                "at": _iso(entry.at),
                "actor": entry.actor,
                "action": entry.action,
                "added": details.get("added", details.get("roles", [])),
                "removed": details.get("removed", []),
            }
        )
    result = []
    for user in users:
        roles = list(user.roles or [])
        last_login = _latest(logins.get(user.id), sessions.get(user.id))
        last_token = _latest(*(t.last_used_at for t in tokens.get(user.id, [])))
        last_activity = _latest(last_login, last_token)
        reference = last_activity or user.created_at
        result.append(
            UserReview(
                username=user.username,
                display_name=user.display_name,
                active=user.active,
                roles=roles,
                permissions=effective_permissions(roles),
                confined_permissions=confined_permissions(roles),
                created_at=user.created_at,
                last_login_at=last_login,
                last_activity_at=last_activity,
                dormant=user.active and reference < dormant_since,
                tokens=tokens.get(user.id, []),
                privilege_changes=changes.get(user.id, []),
            )
        )
    return result
