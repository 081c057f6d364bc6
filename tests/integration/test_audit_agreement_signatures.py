"""Agreement signatures are tamper-evident with a key outside the database (SQLite and PostgreSQL): someone
who edits the signed bytes and recomputes every SHA-256 column is caught by the HMAC; migration 0011 seals the
signatures made before it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from turnup import accounts
from turnup.accounts.schemas import CustomerCreate
from turnup.agreements import QuoteTerms, SignatureCreate, Signer, generate_for_quote, sign, verify
from turnup.agreements.orm import AgreementDocument, AgreementSignature
from turnup.kernel import audit, migrate
from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.kernel.settings import get_settings


@pytest.fixture(autouse=True)
def signing_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_AUDIT_KEY", "agreement-test-key")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _signed_agreement(factory: sessionmaker[Session], quote: str = "q") -> str:
    with factory() as s:
        customer = accounts.create_customer(s, CustomerCreate(name="Acme"), "test")
        agreement = generate_for_quote(
            s,
            terms=QuoteTerms(
                quote_id=quote * 32,
                quote_version=1,
                term_months=24,
                customer_id=customer.id,
                customer_name="Acme",
                billing_account_id=None,
            ),
            lines=[],
            totals={"oneTime": "0.00", "recurring": "0.00", "usage": "0.00", "contractValue": "0.00"},
            currency="EUR",
            actor="test",
        )
        s.commit()
        sign(
            s,
            agreement.id,
            SignatureCreate(signer=Signer(name="Ada", email="ada@acme.example"), role="customer"),
            "user:ada",
        )
        return agreement.id


def _tamper_and_recompute(factory: sessionmaker[Session], agreement_id: str) -> str:
    """What an attacker with database access does: change the signed bytes, recompute both SHA-256 columns."""
    with factory() as s:
        doc = s.query(AgreementDocument).filter_by(agreement_id=agreement_id, version=1).one()
        forged = doc.content.replace(b"Acme", b"Acme Holdings", 1)
        assert forged != doc.content
        digest = hashlib.sha256(forged).hexdigest()
        s.execute(
            update(AgreementDocument)
            .where(AgreementDocument.id == doc.id)
            .values(content=forged, sha256=digest)
        )
        s.execute(
            update(AgreementSignature)
            .where(AgreementSignature.agreement_id == agreement_id)
            .values(sha256=digest)
        )
        s.commit()
        return digest


def test_a_signature_is_an_hmac_and_recomputing_sha256_after_an_edit_is_detected(
    session_factory: sessionmaker[Session],
) -> None:
    agreement_id = _signed_agreement(session_factory)
    with session_factory() as s:
        check = verify(s, agreement_id)
    assert check["valid"] is True and check["currentVersionSigned"] is True
    [sig] = check["signatures"]
    assert (sig["method"], sig["macValid"], sig["valid"]) == ("hmac-sha256", True, True)

    digest = _tamper_and_recompute(session_factory, agreement_id)

    with session_factory() as s:
        check = verify(s, agreement_id)
    [sig] = check["signatures"]
    # plain SHA-256 would now agree (that was the hole); the HMAC does not
    assert sig["sha256Signed"] == sig["sha256Now"] == digest
    assert (sig["macValid"], sig["valid"]) == (False, False)
    assert check["valid"] is False and check["currentVersionSigned"] is False


def test_an_edited_signer_is_detected(session_factory: sessionmaker[Session]) -> None:
    agreement_id = _signed_agreement(session_factory)
    with session_factory() as s:
        s.execute(
            update(AgreementSignature)
            .where(AgreementSignature.agreement_id == agreement_id)
            .values(signer_email="mallory@evil.example")
        )
        s.commit()
        assert verify(s, agreement_id)["signatures"][0]["valid"] is False


def test_the_key_lives_outside_the_database(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    agreement_id = _signed_agreement(session_factory)
    monkeypatch.setenv("TURNUP_AUDIT_KEY", "some-other-key")
    get_settings.cache_clear()
    with session_factory() as s:
        assert verify(s, agreement_id)["signatures"][0]["macValid"] is False


def test_an_unsealed_signature_is_not_valid(session_factory: sessionmaker[Session]) -> None:
    # stripping the HMAC does not fall back to plain SHA-256
    agreement_id = _signed_agreement(session_factory)
    with session_factory() as s:
        s.execute(update(AgreementSignature).values(mac=None))
        s.commit()
        [sig] = verify(s, agreement_id)["signatures"]
    assert (sig["method"], sig["valid"]) == ("unsealed", False)


def test_migration_0011_seals_intact_signatures_and_chains_old_audit_rows(db_url: str) -> None:
    # Given a database at head with a signed agreement, taken back to 0008 (no HMAC, no chain)
    migrate.upgrade(db_url, "head")
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    try:
        intact = _signed_agreement(factory)
        tampered = _signed_agreement(factory, "t")
        engine.dispose()
        migrate.downgrade(db_url, "0008")
        with engine.begin() as conn:  # tampered before the upgrade: stays invalid
            doc = sa.table(
                "agreement_document", sa.column("agreement_id"), sa.column("content", sa.LargeBinary)
            )
            content = conn.execute(
                sa.select(doc.c.content).where(doc.c.agreement_id == tampered)
            ).scalar_one()
            conn.execute(
                sa.update(doc).where(doc.c.agreement_id == tampered).values(content=bytes(content) + b"!")
            )
        # When it is upgraded again
        migrate.upgrade(db_url, "head")
        engine.dispose()
        # Then the intact signature verifies by HMAC, the tampered one does not, and the audit chain verifies
        with factory() as s:
            [good] = verify(s, intact)["signatures"]
            [bad] = verify(s, tampered)["signatures"]
            assert (good["method"], good["valid"]) == ("hmac-sha256", True)
            assert (bad["method"], bad["valid"]) == ("unsealed", False)
            report = audit.verify(s)
            assert report.ok and report.entries > 0, report.problems
    finally:
        engine.dispose()
