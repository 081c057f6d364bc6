"""Migration 0009 on both databases: tokens issued before it get an expiry (created_at + 90 days) and keep
working with all their user's roles; a scrypt password hash written before it still logs in."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from turnup.kernel import clock, migrate
from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.kernel.errors import Unauthorized
from turnup.security import authenticate_token
from turnup.security.services import LoginPolicy, login

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def test_existing_tokens_get_an_expiry_and_scrypt_users_still_log_in(db_url: str) -> None:
    migrate.upgrade(db_url, "0008")
    engine = make_engine(db_url)
    salt = bytes(range(16))
    digest = hashlib.scrypt(b"Legacy-Password-Works-1", salt=salt, n=2**14, r=8, p=1)
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO app_user (id, username, display_name, password_hash, roles, active,"
                    " created_at) VALUES ('u1', 'old', 'Old', :hash, :roles, :active, :at)"
                ),
                {
                    "hash": f"scrypt${salt.hex()}${digest.hex()}",
                    "roles": '["viewer"]',
                    "active": True,
                    "at": CREATED,
                },
            )
            c.execute(
                text(
                    "INSERT INTO api_token (id, user_id, name, token_hash, prefix, created_at)"
                    " VALUES ('t1', 'u1', 'old', :hash, 'tu_legacy', :at)"
                ),
                {"hash": hashlib.sha256(b"tu_legacy-secret").hexdigest(), "at": CREATED},
            )
        migrate.upgrade(db_url, "head")
        with engine.connect() as c:
            row = c.execute(text("SELECT scopes, last_used_at FROM api_token")).one()
        assert tuple(row) == (None, None)
        factory = make_sessionmaker(engine)
        clock.freeze(CREATED + timedelta(days=90) - timedelta(seconds=1))
        with factory() as s:
            assert authenticate_token(s, "tu_legacy-secret").roles == ("viewer",)
            login(s, "old", "Legacy-Password-Works-1", policy=LoginPolicy())
        clock.freeze(CREATED + timedelta(days=90))
        with factory() as s, pytest.raises(Unauthorized, match=r"^API token expired$"):
            authenticate_token(s, "tu_legacy-secret")
    finally:
        engine.dispose()
