"""Agreement use cases: generate from an accepted quote, new versions, redlines, signatures, verification.

The signed thing is the exact stored bytes of one document version: a signature records SHA-256 of those
bytes and an HMAC (``signature_mac``, key from the settings, outside the database) over its own fields and
that SHA-256. ``verify`` recomputes both from what is stored now, so a change after signing is detected even
when whoever changed the rows also recomputed the SHA-256 columns: they cannot recompute the HMAC without the
key.
Signatures made before migration 0011 were sealed by it (an HMAC under the key configured at upgrade) when
they still matched their document; one left without an HMAC is reported as not valid (``unsealed``).
"""

from __future__ import annotations

import calendar
import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from turnup.agreements.orm import Agreement, AgreementDocument, AgreementSignature
from turnup.agreements.render import API, render_agreement, render_signature
from turnup.agreements.schemas import DocumentVersionCreate, SignatureCreate
from turnup.kernel import audit, clock, keys
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

TEMPLATES = Path(__file__).parent / "templates"
MEDIA_TYPE = "text/markdown; charset=utf-8"
PROVIDER = "Turnup operator"
RENEWAL_TERM_MONTHS = 12
NOTICE_PERIOD_DAYS = 90
_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


# The clauses of the template that carry structured terms; a redline that edits them changes the terms.
_NOTICE_CLAUSE = re.compile(r"at least (\d{1,4}) days' written notice")
_RENEWAL_CLAUSE = re.compile(r"renews automatically for successive terms of (\d{1,3}) months")
_NO_RENEWAL_CLAUSE = "The agreement ends at the end of the initial term."


def _apply_redlined_terms(agreement: Agreement, text: str) -> dict[str, Any]:
    """Keep the structured renewal terms in step with the negotiated text: the notice period and renewal
    term are read from the template's clauses (an edited clause wins; a clause the text no longer has leaves
    its term as it was). Returns the terms that changed, for the audit record."""
    changed: dict[str, Any] = {}
    notice = _NOTICE_CLAUSE.search(text)
    renewal = _RENEWAL_CLAUSE.search(text)
    if renewal is not None:
        if agreement.renewal != "automatic":
            agreement.renewal = changed["renewal"] = "automatic"
        if int(renewal.group(1)) != agreement.renewal_term_months:
            agreement.renewal_term_months = changed["renewalTermMonths"] = int(renewal.group(1))
    elif _NO_RENEWAL_CLAUSE in text and agreement.renewal != "none":
        agreement.renewal = changed["renewal"] = "none"
    if notice is not None and int(notice.group(1)) != agreement.notice_period_days:
        agreement.notice_period_days = changed["noticePeriodDays"] = int(notice.group(1))
        agreement.notice_date = agreement.end_date - timedelta(days=agreement.notice_period_days)
    return changed


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


SIGNATURE_PURPOSE = "turnup.agreement.signature"


