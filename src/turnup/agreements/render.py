"""TMF651 agreement documents."""

from __future__ import annotations

from typing import Any

from turnup.agreements.orm import Agreement, AgreementDocument, AgreementSignature
from turnup.kernel.hrefs import href, iso

API = "agreementManagement"


def render_signature(s: AgreementSignature) -> dict[str, Any]:
    return {
        "id": s.id,
        "@type": "AgreementAuthorization",
        "state": "signed",
        "date": iso(s.signed_at),
        "signatureRepresentation": f"sha256:{s.sha256}",
        "version": s.version,
        "role": s.signer_role,
        "signer": {"name": s.signer_name, "email": s.signer_email, "organisation": s.organisation},
        "actor": s.actor,
    }


def render_document(d: AgreementDocument) -> dict[str, Any]:
    return {
        "version": d.version,
        "mediaType": d.media_type,
        "sha256": d.sha256,
        "size": len(d.content),
        "note": d.note,
        "createdBy": d.created_by,
        "createdAt": iso(d.created_at),
        "href": f"{href(API, 'agreement', d.agreement_id)}/document?version={d.version}",
    }


def render_agreement(a: Agreement) -> dict[str, Any]:
    return {
        "id": a.id,
        "href": href(API, "agreement", a.id),
        "@type": "Agreement",
        "name": a.name,
        "agreementType": a.agreement_type,
        "documentNumber": a.document_number,
        "status": a.status,
        "version": str(a.current_version),
        "initialDate": iso(a.created_at),
        "agreementPeriod": {"startDateTime": a.start_date.isoformat(), "endDateTime": a.end_date.isoformat()},
        "termMonths": a.term_months,
        "renewal": {
            "type": a.renewal,
            "renewalTermMonths": a.renewal_term_months,
            "noticePeriodDays": a.notice_period_days,
            "noticeDate": a.notice_date.isoformat(),
        },
        "engagedParty": [{"id": a.customer_id, "role": "customer", "@referredType": "Customer"}],
        "quote": {"id": a.quote_id, "@referredType": "Quote"} if a.quote_id else None,
        "productOrder": {"id": a.order_id, "@referredType": "ProductOrder"} if a.order_id else None,
        "document": [render_document(d) for d in a.documents],
        "agreementAuthorization": [render_signature(s) for s in a.signatures],
        "lastUpdate": iso(a.updated_at),
    }
