"""Operators see consumer lag and parked events, and retry or skip them, through the API and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.support import consumer_rig as rig
from turnup.cli.events import app as events_cli
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.consumers import ConsumerInbox, ConsumerWorker
from turnup.kernel.settings import Settings, get_settings

BASE = "/tmf-api/turnupEvents/v1"


@pytest.fixture
def parked(engine: Engine, session_factory: sessionmaker[Session], db_url: str) -> Iterator[ConsumerWorker]:
    """res-13's first event parked in the fragile consumer, one more event of res-13 waiting behind it."""
    rig.create_tables(engine)
    rig.register()
    counters: dict[str, int] = {}
    for _ in range(2):
        rig.publish_batch(session_factory, counters, ["res-13", "res-1"])
    worker = ConsumerWorker(session_factory, Settings(database_url=db_url), names=rig.CONSUMERS)
    for _ in range(3):
        worker.drain()
        clock.advance(timedelta(seconds=10))
    try:
        yield worker
    finally:
        rig.unregister()


def test_api_shows_lag_and_parked_events_and_retries_and_skips_them(
    client: TestClient, parked: ConsumerWorker, session_factory: sessionmaker[Session]
) -> None:
    # the consumer list shows what each consumer owes
    consumers = {c["name"]: c for c in client.get(f"{BASE}/consumer").json()}
    assert {k: consumers["rig.fragile"][k] for k in ("pending", "parked", "retrying", "maxAttempts")} == {
        "pending": 1,
        "parked": 1,
        "retrying": 0,
        "maxAttempts": 2,
    }
    assert consumers["rig.ledger"]["pending"] == consumers["rig.ledger"]["parked"] == 0
    assert consumers["rig.fragile"]["lagSeconds"] > 0
    assert client.get(f"{BASE}/consumer/rig.fragile").json()["parked"] == 1
    assert client.get(f"{BASE}/consumer/nope").status_code == 404

    # the parked event, with its error, through a filtered list
    response = client.get(f"{BASE}/consumerEvent", params={"status": "parked"})
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "1"
    [event] = response.json()
    path = f"{BASE}/consumerEvent/{event['id']}"
    assert event["href"].endswith(path)
    assert (event["consumer"], event["resourceKey"], event["attempts"]) == ("rig.fragile", "thing/res-13", 2)
    assert "cannot be handled" in event["lastError"]
    assert client.get(path).json()["status"] == "parked"

    # skipping needs a reason: 400 TMF error, nothing changes
    refused = client.post(f"{path}/skip", json={})
    assert refused.status_code == 400
    assert {"code", "reason", "message", "status"} <= set(refused.json())
    assert client.get(path).json()["status"] == "parked"
    # a done event cannot be retried: 409
    done = client.get(f"{BASE}/consumerEvent", params={"status": "done", "limit": 1}).json()[0]
    assert client.post(f"{BASE}/consumerEvent/{done['id']}/retry", json={}).status_code == 409
    # unknown: 404; malformed id: 400 family, never 500
    assert client.get(f"{BASE}/consumerEvent/999999").status_code == 404
    assert client.post(f"{BASE}/consumerEvent/abc/retry", json={}).status_code in (400, 422)

    # retry with the cause fixed: the event and the one behind it are handled
    with session_factory() as s, s.begin():
        s.execute(insert(rig.flag).values(id=1))
    retried = client.post(f"{path}/retry", json={"reason": "flag set"})
    assert retried.status_code == 200
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    assert parked.drain() == 2
    assert client.get(path).json()["status"] == "done"
    assert client.get(f"{BASE}/consumer/rig.fragile").json()["pending"] == 0
    with session_factory() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "consumerEvent.retry")).one()
        assert (audit.actor, audit.comment) == ("user:admin", "flag set")


def test_viewer_can_read_but_not_retry(
    client: TestClient, parked: ConsumerWorker, session_factory: sessionmaker[Session]
) -> None:
    from turnup.security import create_api_token, create_user

    with session_factory() as s:
        create_user(s, username="viewer", password="Granite-Meadow-Echo-19", roles=["viewer"])
        token = create_api_token(s, username="viewer")
    headers = {"Authorization": f"Bearer {token}"}
    [event] = client.get(f"{BASE}/consumerEvent", params={"status": "parked"}, headers=headers).json()
    path = f"{BASE}/consumerEvent/{event['id']}"
    assert client.post(f"{path}/retry", json={}, headers=headers).status_code == 403
    assert client.get(path, headers=headers).json()["status"] == "parked"


def test_cli_lists_lag_and_parked_events_and_skips_with_a_reason(
    parked: ConsumerWorker,
    db_url: str,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "300")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        lag = runner.invoke(events_cli, ["consumers"])
        assert lag.exit_code == 0, lag.output
        fragile_line = next(line for line in lag.output.splitlines() if "rig.fragile" in line)
        cells = [cell.strip() for cell in fragile_line.split("│")]
        assert cells[3:6] == ["1", "0", "1"]  # pending, retrying, parked
        listing = runner.invoke(events_cli, ["consumer-events", "--status", "parked"])
        assert listing.exit_code == 0 and "thing/res-13" in listing.output
        with session_factory() as s:
            seq = s.scalars(select(ConsumerInbox.seq).where(ConsumerInbox.status == "parked")).one()
        missing_reason = runner.invoke(events_cli, ["skip", str(seq)])
        assert missing_reason.exit_code != 0
        skipped = runner.invoke(events_cli, ["skip", str(seq), "--reason", "fixed by hand"])
        assert skipped.exit_code == 0, skipped.output
        assert "skipped: fixed by hand" in skipped.output
        again = runner.invoke(events_cli, ["skip", str(seq), "--reason", "twice"])
        assert again.exit_code != 0 and "only a parked or pending" in again.output
        # the event behind it now flows (with the flag set)
        with session_factory() as s, s.begin():
            s.execute(insert(rig.flag).values(id=1))
        drained = runner.invoke(events_cli, ["run-consumers", "--drain"])
        assert drained.exit_code == 0 and "1 consumer event(s) handled" in drained.output
        with session_factory() as s:
            assert (
                s.scalar(
                    select(func.count()).select_from(ConsumerInbox).where(ConsumerInbox.status == "pending")
                )
                == 0
            )
    finally:
        get_settings.cache_clear()
