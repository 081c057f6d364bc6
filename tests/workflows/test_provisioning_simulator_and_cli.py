"""The network simulator on its own (determinism, exactly-once ledger) and the fallout CLI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.cli.main import app as cli
from turnup.kernel.settings import get_settings
from turnup.provisioning.adapters import AdapterAnswerMalformed, AdapterRequest, check_result
from turnup.provisioning.orm import SimulatorLedgerEntry
from turnup.provisioning.simulator import NetworkSimulator, SimulatedOutage
from turnup.testing import order_body, wait_until


def _outcomes(sim: NetworkSimulator, keys: list[str]) -> list[str]:
    out = []
    for key in keys:
        try:
            sim.activate(AdapterRequest(idempotency_key=key, service_id=f"svc-{key}", action="activate"))
            out.append("ok")
        except SimulatedOutage:
            out.append("fail")
    return out


def test_failure_pattern_is_a_function_of_the_seed(session_factory: sessionmaker[Session]) -> None:
    keys = [f"k{i}" for i in range(40)]
    first = _outcomes(NetworkSimulator(session_factory, failure_rate=0.5, seed=7), keys)
    with session_factory() as s:
        s.query(SimulatorLedgerEntry).delete()
        s.commit()
    second = _outcomes(NetworkSimulator(session_factory, failure_rate=0.5, seed=7), keys)
    with session_factory() as s:
        s.query(SimulatorLedgerEntry).delete()
        s.commit()
    other = _outcomes(NetworkSimulator(session_factory, failure_rate=0.5, seed=8), keys)
    assert first == second
    assert first != other
    assert 5 < first.count("fail") < 35


def test_repeated_key_is_answered_from_the_ledger_without_a_new_effect(
    session_factory: sessionmaker[Session],
) -> None:
    sim = NetworkSimulator(session_factory)
    request = AdapterRequest(idempotency_key="item-1:activate", service_id="svc-1", action="activate")
    answers = [sim.activate(request) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert check_result("network-simulator", "activate", answers[0]).network_ref == "sim-svc-1"
    with session_factory() as s:
        row = s.scalars(select(SimulatorLedgerEntry)).one()
        assert (row.idempotency_key, row.status, row.calls, row.failures) == (
            "item-1:activate",
            "applied",
            3,
            0,
        )
    # the same key for another operation is refused, not silently reused
    with pytest.raises(Exception, match="was used for activate"):
        sim.deactivate(AdapterRequest(idempotency_key="item-1:activate", service_id="svc-1", action="x"))


def test_malformed_answers_are_rejected() -> None:
    for raw in (None, "ok", {"status": "maybe"}, {"status": "done", "networkRef": 5}):
        with pytest.raises(AdapterAnswerMalformed):
            check_result("x", "activate", raw)


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "300")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_fallout_cli_lists_and_retries(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    orchestrator: None,
    cli_env: CliRunner,
) -> None:
    order = client.post(
        "/tmf-api/productOrderingManagement/v4/productOrder", json=order_body(customer_id, catalog["broken"])
    ).json()
    fallout = "/tmf-api/turnupOrchestration/v1/fallout"
    entry = wait_until(lambda: (client.get(fallout, params={"state": "open"}).json() or [None])[0], 60)
    listed = cli_env.invoke(cli, ["fallout", "list"])
    assert listed.exit_code == 0, listed.output
    assert entry["id"] in listed.output and order["id"] in listed.output
    skip_without_reason = cli_env.invoke(cli, ["fallout", "skip", entry["id"]])
    assert skip_without_reason.exit_code != 0
    retried = cli_env.invoke(cli, ["fallout", "retry", entry["id"]])
    assert retried.exit_code == 0, retried.output
    assert "retried" in retried.output
    done = wait_until(
        lambda: (
            client.get(f"/tmf-api/productOrderingManagement/v4/productOrder/{order['id']}").json()["state"]
            == "completed"
        ),
        60,
    )
    assert done
    twice = cli_env.invoke(cli, ["fallout", "retry", entry["id"]])
    assert twice.exit_code == 1 and "already retried" in twice.output
