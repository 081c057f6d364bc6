"""The welcome mail's invitation link leads to a page that works: the invited person sets a password, is
signed in and sees their own account (the link is read from the mail a local SMTP server received: the
outbound mail table never holds it). SQLite and PostgreSQL."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_onboarding_api import Inbox
from turnup.api.deps import SESSION_COOKIE
from turnup.kernel.mail import OutboundMail
from turnup.onboarding.orm import PortalInvitation
from turnup.security.orm import User, WebSession

ONBOARDING = "/tmf-api/turnupOnboarding/v1/onboarding"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A real local SMTP server (aiosmtpd) that keeps what it receives."""
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("TURNUP_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TURNUP_SMTP_PORT", str(port))
    try:
        yield inbox
    finally:
        controller.stop()


def _onboard(client: TestClient, factory: sessionmaker[Session], smtp: Inbox) -> tuple[str, str]:
    response = client.post(
        ONBOARDING,
        json={
            "customer": {"name": "Northwind Fibre Ltd", "country": "GB", "segment": "smb"},
            "sites": [{"name": "Leeds Exchange", "city": "Leeds", "country": "GB"}],
            "primaryContact": {"name": "Pat Example", "email": "pat@northwind.test"},
        },
    )
    assert response.status_code == 201, response.text
    with factory() as s:
        assert s.scalars(select(OutboundMail.status)).one() == "sent"
    [(_, _, message)] = smtp.messages
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    links = re.findall(r"(http://\S+/portal/invitation\?token=\S+)", payload.decode())
    assert len(links) == 1
    return response.json()["customer"]["id"], links[0]


def _form(page: str) -> dict[str, Any]:
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None
    return {"token": token.group(1)}


def test_the_invitation_link_sets_the_password_and_signs_in_to_the_portal(
    client: TestClient, anon_client: TestClient, smtp: Inbox, session_factory: sessionmaker[Session]
) -> None:
    # Given an onboarded customer whose welcome mail holds the invitation link
    customer_id, link = _onboard(client, session_factory, smtp)
    parts = urlsplit(link)
    assert parts.path == "/portal/invitation"
    # When the invited person opens it: a form to choose a password (not a 404)
    page = anon_client.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200 and "Set password and sign in" in page.text
    form = _form(page.text)
    # and sends two different passwords: refused, nothing changed
    differ = anon_client.post(
        "/portal/invitation", data=form | {"password": "a-long-password", "confirm": "another-password"}
    )
    assert differ.status_code == 400 and "The two passwords differ." in differ.text
    with session_factory() as s:
        assert s.scalars(select(PortalInvitation.accepted_at)).one() is None
        assert (
            s.scalars(select(User.password_hash).where(User.username == "pat@northwind.test")).one() is None
        )
    # then a good one: signed in (session cookie) and sent to the portal
    done = anon_client.post(
        "/portal/invitation",
        data=form | {"password": "a-long-password", "confirm": "a-long-password"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal"
    assert SESSION_COOKIE in done.cookies
    portal = anon_client.get("/portal")
    assert portal.status_code == 200
    assert '<dd data-testid="portal-customer">Northwind Fibre Ltd</dd>' in portal.text
    assert f"<dd>{customer_id}</dd>" in portal.text
    with session_factory() as s:
        assert s.scalars(select(PortalInvitation.accepted_at)).one() is not None
        user = s.scalars(select(User).where(User.username == "pat@northwind.test")).one()
        assert s.scalars(select(WebSession.user_id)).all() == [user.id]
    # The password works on the login form too; the link cannot be used twice
    anon_client.cookies.clear()
    again = anon_client.post("/portal/invitation", data=form | {"password": "x" * 12, "confirm": "x" * 12})
    assert again.status_code == 409 and "invitation already used" in again.text
    login = anon_client.post(
        "/login",
        data={"username": "pat@northwind.test", "password": "a-long-password", "next": "/portal"},
        follow_redirects=False,
    )
    assert login.status_code == 303 and login.headers["location"] == "/portal"


def test_an_unknown_invitation_token_is_refused_on_the_page(
    anon_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    page = anon_client.get("/portal/invitation")
    assert page.status_code == 200 and "This link has no invitation token" in page.text
    refused = anon_client.post(
        "/portal/invitation",
        data={"token": "not-a-real-token", "password": "a-long-password", "confirm": "a-long-password"},
    )
    assert (
        refused.status_code == 400 and "This invitation cannot be used: unknown invitation." in refused.text
    )
    assert SESSION_COOKIE not in refused.cookies
    with session_factory() as s:
        assert s.scalars(select(WebSession)).all() == []