def signature_message(
    *,
    agreement_id: str,
    signature_id: str,
    version: int,
    role: str,
    name: str,
    email: str,
    organisation: str | None,
    actor: str,
    signed_at: datetime,
    content_sha256: str,
) -> bytes:
    """The bytes a signature's HMAC covers (canonical JSON; migration 0011 builds the same bytes)."""
    document = {
        "agreementId": agreement_id,
        "signatureId": signature_id,
        "version": version,
        "role": role,
        "name": name,
        "email": email,
        "organisation": organisation,
        "actor": actor,
        "signedAt": signed_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "sha256": content_sha256,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _message_of(s: AgreementSignature, content_sha256: str) -> bytes:
    return signature_message(
        agreement_id=s.agreement_id,
        signature_id=s.id,
        version=s.version,
        role=s.signer_role,
        name=s.signer_name,
        email=s.signer_email,
        organisation=s.organisation,
        actor=s.actor,
        signed_at=s.signed_at,
        content_sha256=content_sha256,
    )


def signature_mac(s: AgreementSignature, content_sha256: str) -> str:
    return keys.mac(SIGNATURE_PURPOSE, _message_of(s, content_sha256))


def add_months(start: date, months: int) -> date:
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def get_agreement(session: Session, agreement_id: str, *, lock: bool = False) -> Agreement:
    agreement = session.get(Agreement, agreement_id, with_for_update=lock or None)
    if agreement is None:
        raise NotFound(f"agreement {agreement_id!r} not found")
    return agreement


def get_document(session: Session, agreement_id: str, version: int | None = None) -> AgreementDocument:
    agreement = get_agreement(session, agreement_id)
    wanted = agreement.current_version if version is None else version
    doc = session.scalar(
        select(AgreementDocument).where(
            AgreementDocument.agreement_id == agreement_id, AgreementDocument.version == wanted
        )
    )
    if doc is None:
        raise NotFound(f"version: agreement {agreement_id!r} has no version {wanted}")
    return doc


@dataclass(frozen=True)
class QuoteTerms:
    """What an agreement needs to know about the accepted quote and its customer."""

    quote_id: str
    quote_version: int
    term_months: int
    customer_id: str
    customer_name: str
    billing_account_id: str | None


def generate_for_quote(
    session: Session,
    *,
    terms: QuoteTerms,
    lines: list[dict[str, Any]],
    totals: dict[str, str],
    currency: str,
    actor: str,
) -> Agreement:
    """Create the agreement and its version 1 from the template (no commit: part of quote acceptance)."""
    now = clock.now()
    start = now.date()
    end = add_months(start, terms.term_months)
    number = f"AGR-{start:%Y%m%d}-{terms.quote_id[:8].upper()}"
    agreement = Agreement(
        id=new_id(),
        document_number=number,
        name=f"Service agreement for {terms.customer_name}",
        agreement_type="commercial",
        status="inProgress",
        customer_id=terms.customer_id,
        quote_id=terms.quote_id,
        current_version=1,
        term_months=terms.term_months,
        start_date=start,
        end_date=end,
        renewal="automatic",
        renewal_term_months=RENEWAL_TERM_MONTHS,
        notice_period_days=NOTICE_PERIOD_DAYS,
        notice_date=end - timedelta(days=NOTICE_PERIOD_DAYS),
        created_at=now,
        updated_at=now,
    )
    session.add(agreement)
    text = _env.get_template("agreement.md.j2").render(
        agreement=agreement,
        version=1,
        provider=PROVIDER,
        customer={"name": terms.customer_name, "billing_account_id": terms.billing_account_id},
        quote={"id": terms.quote_id, "version": terms.quote_version},
        lines=lines,
        totals=totals,
        currency=currency,
    )
    _store_version(session, agreement, 1, text.encode("utf-8"), "generated from the accepted quote", actor)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="agreement.create",
        resource_type="agreement",
        resource_id=agreement.id,
        details={"quoteId": terms.quote_id, "documentNumber": number},
    )
    session.expire(agreement, ["documents", "signatures"])
    publish(
        session,
        api=API,
        event_type="AgreementCreateEvent",
        resource_type="agreement",
        resource=render_agreement(agreement),
    )
    return agreement


def record_order(session: Session, agreement_id: str, order_id: str) -> None:
    """Note the product order created under the agreement (no commit: part of quote acceptance)."""
    get_agreement(session, agreement_id).order_id = order_id


def _store_version(
    session: Session, agreement: Agreement, version: int, content: bytes, note: str | None, actor: str
) -> AgreementDocument:
    doc = AgreementDocument(
        id=new_id(),
        agreement_id=agreement.id,
        version=version,
        media_type=MEDIA_TYPE,
        content=content,
        sha256=sha256(content),
        note=note,
        created_by=actor,
        created_at=clock.now(),
    )
    session.add(doc)
    return doc


def add_version(session: Session, agreement_id: str, data: DocumentVersionCreate, actor: str) -> Agreement:
    """A negotiated text becomes the next version; signatures on earlier versions no longer make it signed."""
    agreement = get_agreement(session, agreement_id, lock=True)
    current = get_document(session, agreement_id)
    content = data.content.encode("utf-8")
    if content == current.content:
        raise InvalidInput("content: identical to the current version; nothing to redline")
    version = agreement.current_version + 1
    _store_version(session, agreement, version, content, data.note, actor)
    old_status = agreement.status
    agreement.current_version = version
    agreement.status = "inProgress"
    agreement.updated_at = clock.now()
    changed_terms = _apply_redlined_terms(agreement, data.content)
    session.flush()
    session.expire(agreement, ["documents", "signatures"])
    audit.record(
        session,
        actor=actor,
        action="agreement.version",
        resource_type="agreement",
        resource_id=agreement.id,
        details={"version": version, "note": data.note, "terms": changed_terms},
    )
    document = render_agreement(agreement)
    publish(
        session,
        api=API,
        event_type="AgreementAttributeValueChangeEvent",
        resource_type="agreement",
        resource=document,
    )
    if old_status != agreement.status:
        publish(
            session,
            api=API,
            event_type="AgreementStateChangeEvent",
            resource_type="agreement",
            resource=document,
        )
    session.commit()
    return agreement


