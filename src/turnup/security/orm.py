"""Users, API tokens and web sessions. Secrets are stored only as hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from turnup.kernel.db import Base, JSONDoc, UTCDateTime
from turnup.kernel.ids import new_id


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    roles: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # TOTP second factor: the secret encrypted with a key derived from TURNUP_SECRET_KEY (security.totp),
    # and the last time step accepted (a code is accepted once).
    totp_secret: Mapped[str | None] = mapped_column(String(300), nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # recorded at most once a minute (not a write per request)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the roles this token carries (a subset of its user's); None = all of the user's roles
    scopes: Mapped[list[str] | None] = mapped_column(JSONDoc, nullable=True)


class WebSession(Base):
    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginCounter(Base):
    """Failed logins in the current window for one key: ``user:<username>`` or ``source:<address>``.

    Unknown usernames get a counter too, so they take the same path as known ones.
    """

    __tablename__ = "login_counter"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
