"""Secrets never stored in plaintext (issue 15, item 5): the portal invitation link's token exists only in the
mail handed to the mail server; the database holds its SHA-256 alone, before, during and after sending.
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import turnup.models
from tests.e2e.test_onboarding_api import Inbox
from turnup.kernel import clock
from turnup.kernel.mail import OutboundMail
from turnup.onboarding.orm import PortalInvitation
from turnup.onboarding.services import LINK_PLACEHOLDER, deliver_mail

ONBOARDING = "/tmf-api/turnupOnboarding/v1/onboarding"
BODY = {
    "customer": {"name": "Northwind Fibre Ltd", "country": "GB", "segment": "smb"},
    "sites": [{"name": "Leeds Exchange", "city": "Leeds", "country": "GB"}],
    "primaryContact": {"name": "Pat Example", "email": "pat@northwind.test"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Inbox, int]]:
    """A local SMTP server; TURNUP_SMTP_PORT starts pointing at a port where nobody listens."""
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("TURNUP_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TURNUP_SMTP_PORT", str(_free_port()))
    try:
        yield inbox, port
    finally:
        controller.stop()


def _rows_containing(factory: sessionmaker[Session], needle: str) -> list[str]:
    """The tables of which some row holds ``needle`` in some column."""
    found = []
    with factory() as s:
        for table in turnup.models.metadata.sorted_tables:
            for row in s.execute(select(table)).all():
                if any(needle in str(value) for value in row):
                    found.append(table.name)
                    break
    return found


def _token(inbox: Inbox) -> str:
    [(_, _, message)] = inbox.messages
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    [link] = re.findall(r"http://\S+/portal/invitation\?token=\S+", payload.decode())
    return parse_qs(urlsplit(link).query)["token"][0]


def test_a_queued_welcome_mail_holds_no_invitation_link(
    client: TestClient, smtp: tuple[Inbox, int], session_factory: sessionmaker[Session]
) -> None:
    # Given an onboarding whose welcome mail could not be sent (it stays queued in the database)
    response = client.post(ONBOARDING, json=BODY)
    assert response.status_code == 201 and response.json()["state"] == "inProgress"
    # Then no table holds a usable invitation link: the queued body has a placeholder instead
    assert _rows_containing(session_factory, "invitation?token=") == []
    with session_factory() as s:
        queued = s.scalars(select(OutboundMail)).one()
    assert queued.status == "pending" and LINK_PLACEHOLDER in queued.body
    assert queued.redacted_body is None


def test_the_sent_token_is_stored_nowhere_only_its_hash_and_it_works(
    client: TestClient,
    anon_client: TestClient,
    smtp: tuple[Inbox, int],
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    response = client.post(ONBOARDING, json=BODY)
    assert response.status_code == 201
    with session_factory() as s:
        hash_before = s.scalars(select(PortalInvitation.token_hash)).one()
    # When the mail server is back and the retry sends the mail
    monkeypatch.setenv("TURNUP_SMTP_PORT", str(port))
    clock.advance(timedelta(minutes=5))
    with session_factory() as s:
        assert [(m.status, m.attempts) for m in deliver_mail(s)] == [("sent", 2)]
    token = _token(inbox)
    # Then the token is in no row of any table; the invitation holds its SHA-256 (a new one)
    assert len(token) >= 40
    assert _rows_containing(session_factory, token) == []
    with session_factory() as s:
        stored = s.scalars(select(PortalInvitation.token_hash)).one()
        sent = s.scalars(select(OutboundMail)).one()
    assert stored == hashlib.sha256(token.encode()).hexdigest() != hash_before
    assert LINK_PLACEHOLDER in sent.body
    # And the link it carries works, once
    accepted = anon_client.post(
        "/portal/invitation",
        data={"token": token, "password": "a-long-password", "confirm": "a-long-password"},
        follow_redirects=False,
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == "/portal"
    assert _rows_containing(session_factory, token) == []
