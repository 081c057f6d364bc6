"""Agreements (TMF651) through the HTTP API: generated on acceptance, negotiated versions with redlines,
signatures over the exact bytes, and a verify check that detects tampering. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    AGREEMENTS,
    QUOTES,
    SIGNER,
    customer_and_site,
    dbos_cleanup,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from turnup.agreements.orm import AgreementDocument
from turnup.agreements.services import add_months

__all__ = ["dbos_cleanup"]


def _accepted_agreement(client: TestClient, factory: sessionmaker[Session]) -> str:
    offerings = publish_demo_catalog(factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    quote = post(
        client,
        QUOTES,
        quote_body(
            customer_id,
            site_id,
            offerings["Business Fibre 1G"],
            term=36,
            characteristics=[],
            instantSyncQuote=True,
        ),
    )
    assert quote["state"] == "approved"
    accepted = post(client, f"{QUOTES}/{quote['id']}/accept", SIGNER, 200)
    return accepted["agreement"][0]["id"]


def test_versions_redline_signatures_and_tamper_detection(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    agreement_id = _accepted_agreement(client, session_factory)
    agreement = client.get(f"{AGREEMENTS}/{agreement_id}").json()
    assert agreement["status"] == "signed" and agreement["version"] == "1"
    start, end = agreement["agreementPeriod"]["startDateTime"], agreement["agreementPeriod"]["endDateTime"]
    assert date.fromisoformat(end) == add_months(date.fromisoformat(start), 36)
    assert agreement["renewal"] == {
        "type": "automatic",
        "renewalTermMonths": 12,
        "noticePeriodDays": 90,
        "noticeDate": (date.fromisoformat(end) - timedelta(days=90)).isoformat(),
    }
    v1 = client.get(f"{AGREEMENTS}/{agreement_id}/document").content
    assert hashlib.sha256(v1).hexdigest() == agreement["document"][0]["sha256"]
    assert f"no later than {agreement['renewal']['noticeDate']}" in v1.decode()

    # negotiation: a redlined text becomes version 2
    v2_text = v1.decode().replace("90 days' written notice", "60 days' written notice")
    revised = post(
        client, f"{AGREEMENTS}/{agreement_id}/version", {"content": v2_text, "note": "notice 60 days"}
    )
    assert revised["version"] == "2" and revised["status"] == "inProgress"
    same = client.post(f"{AGREEMENTS}/{agreement_id}/version", json={"content": v2_text})
    assert same.status_code == 400

    unified = client.get(f"{AGREEMENTS}/{agreement_id}/redline", params={"from": 1, "to": 2})
    assert unified.status_code == 200
    diff = unified.text.splitlines()
    assert diff[0] == "--- version 1" and diff[1] == "+++ version 2"
    assert any(line.startswith("-") and "90 days' written notice" in line for line in diff)
    assert any(line.startswith("+") and "60 days' written notice" in line for line in diff)
    html = client.get(f"{AGREEMENTS}/{agreement_id}/redline", params={"from": 1, "to": 2, "format": "html"})
    assert html.status_code == 200 and "<table" in html.text and 'class="diff_chg"' in html.text
    assert (
        client.get(
            f"{AGREEMENTS}/{agreement_id}/redline", params={"from": 1, "to": 2, "format": "pdf"}
        ).status_code
        == 400
    )
    assert client.get(f"{AGREEMENTS}/{agreement_id}/redline", params={"from": 1, "to": 9}).status_code == 404

    # the version-1 signature stays valid for version 1 but the current version is unsigned
    check = client.get(f"{AGREEMENTS}/{agreement_id}/verify").json()
    assert check["valid"] is True and check["currentVersionSigned"] is False
    assert [(s["version"], s["valid"], s["current"]) for s in check["signatures"]] == [(1, True, False)]
    stale = client.post(
        f"{AGREEMENTS}/{agreement_id}/signature",
        json={"signerName": "Priya", "signerEmail": "p@x.example", "role": "customer", "version": 1},
    )
    assert stale.status_code == 409

    # both parties sign version 2
    signed = post(
        client,
        f"{AGREEMENTS}/{agreement_id}/signature",
        {
            "signerName": "Priya Natarajan",
            "signerEmail": "priya@brightwater-dental.example",
            "role": "customer",
        },
    )
    v2 = client.get(f"{AGREEMENTS}/{agreement_id}/document", params={"version": 2}).content
    assert signed["signatureRepresentation"] == "sha256:" + hashlib.sha256(v2).hexdigest()
    post(
        client,
        f"{AGREEMENTS}/{agreement_id}/signature",
        {"signerName": "Sam Seller", "signerEmail": "sam@operator.example", "role": "provider"},
    )
    twice = client.post(
        f"{AGREEMENTS}/{agreement_id}/signature",
        json={"signerName": "Sam", "signerEmail": "sam@operator.example", "role": "provider"},
    )
    assert twice.status_code == 409
    assert client.get(f"{AGREEMENTS}/{agreement_id}").json()["status"] == "signed"
    check = client.get(f"{AGREEMENTS}/{agreement_id}/verify").json()
    assert check["valid"] is True and check["currentVersionSigned"] is True

    # tamper: change one character of the signed version-2 bytes in the database (even recomputing the
    # stored hash column does not help: the signature holds the hash of what was signed)
    tampered = v2.replace(b"60 days", b"30 days")
    with session_factory() as s:
        s.execute(
            update(AgreementDocument)
            .where(AgreementDocument.agreement_id == agreement_id, AgreementDocument.version == 2)
            .values(content=tampered, sha256=hashlib.sha256(tampered).hexdigest())
        )
        s.commit()
    check = client.get(f"{AGREEMENTS}/{agreement_id}/verify").json()
    assert check["valid"] is False and check["currentVersionSigned"] is False
    assert [(s["version"], s["role"], s["valid"]) for s in check["signatures"]] == [
        (1, "customer", True),
        (2, "customer", False),
        (2, "provider", False),
    ]
    assert check["signatures"][1]["sha256Now"] == hashlib.sha256(tampered).hexdigest()

    # the hub is there for listeners
    hub = client.post("/tmf-api/agreementManagement/v4/hub", json={"callback": "http://listener.example/cb"})
    assert hub.status_code == 201


def test_month_arithmetic_for_terms() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 25), 36) == date(2029, 11, 25)
    assert add_months(date(2026, 12, 1), 1) == date(2027, 1, 1)
