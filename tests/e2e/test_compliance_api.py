"""Compliance review queue over HTTP and the ``turnup compliance`` CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.compliance import Party, screen_parties
from turnup.compliance.config import SAMPLE_LIST
from turnup.compliance.matching import csv_text
from turnup.compliance.orm import ScreeningCase, ScreeningListVersion
from turnup.kernel.audit import AuditEntry
from turnup.kernel.outbox import OutboxEvent
from turnup.kernel.settings import get_settings

BASE = "/tmf-api/turnupCompliance/v1"


def _held_case(factory: sessionmaker[Session], ref_id: str = "q-1") -> str:
    with factory() as s:
        outcome = screen_parties(
            s,
            ref_type="quote",
            ref_id=ref_id,
            actor="sys",
            commit=True,
            parties=[Party("customer", "Nebulon Wirecraft", "VE", "c1")],
        )
        assert outcome.case_id
        return outcome.case_id


def test_queue_list_get_clear_with_audit_and_event(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    case_id = _held_case(session_factory)
    _held_case(session_factory, "q-2")
    listed = client.get(f"{BASE}/screeningCase", params={"state": "open", "refId": "q-1"})
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "1"
    doc = listed.json()[0]
    assert (doc["id"], doc["@type"], doc["onHold"], doc["refType"]) == (
        case_id,
        "ScreeningCase",
        True,
        "quote",
    )
    assert doc["href"].endswith(f"{BASE}/screeningCase/{case_id}")
    assert [m["entryId"] for m in doc["match"]] == ["SYN-0007"]

    cleared = client.post(
        f"{BASE}/screeningCase/{case_id}/clear", json={"reason": "registry shows a different firm"}
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["state"], cleared.json()["resolvedBy"]) == ("cleared", "user:admin")
    assert client.get(f"{BASE}/screeningCase/{case_id}").json()["onHold"] is False
    with session_factory() as s:
        entry = s.scalars(
            select(AuditEntry).where(
                AuditEntry.resource_id == case_id, AuditEntry.action == "screeningCase.clear"
            )
        ).one()
        assert (entry.actor, entry.comment) == ("user:admin", "registry shows a different firm")
        assert s.scalars(
            select(OutboxEvent.event_type)
            .where(OutboxEvent.resource_id == case_id)
            .order_by(OutboxEvent.event_time)
        ).all() == ["ScreeningCaseCreateEvent", "ScreeningCaseStateChangeEvent"]
    again = client.post(f"{BASE}/screeningCase/{case_id}/confirm", json={"reason": "second thoughts"})
    assert again.status_code == 409 and again.json()["@type"] == "Error"


def test_reason_is_required(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    case_id = _held_case(session_factory)
    for body in ({}, {"reason": ""}, {"reason": "ok", "extra": 1}):
        response = client.post(f"{BASE}/screeningCase/{case_id}/confirm", json=body)
        assert response.status_code == 400, body
        assert "reason" in response.json()["message"] or "extra" in response.json()["message"]
    with session_factory() as s:
        assert s.get(ScreeningCase, case_id).state == "open"
    assert client.post(f"{BASE}/screeningCase/nope/clear", json={"reason": "abc"}).status_code == 404


def test_review_needs_the_review_permission(
    anon_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from turnup.security import create_api_token, create_user

    case_id = _held_case(session_factory)
    with session_factory() as s:
        create_user(s, username="op", roles=["operator"])
        create_user(s, username="officer", roles=["compliance_officer"])
        op, officer = create_api_token(s, username="op"), create_api_token(s, username="officer")
    denied = anon_client.post(
        f"{BASE}/screeningCase/{case_id}/clear",
        json={"reason": "looks fine"},
        headers={"Authorization": f"Bearer {op}"},
    )
    assert denied.status_code == 403 and "compliance:review" in denied.json()["message"]
    allowed = anon_client.post(
        f"{BASE}/screeningCase/{case_id}/clear",
        json={"reason": "looks fine"},
        headers={"Authorization": f"Bearer {officer}"},
    )
    assert allowed.status_code == 200 and allowed.json()["resolvedBy"] == "user:officer"


def test_adhoc_screening_and_export_check(client: TestClient) -> None:
    hit = client.post(f"{BASE}/screening", json={"name": "ZORBLAX DYNAMICS, L.L.C.", "country": "ae"})
    assert hit.status_code == 200
    assert (hit.json()["hit"], [m["entryId"] for m in hit.json()["match"]]) == (True, ["SYN-0001"])
    miss = client.post(f"{BASE}/screening", json={"name": "Quenterra Trading 12"})
    assert miss.json()["hit"] is False
    check = client.post(
        f"{BASE}/exportCheck", json={"eccn": "5A002", "destinationCountry": "CN", "onDate": "2024-05-01"}
    )
    assert check.json()["allowedWithoutLicence"] is False
    assert [f["ruleId"] for f in check.json()["finding"]] == ["LIC-5A002-RESTRICTED"]
    bad = client.post(f"{BASE}/exportCheck", json={"destinationCountry": "China"})
    assert bad.status_code == 400 and "destinationCountry" in bad.json()["message"]


def test_upload_list_rescreens_and_bad_upload_writes_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    bad = client.post(f"{BASE}/screeningList", json={"name": "bad.csv", "content": "source,title\nx,y\n"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("line 1: missing column(s) name")
    with session_factory() as s:
        assert s.scalars(select(ScreeningListVersion)).all() == []
    content = SAMPLE_LIST.read_text(encoding="utf-8")
    ok = client.post(f"{BASE}/screeningList", json={"name": "sample.csv", "content": content})
    assert ok.status_code == 201, ok.text
    assert (ok.json()["entryCount"], ok.json()["loadedBy"]) == (15, "user:admin")
    assert client.get(f"{BASE}/screeningList").headers["X-Total-Count"] == "1"


@pytest.fixture
def cli_env(db_url: str, engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_screen_cases_clear_and_load_list(
    cli_env: CliRunner, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    from turnup.cli.main import app

    hit = cli_env.invoke(app, ["compliance", "screen", "Zorblax Dynamics GmbH", "--country", "AE"])
    assert hit.exit_code == 2 and "SYN-0001" in hit.output
    miss = cli_env.invoke(app, ["compliance", "screen", "Northwind Fibre"])
    assert miss.exit_code == 0 and "No match" in miss.output
    case_id = _held_case(session_factory)
    listed = cli_env.invoke(app, ["compliance", "cases", "--state", "open"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0 and case_id in listed.output
    no_reason = cli_env.invoke(app, ["compliance", "clear", case_id])
    assert no_reason.exit_code != 0
    cleared = cli_env.invoke(app, ["compliance", "clear", case_id, "--reason", "different company"])
    assert cleared.exit_code == 0, cleared.output
    with session_factory() as s:
        assert s.get(ScreeningCase, case_id).resolved_by == "cli"
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text([{"_id": "A", "source": "S", "name": ""}]))
    refused = cli_env.invoke(app, ["compliance", "load-list", str(bad)])
    assert refused.exit_code == 1 and "line 2: name is empty" in refused.output
    good = tmp_path / "list.csv"
    good.write_text(SAMPLE_LIST.read_text(encoding="utf-8"))
    loaded = cli_env.invoke(app, ["compliance", "load-list", str(good)])
    assert loaded.exit_code == 0 and "Loaded 15 entries" in loaded.output
