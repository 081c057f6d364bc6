"""Fixtures: every database test runs once on SQLite and once on PostgreSQL.

PostgreSQL tests get a database of their own for the session (``turnup_test_<random>``) and a schema of
their own per test, dropped afterwards. With ``TURNUP_REQUIRE_POSTGRES=1`` an unreachable PostgreSQL fails
the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

# CLI tests read Rich tables: give every process (also pytest-xdist workers, which have no terminal) one width
os.environ["COLUMNS"] = "300"
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import turnup.models
from turnup.kernel import clock
from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.kernel.settings import Settings, get_settings
from turnup.wiring import wire

wire()  # the composition root: every feature's consumers, sweeps and workflows registered

PG_HOST = os.environ.get("TURNUP_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TURNUP_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TURNUP_TEST_PG_USER", "postgres")
REQUIRE_PG = os.environ.get("TURNUP_REQUIRE_POSTGRES") == "1"


def _pg_conninfo(dbname: str) -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={dbname}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A throwaway PostgreSQL database for this test session, or None when PostgreSQL is absent."""
    try:
        admin = psycopg.connect(_pg_conninfo("postgres"), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL required (TURNUP_REQUIRE_POSTGRES=1) but unreachable: {exc}")
        yield None
        return
    name = f"turnup_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def pg_url(database: str, schema: str) -> str:
    return (
        f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"
        f"?options=-csearch_path%3D{schema},public"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any, pg_database: str | None) -> Iterator[str]:
    """An empty database URL: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/turnup.db"
        return
    if pg_database is None:
        pytest.skip("PostgreSQL not reachable (set TURNUP_REQUIRE_POSTGRES=1 to make this a failure)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_conninfo(pg_database), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield pg_url(pg_database, schema)
    finally:
        with psycopg.connect(_pg_conninfo(pg_database), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database holding the full current schema."""
    eng = make_engine(db_url)
    turnup.models.metadata.create_all(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    s = session_factory()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, run_worker=False)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Any:
    from turnup.app import create_app

    get_settings.cache_clear()
    return create_app(settings, engine)


@pytest.fixture
def admin_token(session_factory: sessionmaker[Session]) -> str:
    from turnup.security import create_api_token, create_user

    with session_factory() as s:
        create_user(s, username="admin", password="Saffron-Glacier-Kite-64", roles=["admin"])
        # long-lived: some tests move the clock years ahead (tokens expire after 90 days by default)
        return create_api_token(s, username="admin", expires_in=timedelta(days=36500))


@pytest.fixture
def client(app: Any, admin_token: str) -> Iterator[TestClient]:
    """An HTTP client authenticated as an admin."""
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {admin_token}"
        yield c


@pytest.fixture
def anon_client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
