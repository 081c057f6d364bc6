"""Use cases for users, tokens, web sessions and logins. Secrets are stored only as hashes (or sealed)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from turnup.kernel import audit, clock
from turnup.kernel.db import rowcount, table_of
from turnup.kernel.errors import Conflict, InvalidInput, NotFound, Unauthorized
from turnup.kernel.ids import new_id
from turnup.kernel.settings import Settings, get_settings
from turnup.security import totp
from turnup.security.orm import ApiToken, LoginCounter, User, WebSession
from turnup.security.passwords import check_password_policy, dummy_verify, hash_password, verify_password
from turnup.security.permissions import ROLE_PERMISSIONS, Principal

TOKEN_PREFIX = "tu_"
SESSION_TTL = timedelta(hours=12)
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user_by_name(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


# --- users ------------------------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str | None = None,
    password: str | None = None,
    roles: list[str] | None = None,
    actor: str = "system",
    commit: bool = True,
    audit_details: dict[str, Any] | None = None,
) -> User:
    """Create a user; commits unless ``commit=False``; ``audit_details`` are added to the audit record.

    A password must pass the policy (``turnup.security.passwords.check_password_policy``).
    """
    roles = roles or ["viewer"]
    unknown = [r for r in roles if r not in ROLE_PERMISSIONS]
    if unknown:
        raise InvalidInput(f"unknown role(s): {', '.join(unknown)}", reason="Unknown role")
    if not username.strip():
        raise InvalidInput("username must not be empty")
    if password is not None:
        check_password_policy(password, username)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        id=new_id(),
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password) if password else None,
        roles=roles,
        active=True,
        created_at=clock.now(),
    )
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="user.create",
        resource_type="user",
        resource_id=user.id,
        details={"username": username, "roles": roles, **(audit_details or {})},
    )
    if commit:
        session.commit()
    else:
        session.flush()
    return user


def username_taken(session: Session, username: str) -> bool:
    """True when a user with this username exists."""
    return session.scalar(select(User.id).where(User.username == username)) is not None


def set_password(session: Session, user_id: str, password: str, *, actor: str | None = None) -> Principal:
    """Set a user's password after the policy check (no commit: the caller's transaction decides)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id!r} not found")
    check_password_policy(password, user.username)
    user.password_hash = hash_password(password)
    audit.record(
        session,
        actor=actor or f"user:{user.username}",
        action="user.password_set",
        resource_type="user",
        resource_id=user.id,
        details={"username": user.username},
    )
    return _principal(user)


def deactivate_user(session: Session, username: str, *, actor: str = "system") -> dict[str, int]:
    """Deactivate a user: their web sessions end and their API tokens are revoked at once; commits."""
    user = _user_by_name(session, username)
    now = clock.now()
    sessions = rowcount(session.execute(delete(WebSession).where(WebSession.user_id == user.id)))
    tokens = rowcount(
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    )
    user.active = False
    audit.record(
        session,
        actor=actor,
        action="user.deactivate",
        resource_type="user",
        resource_id=user.id,
        details={"username": username, "sessionsEnded": sessions, "tokensRevoked": tokens},
    )
    session.commit()
    return {"sessions": sessions, "tokens": tokens}


def activate_user(session: Session, username: str, *, actor: str = "system") -> User:
    """Let a deactivated user sign in again (their revoked tokens stay revoked); commits."""
    user = _user_by_name(session, username)
    user.active = True
    audit.record(
        session,
        actor=actor,
        action="user.activate",
        resource_type="user",
        resource_id=user.id,
        details={"username": username},
    )
    session.commit()
    return user


def _principal(user: User, scopes: list[str] | None = None) -> Principal:
    roles = tuple(user.roles or ())
    if scopes is not None:
        roles = tuple(r for r in roles if r in scopes)
    return Principal(user_id=user.id, username=user.username, roles=roles)


# --- TOTP -------------------------------------------------------------------------------------------------


