"""New customer onboarding over HTTP, with a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.accounts.orm import Contact, Customer, Site
from turnup.compliance.orm import ScreeningCase
from turnup.kernel.audit import AuditEntry
from turnup.kernel.mail import OutboundMail
from turnup.kernel.outbox import OutboxEvent
from turnup.onboarding.orm import Onboarding, PortalInvitation
from turnup.onboarding.services import LINK_PLACEHOLDER
from turnup.security.orm import User

BASE = "/tmf-api/turnupOnboarding/v1"
COMPLIANCE = "/tmf-api/turnupCompliance/v1"


@dataclass
class Inbox:
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("TURNUP_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TURNUP_SMTP_PORT", str(port))
    monkeypatch.setenv("TURNUP_SMTP_FROM", "Turnup Onboarding <onboarding@turnup.test>")
    try:
        yield inbox
    finally:
        controller.stop()


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"name": "Northwind Fibre Ltd", "country": "GB", "segment": "smb"},
        "sites": [
            {"name": "Leeds Exchange", "city": "Leeds", "country": "GB"},
            {"name": "York Office", "city": "York", "country": "GB"},
        ],
        "primaryContact": {"name": "Pat Example", "email": "pat@northwind.test"},
    }
    body.update(overrides)
    return body


def _count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _text(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_onboarding_end_to_end_sends_the_exact_welcome_mail(
    client: TestClient, smtp: Inbox, session_factory: sessionmaker[Session]
) -> None:
    response = client.post(f"{BASE}/onboarding", json=_body())
    assert response.status_code == 201, response.text
    doc = response.json()
    assert (doc["@type"], doc["state"], doc["screeningCase"]) == ("Onboarding", "completed", None)
    assert [(s["name"], s["state"]) for s in doc["step"]] == [
        ("createAccount", "done"),
        ("screenParties", "done"),
        ("invitePortalUser", "done"),
        ("sendWelcome", "done"),
    ]
    assert all(s["time"].endswith("Z") and s["outcome"] for s in doc["step"])
    assert doc["step"][3]["outcome"] == "welcome mail sent to pat@northwind.test (attempt 1)"

    # exactly one mail, to the contact, with the invitation link
    assert len(smtp.messages) == 1
    mail_from, rcpt, message = smtp.messages[0]
    assert (mail_from, rcpt) == ("onboarding@turnup.test", ["pat@northwind.test"])
    assert message["Subject"] == "Welcome to Turnup, Northwind Fibre Ltd"
    assert message["To"] == "pat@northwind.test"
    links = re.findall(r"http://127\.0\.0\.1:8000/portal/invitation\?token=(\S+)", _text(message))
    assert len(links) == 1

    # the token is stored hashed only, and the sent body no longer holds it
    with session_factory() as s:
        invitation = s.scalars(select(PortalInvitation)).one()
        assert invitation.token_hash != links[0] and len(invitation.token_hash) == 64
        stored = s.scalars(select(OutboundMail)).one()
        assert (stored.status, stored.attempts) == ("sent", 1)
        assert links[0] not in stored.body and LINK_PLACEHOLDER in stored.body
        user = s.get(User, doc["portalUserId"])
        assert (user.username, user.roles, user.password_hash) == ("pat@northwind.test", ["customer"], None)
        customer = s.get(Customer, doc["customer"]["id"])
        assert (customer.name, customer.status) == ("Northwind Fibre Ltd", "prospective")
        assert sorted(x.name for x in s.scalars(select(Site).where(Site.customer_id == customer.id))) == [
            "Leeds Exchange",
            "York Office",
        ]
        assert s.scalars(select(Contact.email)).all() == ["pat@northwind.test"]
        assert s.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == doc["id"])).all() == [
            "compliance.screen",
            "onboarding.start",
        ]

    # GET shows the same record
    again = client.get(f"{BASE}/onboarding/{doc['id']}").json()
    assert [s["state"] for s in again["step"]] == ["done"] * 4

    # the invited person sets a password and sees only their own account
    accepted = client.post(
        f"{BASE}/invitation/accept",
        json={"token": links[0], "password": "a-long-password"},
        headers={"Authorization": ""},
    )
    assert accepted.status_code == 200, accepted.text
    reused = client.post(f"{BASE}/invitation/accept", json={"token": links[0], "password": "a-long-password"})
    assert reused.status_code == 409
    from turnup.security import create_api_token

    with session_factory() as s:
        token = create_api_token(s, username="pat@northwind.test")
    portal = {"Authorization": f"Bearer {token}"}
    mine = client.get(f"{BASE}/myAccount", headers=portal)
    assert mine.status_code == 200 and mine.json()["id"] == doc["customer"]["id"]
    # the portal user is confined to their own customer (issue 15): the list holds only their account
    listed = client.get("/tmf-api/customerManagement/v4/customer", headers=portal)
    assert listed.status_code == 200 and [c["id"] for c in listed.json()] == [doc["customer"]["id"]]
    assert client.get(f"{BASE}/onboarding", headers=portal).status_code == 403


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda b: b["primaryContact"].pop("email"), "primaryContact.email"),
        (lambda b: b["customer"].update(country="Britain"), "customer.country"),
        (lambda b: b["sites"][1].update(latitude=123), "sites.1.latitude"),
        (lambda b: b.update(colour="red"), "colour"),
        (lambda b: b["sites"][1].update(name="leeds exchange"), "sites[1].name"),
    ],
)
def test_bad_input_is_a_tmf_400_naming_the_field_and_nothing_is_written_or_sent(
    client: TestClient, smtp: Inbox, session_factory: sessionmaker[Session], mutate: Any, field: str
) -> None:
    body = _body()
    mutate(body)
    response = client.post(f"{BASE}/onboarding", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["@type"] == "Error" and field in response.json()["message"]
    for model in (Onboarding, Customer, Site, Contact, User, OutboundMail, ScreeningCase, OutboxEvent):
        expected = 1 if model is User else 0  # the admin
        assert _count(session_factory, model) == expected, model
    assert smtp.messages == []


def test_existing_portal_user_is_a_409_and_nothing_is_written(
    client: TestClient, smtp: Inbox, session_factory: sessionmaker[Session]
) -> None:
    assert client.post(f"{BASE}/onboarding", json=_body()).status_code == 201
    smtp.messages.clear()
    second = client.post(f"{BASE}/onboarding", json=_body(customer={"name": "Other Co", "country": "GB"}))
    assert second.status_code == 409 and "primaryContact.email" in second.json()["message"]
    assert _count(session_factory, Customer) == 1 and _count(session_factory, Onboarding) == 1
    assert smtp.messages == []


def test_screening_hit_holds_the_onboarding_then_clear_and_resume(
    client: TestClient, smtp: Inbox, session_factory: sessionmaker[Session]
) -> None:
    body = _body(customer={"name": "Zorblax Dynamics GmbH", "country": "AE"})
    response = client.post(f"{BASE}/onboarding", json=body)
    assert response.status_code == 201
    doc = response.json()
    assert doc["state"] == "onHold"  # held, not rejected: the account exists
    assert [(s["name"], s["state"]) for s in doc["step"]] == [
        ("createAccount", "done"),
        ("screenParties", "held"),
        ("invitePortalUser", "pending"),
        ("sendWelcome", "pending"),
    ]
    assert "Zorblax Dynamics LLC" in doc["step"][1]["outcome"]
    case_id = doc["screeningCase"]["id"]
    assert smtp.messages == [] and _count(session_factory, OutboundMail) == 0
    assert _count(session_factory, User) == 1

    blocked = client.post(f"{BASE}/onboarding/{doc['id']}/resume")
    assert blocked.status_code == 409 and case_id in blocked.json()["message"]

    case = client.get(f"{COMPLIANCE}/screeningCase/{case_id}").json()
    assert (case["refType"], case["refId"], case["state"]) == ("onboarding", doc["id"], "open")
    assert (
        client.post(
            f"{COMPLIANCE}/screeningCase/{case_id}/clear",
            json={"reason": "trade registry: unrelated company"},
        ).status_code
        == 200
    )
    resumed = client.post(f"{BASE}/onboarding/{doc['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "completed"
    assert [s["state"] for s in resumed.json()["step"]] == ["done"] * 4
    assert [rcpt for _, rcpt, _ in smtp.messages] == [["pat@northwind.test"]]


def test_failed_send_is_visible_and_retried(
    client: TestClient, smtp: Inbox, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from turnup.kernel import clock
    from turnup.onboarding.services import deliver_mail

    good_port = str(__import__("os").environ["TURNUP_SMTP_PORT"])
    monkeypatch.setenv("TURNUP_SMTP_PORT", str(_free_port()))  # nobody listens there
    doc = client.post(f"{BASE}/onboarding", json=_body()).json()
    assert doc["state"] == "inProgress"
    step = doc["step"][3]
    assert step["state"] == "retrying" and "ConnectionRefusedError" in step["outcome"]
    assert smtp.messages == []

    monkeypatch.setenv("TURNUP_SMTP_PORT", good_port)
    with session_factory() as s:
        assert deliver_mail(s) == []  # not due yet (backoff)
        from datetime import timedelta

        clock.advance(timedelta(minutes=5))
        delivered = deliver_mail(s)
        assert [(m.status, m.attempts) for m in delivered] == [("sent", 2)]
    final = client.get(f"{BASE}/onboarding/{doc['id']}").json()
    assert final["state"] == "completed" and final["step"][3]["state"] == "done"
    assert len(smtp.messages) == 1


def test_cli_start_and_show(
    smtp: Inbox, db_url: str, engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml
    from typer.testing import CliRunner

    from turnup.cli.main import app
    from turnup.kernel.settings import get_settings

    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        file = tmp_path / "customer.yaml"
        file.write_text(yaml.safe_dump(_body()))
        runner = CliRunner()
        started = runner.invoke(app, ["onboarding", "start", str(file)], env={"COLUMNS": "250"})
        assert started.exit_code == 0, started.output
        onboarding_id = re.search(r"Onboarding (\w+) state=completed", started.output).group(1)  # type: ignore[union-attr]
        shown = runner.invoke(app, ["onboarding", "show", onboarding_id], env={"COLUMNS": "250"})
        assert shown.exit_code == 0 and "sendWelcome" in shown.output and "welcome mail sent" in shown.output
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(_body(primaryContact={"name": "No Mail"})))
        refused = runner.invoke(app, ["onboarding", "start", str(bad)])
        assert refused.exit_code == 1 and "primaryContact.email" in refused.output
        assert len(smtp.messages) == 1
    finally:
        get_settings.cache_clear()
