"""Pooled PostgreSQL connections are checked before use only after sitting idle (``kernel.db``): a connection
the server dropped while it was idle is replaced without the caller seeing an error, and a busy pool pays no
extra round trip per checkout. (SQLite has no pooled server connections to lose.)"""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import _pg_conninfo, pg_url
from turnup.kernel.db import make_engine


def _kill(database: str, pid: int) -> None:
    with psycopg.connect(_pg_conninfo(database), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
    time.sleep(0.2)


def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _one_connection_engine(pg_database: str | None, ping_after_idle_seconds: float):  # type: ignore[no-untyped-def]
    if pg_database is None:
        pytest.skip("PostgreSQL not reachable")
    return make_engine(
        pg_url(pg_database, "public"),
        pool_size=1,
        max_overflow=0,
        ping_after_idle_seconds=ping_after_idle_seconds,
    )


def test_a_connection_dropped_while_idle_is_replaced_transparently(pg_database: str | None) -> None:
    engine = _one_connection_engine(pg_database, 0.1)
    try:
        first = _backend_pid(engine)
        _kill(pg_database or "", first)  # the pooled connection is now dead, and has been idle > 0.1 s
        second = _backend_pid(engine)  # no error: the idle check found it dead and the pool reconnected
        assert second != first
        assert _backend_pid(engine) == second  # used again at once: no check, the same connection
    finally:
        engine.dispose()


def test_without_the_idle_check_a_dropped_connection_fails_the_next_request(pg_database: str | None) -> None:
    """The control: with the idle threshold out of reach, the same kill reaches the caller, so the test above
    passes because of the check and not by accident."""
    engine = _one_connection_engine(pg_database, 3600)
    try:
        first = _backend_pid(engine)
        _kill(pg_database or "", first)
        with pytest.raises(OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != first  # SQLAlchemy discarded the dead connection after the error
    finally:
        engine.dispose()