def enable_totp(
    session: Session, username: str, *, actor: str = "system", secret_key: str | None = None
) -> str:
    """Give a user a new TOTP secret (returned once, to show as otpauth URI); login then needs the code."""
    user = _user_by_name(session, username)
    key = get_settings().secret_key if secret_key is None else secret_key
    secret = totp.new_secret()
    user.totp_secret = totp.seal(secret, key)
    user.totp_last_step = None
    audit.record(
        session,
        actor=actor,
        action="user.totp_enable",
        resource_type="user",
        resource_id=user.id,
        details={"username": username},
    )
    session.commit()
    return secret


def disable_totp(session: Session, username: str, *, actor: str = "system") -> None:
    user = _user_by_name(session, username)
    user.totp_secret = None
    user.totp_last_step = None
    audit.record(
        session,
        actor=actor,
        action="user.totp_disable",
        resource_type="user",
        resource_id=user.id,
        details={"username": username},
    )
    session.commit()


# --- logins -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginPolicy:
    """Lockout and throttling of password logins (TURNUP_LOGIN_*), and the key of sealed TOTP secrets."""

    max_failures_per_user: int = 5
    max_failures_per_source: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    secret_key: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        return cls(
            max_failures_per_user=settings.login_max_failures_per_user,
            max_failures_per_source=settings.login_max_failures_per_source,
            window=timedelta(seconds=settings.login_window_seconds),
            lockout=timedelta(seconds=settings.login_lockout_seconds),
            secret_key=settings.secret_key,
        )


class LoginRefused(Unauthorized):
    """A failed login; ``locked`` when the username or the source address is locked out for now."""

    def __init__(self, message: str, *, locked: bool) -> None:
        super().__init__(message)
        self.locked = locked


