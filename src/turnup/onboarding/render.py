"""JSON for onboarding records (API ``turnupOnboarding`` v1)."""

from __future__ import annotations

from typing import Any

from turnup.kernel.hrefs import api_base, href, iso
from turnup.onboarding.orm import Onboarding

API = "turnupOnboarding"
BASE_PATH = api_base(API)


def render_onboarding(o: Onboarding) -> dict[str, Any]:
    return {
        "id": o.id,
        "href": href(API, "onboarding", o.id),
        "@type": "Onboarding",
        "state": o.state,
        "customer": (
            {
                "id": o.customer_id,
                "href": href("customerManagement", "customer", o.customer_id),
                "@referredType": "Customer",
            }
            if o.customer_id
            else None
        ),
        "primaryContactEmail": o.contact_email,
        "screeningCase": (
            {
                "id": o.screening_case_id,
                "href": href("turnupCompliance", "screeningCase", o.screening_case_id),
                "@referredType": "ScreeningCase",
            }
            if o.screening_case_id
            else None
        ),
        "portalUserId": o.portal_user_id,
        "step": [
            {
                "seq": s.seq,
                "name": s.name,
                "state": s.state,
                "time": iso(s.updated_at),
                "outcome": s.outcome,
                "details": s.details,
            }
            for s in o.steps
        ],
        "createdBy": o.created_by,
        "createdAt": iso(o.created_at),
        "lastUpdate": iso(o.updated_at),
    }
