"""Agreements (TMF651) through the HTTP API: generated on acceptance, negotiated versions with redlines,
signatures over the exact bytes, and a verify check that detects tampering. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
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
from turnup.agreements.orm import AgreementDocument, AgreementSignature
from turnup.agreements.services import add_months

__all__ = ["dbos_cleanup"]


def _accepted_agreement(
    client: TestClient, factory: sessionmaker[Session], signer: dict[str, Any] | None = None
) -> str:
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
    accepted = post(client, f"{QUOTES}/{quote['id']}/accept", signer or SIGNER, 200)
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


def test_accept_and_signature_take_the_same_signer_shape_in_either_spelling(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    # Given a quote accepted with the flat spelling of the signature endpoint
    agreement_id = _accepted_agreement(
        client,
        session_factory,
        {"signerName": "Priya Natarajan", "signerEmail": "priya@brightwater-dental.example"},
    )
    agreement = client.get(f"{AGREEMENTS}/{agreement_id}").json()
    assert [(a["role"], a["signer"]) for a in agreement["agreementAuthorization"]] == [
        (
            "customer",
            {"name": "Priya Natarajan", "email": "priya@brightwater-dental.example", "organisation": None},
        )
    ]
    # When the provider signs with the preferred (nested) shape of quote acceptance
    signed = post(
        client,
        f"{AGREEMENTS}/{agreement_id}/signature",
        {
            "signer": {"name": "Sam Seller", "email": "sam@operator.example", "organisation": "Op"},
            "role": "provider",
        },
    )
    assert signed["signer"] == {"name": "Sam Seller", "email": "sam@operator.example", "organisation": "Op"}
    # Both spellings at once, or a signer without email, are 400s naming the field; nothing is signed
    both = client.post(
        f"{AGREEMENTS}/{agreement_id}/signature",
        json={"signer": {"name": "A", "email": "a@x.example"}, "signerName": "A", "role": "customer"},
    )
    assert both.status_code == 400 and "signer" in both.json()["message"]
    missing = client.post(
        f"{AGREEMENTS}/{agreement_id}/signature", json={"signerName": "A", "role": "customer", "version": 1}
    )
    assert missing.status_code == 400 and "signer.email" in missing.json()["message"]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(AgreementSignature)) == 2
    # The OpenAPI documents the preferred shape on both operations
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert "signer" in schemas["SignatureCreate"]["required"]
    assert "signer" in schemas["QuoteAccept"]["required"]


def test_a_redline_changing_the_notice_period_or_renewal_term_changes_the_structured_terms(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    agreement_id = _accepted_agreement(client, session_factory)
    before = client.get(f"{AGREEMENTS}/{agreement_id}").json()
    end = date.fromisoformat(before["agreementPeriod"]["endDateTime"])
    v1 = client.get(f"{AGREEMENTS}/{agreement_id}/document").content.decode()
    # When the negotiated text gives 60 days' notice
    post(
        client,
        f"{AGREEMENTS}/{agreement_id}/version",
        {"content": v1.replace("90 days' written notice", "60 days' written notice")},
    )
    # Then the structured terms say so, the notice date moves with them, the term stays
    after = client.get(f"{AGREEMENTS}/{agreement_id}").json()
    assert after["renewal"] == {
        "type": "automatic",
        "renewalTermMonths": 12,
        "noticePeriodDays": 60,
        "noticeDate": (end - timedelta(days=60)).isoformat(),
    }
    assert after["agreementPeriod"] == before["agreementPeriod"]
    # And a redline of the renewal term (notice clause unchanged) changes only the renewal term
    v2 = client.get(f"{AGREEMENTS}/{agreement_id}/document").content.decode()
    post(
        client,
        f"{AGREEMENTS}/{agreement_id}/version",
        {"content": v2.replace("successive terms of 12 months", "successive terms of 24 months")},
    )
    assert client.get(f"{AGREEMENTS}/{agreement_id}").json()["renewal"] == {
        "type": "automatic",
        "renewalTermMonths": 24,
        "noticePeriodDays": 60,
        "noticeDate": (end - timedelta(days=60)).isoformat(),
    }
    # A redline that leaves the clauses alone changes no term
    v3 = client.get(f"{AGREEMENTS}/{agreement_id}/document").content.decode()
    post(client, f"{AGREEMENTS}/{agreement_id}/version", {"content": v3 + "\nAnnex: site access hours.\n"})
    assert client.get(f"{AGREEMENTS}/{agreement_id}").json()["renewal"]["renewalTermMonths"] == 24


def test_month_arithmetic_for_terms() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 25), 36) == date(2029, 11, 25)
    assert add_months(date(2026, 12, 1), 1) == date(2027, 1, 1)