def _lock_counters(session: Session, keys: list[str], now: datetime) -> dict[str, LoginCounter]:
    """Get or create the counters and lock them (primary-key order) until the transaction ends."""
    keys = sorted(set(keys))
    table = table_of(LoginCounter)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    rows = [{"key": k, "failures": 0, "window_start": now, "locked_until": None} for k in keys]
    while True:  # again if the housekeeping sweep deleted a counter between the insert and the lock
        session.execute(insert(table).on_conflict_do_nothing(index_elements=["key"]), rows)
        found = session.scalars(
            select(LoginCounter)
            .where(LoginCounter.key.in_(keys))
            .order_by(LoginCounter.key)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        if len(found) == len(keys):
            return {c.key: c for c in found}


def _locked(counter: LoginCounter, now: datetime) -> bool:
    if counter.locked_until is None:
        return False
    if counter.locked_until > now:
        return True
    counter.failures, counter.window_start, counter.locked_until = 0, now, None  # the lockout is over
    return False


def _count_failure(counter: LoginCounter, now: datetime, limit: int, policy: LoginPolicy) -> None:
    if now - counter.window_start >= policy.window:
        counter.failures, counter.window_start = 0, now
    counter.failures += 1
    if counter.failures >= limit:
        counter.locked_until = now + policy.lockout


def _check_password(user: User | None, password: str) -> tuple[str | None, bool]:
    """``(failure reason or None, needs rehash)``; every path does one argon2-class verification."""
    if user is None:
        dummy_verify(password)
        return "unknown_user", False
    if user.password_hash is None:
        dummy_verify(password)
        return "no_password", False
    ok, rehash = verify_password(password, user.password_hash)
    if not ok:
        return "wrong_password", False
    if not user.active:
        return "inactive", False
    return None, rehash


def _check_code(user: User, code: str | None, now: datetime, policy: LoginPolicy) -> str | None:
    if user.totp_secret is None:
        return None
    if not code:
        return "totp_missing"
    try:
        secret = totp.unseal(user.totp_secret, policy.secret_key)
    except InvalidInput:
        return "totp_unreadable"
    step = totp.matching_step(secret, code, now, user.totp_last_step)
    if step is None:
        return "totp_wrong"
    user.totp_last_step = step
    return None


def login(
    session: Session,
    username: str,
    password: str,
    *,
    source: str = "unknown",
    code: str | None = None,
    previous_secret: str | None = None,
    policy: LoginPolicy | None = None,
) -> str:
    """Check a password (and TOTP code) and open a new web session; returns its secret; commits.

    Per username and per source address, failures within ``policy.window`` are counted in the database under
    a row lock, so parallel guesses are counted exactly; reaching the limit locks that username (or source)
    for ``policy.lockout``, during which even the right password is refused. Unknown usernames take the same
    path (a counter of their own and a verification against a dummy argon2id hash). Every failure is audited
    as ``user.login_failed`` with its reason and source (never the password). A scrypt hash is replaced by an
    argon2id one on success. The session a browser held before (``previous_secret``) ends: a login always
    yields a new session secret.
    """
    policy = policy or LoginPolicy.from_settings(get_settings())
    now = clock.now()
    # PostgreSQL stores no NUL character (text or JSON): such a name matches no user and is recorded replaced
    username, source = username.replace("\x00", "\ufffd"), source.replace("\x00", "\ufffd")
    user_key, source_key = f"user:{username[:150]}", f"source:{source[:150]}"
    counters = _lock_counters(session, [user_key, source_key], now)
    user = session.scalar(select(User).where(User.username == username)) if username else None
    reason: str | None = None
    locked = False
    if _locked(counters[source_key], now):
        reason, locked = "source_throttled", True
    elif _locked(counters[user_key], now):
        reason, locked = "locked", True
    rehash = False
    if reason is None:
        reason, rehash = _check_password(user, password)
        if reason is None and user is not None:
            reason = _check_code(user, code, now, policy)
        if reason is not None:
            _count_failure(counters[user_key], now, policy.max_failures_per_user, policy)
            _count_failure(counters[source_key], now, policy.max_failures_per_source, policy)
    if reason is not None or user is None:
        audit.record(
            session,
            actor="anonymous",
            action="user.login_failed",
            resource_type="user",
            resource_id=user.id if user is not None else "-",
            details={"username": username[:150], "reason": reason, "source": source},
        )
        session.commit()
        if locked:
            raise LoginRefused("too many failed logins: try again later", locked=True)
        raise LoginRefused("wrong username or password", locked=False)
    counters[user_key].failures, counters[user_key].window_start = 0, now
    counters[user_key].locked_until = None
    if rehash:
        user.password_hash = hash_password(password)
    if previous_secret:
        session.execute(delete(WebSession).where(WebSession.token_hash == _sha256(previous_secret)))
    secret = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id=new_id(),
            user_id=user.id,
            token_hash=_sha256(secret),
            created_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    audit.record(
        session,
        actor=f"user:{username}",
        action="user.login",
        resource_type="user",
        resource_id=user.id,
        details={"source": source, "rehashed": rehash, "secondFactor": user.totp_secret is not None},
    )
    session.commit()
    return secret


def authenticate_session(session: Session, secret: str) -> Principal:
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _sha256(secret))
    ).first()
    if row is None or row[0].expires_at <= clock.now() or not row[1].active:
        raise Unauthorized("not logged in")
    return _principal(row[1])


def logout(session: Session, secret: str) -> None:
    ws = session.scalar(select(WebSession).where(WebSession.token_hash == _sha256(secret)))
    if ws is not None:
        session.delete(ws)
        session.commit()


# --- API tokens -------------------------------------------------------------------------------------------


def _default_token_lifetime() -> timedelta:
    return timedelta(days=get_settings().api_token_default_days)


def issue_api_token(
    session: Session,
    *,
    username: str,
    name: str = "default",
    roles: list[str] | None = None,
    expires_in: timedelta | None = None,
    actor: str = "system",
    audit_action: str = "token.create",
    audit_details: dict[str, Any] | None = None,
) -> tuple[ApiToken, str]:
    """Add a token (no commit); returns the row and the secret (shown once).

    ``roles`` scopes the token to a subset of the user's roles (None: all of them, as they are at each use).
    """
    user = _user_by_name(session, username)
    if not user.active:
        raise Conflict(f"user {username!r} is deactivated")
    if roles is not None:
        if not roles:
            raise InvalidInput("roles: a scoped token needs at least one role")
        outside = [r for r in roles if r not in user.roles]
        if outside:
            raise InvalidInput(f"roles: {', '.join(outside)} not held by user {username!r}")
    lifetime = _default_token_lifetime() if expires_in is None else expires_in
    if lifetime <= timedelta(0):
        raise InvalidInput("expiresIn: must be positive")
    now = clock.now()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=new_id(),
        user_id=user.id,
        name=name,
        token_hash=_sha256(secret),
        prefix=secret[:10],
        created_at=now,
        expires_at=now + lifetime,
        scopes=sorted(set(roles)) if roles is not None else None,
    )
    session.add(token)
    audit.record(
        session,
        actor=actor,
        action=audit_action,
        resource_type="apiToken",
        resource_id=token.id,
        details={
            "username": username,
            "name": name,
            "scopes": token.scopes,
            "expiresAt": token.expires_at.isoformat(),
            **(audit_details or {}),
        },
    )
    session.flush()
    return token, secret