def redline(
    session: Session, agreement_id: str, from_version: int, to_version: int, fmt: str = "unified"
) -> str:
    """A readable diff between two versions: ``unified`` (text) or ``html`` (side-by-side table)."""
    old = get_document(session, agreement_id, from_version)
    new = get_document(session, agreement_id, to_version)
    a = old.content.decode("utf-8").splitlines(keepends=True)
    b = new.content.decode("utf-8").splitlines(keepends=True)
    if fmt == "unified":
        return "".join(
            difflib.unified_diff(a, b, fromfile=f"version {from_version}", tofile=f"version {to_version}")
        )
    if fmt == "html":
        return difflib.HtmlDiff(wrapcolumn=100).make_file(
            a, b, f"version {from_version}", f"version {to_version}"
        )
    raise InvalidInput(f"format: {fmt!r} is not one of unified, html")


def sign(
    session: Session, agreement_id: str, data: SignatureCreate, actor: str, *, commit: bool = True
) -> AgreementSignature:
    """Record a signature over the current version's exact bytes."""
    agreement = get_agreement(session, agreement_id, lock=True)
    version = data.version or agreement.current_version
    if version != agreement.current_version:
        raise Conflict(
            f"version: only the current version ({agreement.current_version}) can be signed, not {version}",
            reason="Superseded version",
        )
    doc = get_document(session, agreement_id, version)
    already = session.scalar(
        select(func.count())
        .select_from(AgreementSignature)
        .where(
            AgreementSignature.agreement_id == agreement_id,
            AgreementSignature.version == version,
            AgreementSignature.signer_role == data.role,
        )
    )
    if already:
        raise Conflict(
            f"role: version {version} already has a {data.role} signature", reason="Already signed"
        )
    now = clock.now()
    signature = AgreementSignature(
        id=new_id(),
        agreement_id=agreement_id,
        version=version,
        signer_role=data.role,
        signer_name=data.signer.name,
        signer_email=data.signer.email,
        organisation=data.signer.organisation,
        actor=actor,
        signed_at=now,
        sha256=sha256(doc.content),
    )
    signature.mac = signature_mac(signature, signature.sha256)
    session.add(signature)
    old_status = agreement.status
    if data.role == "customer":
        agreement.status = "signed"
    agreement.updated_at = now
    session.flush()
    session.expire(agreement, ["documents", "signatures"])
    audit.record(
        session,
        actor=actor,
        action="agreement.sign",
        resource_type="agreement",
        resource_id=agreement_id,
        details={**render_signature(signature)},
    )
    document = render_agreement(agreement)
    publish(
        session,
        api=API,
        event_type="AgreementAttributeValueChangeEvent",
        resource_type="agreement",
        resource=document,
    )
    if old_status != agreement.status:
        publish(
            session,
            api=API,
            event_type="AgreementStateChangeEvent",
            resource_type="agreement",
            resource=document,
        )
    if commit:
        session.commit()
    return signature


def verify(session: Session, agreement_id: str) -> dict[str, Any]:
    """Recompute every signed version's SHA-256 from the stored bytes and compare with each signature, and
    check each signature's HMAC (key outside the database) over its fields and that SHA-256."""
    agreement = get_agreement(session, agreement_id)
    docs = {
        d.version: d
        for d in session.scalars(
            select(AgreementDocument)
            .where(AgreementDocument.agreement_id == agreement_id)
            .execution_options(populate_existing=True)
        )
    }
    results = []
    for s in session.scalars(
        select(AgreementSignature)
        .where(AgreementSignature.agreement_id == agreement_id)
        .order_by(AgreementSignature.signed_at, AgreementSignature.id)
    ):
        doc = docs.get(s.version)
        actual = sha256(doc.content) if doc is not None else None
        stored_ok = doc is not None and doc.sha256 == s.sha256
        # the HMAC over the signature's fields and the SHA-256 of the bytes stored *now*
        mac_ok = actual is not None and keys.mac_ok(SIGNATURE_PURPOSE, _message_of(s, actual), s.mac)
        results.append(
            {
                "signatureId": s.id,
                "version": s.version,
                "role": s.signer_role,
                "signer": s.signer_email,
                "signedAt": s.signed_at.isoformat(),
                "sha256Signed": s.sha256,
                "sha256Now": actual,
                "method": "hmac-sha256" if s.mac is not None else "unsealed",
                "macValid": mac_ok,
                "valid": actual == s.sha256 and stored_ok and mac_ok,
                "current": s.version == agreement.current_version,
            }
        )
    current_signed = any(r["valid"] and r["current"] and r["role"] == "customer" for r in results)
    return {
        "agreementId": agreement_id,
        "currentVersion": agreement.current_version,
        "valid": bool(results) and all(r["valid"] for r in results),
        "currentVersionSigned": current_signed,
        "signatures": results,
    }
