"""Fixtures for workflow tests: an in-process orchestrator with fast retries, a catalog, a customer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from turnup.orchestration import runtime
from turnup.testing import in_process, make_customer, make_offering

FAST_RETRIES = {
    "TURNUP_STEP_MAX_ATTEMPTS": "3",
    "TURNUP_STEP_BACKOFF_SECONDS": "0.05",
    "TURNUP_STEP_BACKOFF_CAP_SECONDS": "0.2",
}


def drop_dbos_schema(db_url: str) -> None:
    schema = runtime.dbos_schema(db_url)
    if schema is None:
        return
    url = make_url(db_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    ) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def dbos_schema_cleanup(db_url: str) -> Iterator[None]:
    yield
    drop_dbos_schema(db_url)


@pytest.fixture
def orchestrator(engine: Any, db_url: str, dbos_schema_cleanup: None) -> Iterator[None]:
    """DBOS running in this process on the test database (tables already created)."""
    with in_process(db_url, **FAST_RETRIES):
        yield


@pytest.fixture
def catalog(session_factory: sessionmaker[Session]) -> dict[str, str]:
    with session_factory() as s:
        return {
            "fibre": make_offering(
                s,
                "Business Fibre 1G",
                [{"adapter": "network-simulator", "action": "activate-access", "parameters": {"mbps": 1000}}],
            ),
            "voice": make_offering(
                s,
                "Hosted Voice Seat",
                [{"adapter": "voice-platform", "action": "create-seat", "parameters": {"codec": "g722"}}],
            ),
            "colo": make_offering(
                s,
                "Colocation 4U",
                [
                    {"adapter": "network-simulator", "action": "cross-connect", "parameters": {"ports": 1}},
                    {"adapter": "network-simulator", "action": "power-on", "parameters": {"amps": 16}},
                ],
            ),
            "flaky": make_offering(
                s,
                "Flaky Link",
                [
                    {
                        "adapter": "network-simulator",
                        "action": "activate",
                        "parameters": {"simulateFailFirst": 2},
                    }
                ],
            ),
            "broken": make_offering(
                s,
                "Broken Link",
                [
                    {
                        "adapter": "network-simulator",
                        "action": "activate",
                        "parameters": {"simulateFailFirst": 3},
                    }
                ],
            ),
            "garbled": make_offering(
                s,
                "Garbled Link",
                [
                    {
                        "adapter": "network-simulator",
                        "action": "activate",
                        "parameters": {"simulateMalformed": True},
                    }
                ],
            ),
            "retired": make_offering(
                s,
                "Old Link",
                [{"adapter": "network-simulator", "action": "activate", "parameters": {}}],
                lifecycle_status="retired",
            ),
            "alien": make_offering(
                s, "Alien Link", [{"adapter": "carrier-pigeon", "action": "activate", "parameters": {}}]
            ),
        }


@pytest.fixture
def customer_id(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as s:
        return make_customer(s)