def create_api_token(
    session: Session,
    *,
    username: str,
    name: str = "default",
    actor: str = "system",
    roles: list[str] | None = None,
    expires_in: timedelta | None = None,
) -> str:
    """Issue a new API token for a user and return the secret (shown once); commits."""
    _, secret = issue_api_token(
        session, username=username, name=name, roles=roles, expires_in=expires_in, actor=actor
    )
    session.commit()
    return secret


def find_token(session: Session, ref: str) -> ApiToken:
    """A token by id or by its prefix (the first characters of the secret, as listed)."""
    found = session.scalars(select(ApiToken).where(or_(ApiToken.id == ref, ApiToken.prefix == ref))).all()
    if not found:
        raise NotFound(f"API token {ref!r} not found")
    if len(found) > 1:
        raise Conflict(f"API token prefix {ref!r} is ambiguous: use the id")
    return found[0]


def revoke_api_token(session: Session, ref: str, *, actor: str = "system") -> ApiToken:
    """Revoke a token by id or prefix; it is refused from the next request on; commits."""
    token = find_token(session, ref)
    if token.revoked_at is not None:
        raise Conflict(f"API token {ref!r} is already revoked")
    token.revoked_at = clock.now()
    audit.record(
        session,
        actor=actor,
        action="token.revoke",
        resource_type="apiToken",
        resource_id=token.id,
        details={"prefix": token.prefix, "name": token.name},
    )
    session.commit()
    return token


def rotate_api_token(session: Session, ref: str, *, actor: str = "system") -> tuple[ApiToken, str]:
    """Replace a token: a new secret with the same user, name, scopes and lifetime; the old one is revoked."""
    old = find_token(session, ref)
    if old.revoked_at is not None:
        raise Conflict(f"API token {ref!r} is revoked: issue a new one")
    user = session.get(User, old.user_id)
    assert user is not None
    old.revoked_at = clock.now()
    new, secret = issue_api_token(
        session,
        username=user.username,
        name=old.name,
        roles=old.scopes,
        expires_in=old.expires_at - old.created_at,
        actor=actor,
        audit_action="token.rotate",
        audit_details={"replaces": old.id},
    )
    session.commit()
    return new, secret


def list_api_tokens(session: Session, username: str | None = None) -> list[tuple[ApiToken, str]]:
    """Tokens with their usernames, newest first."""
    query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
    if username is not None:
        query = query.where(User.username == username)
    rows = session.execute(query.order_by(ApiToken.created_at.desc(), ApiToken.id)).all()
    return [(t, u) for t, u in rows]


def token_state(token: ApiToken, now: datetime | None = None) -> str:
    now = now or clock.now()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at <= now:
        return "expired"
    return "active"


def authenticate_token(session: Session, secret: str) -> Principal:
    """Resolve a bearer token to its principal (roles narrowed to the token's scopes), or raise Unauthorized.

    Revoked and expired tokens and tokens of deactivated users are refused. ``last_used_at`` is written at
    most once a minute per token, in a transaction of its own.
    """
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _sha256(secret))
    ).first()
    if row is None or row[0].revoked_at is not None or not row[1].active:
        raise Unauthorized("invalid or revoked API token")
    token, user = row
    now = clock.now()
    if token.expires_at <= now:
        raise Unauthorized("API token expired")
    principal = _principal(user, token.scopes)
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token.id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_EVERY),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return principal
