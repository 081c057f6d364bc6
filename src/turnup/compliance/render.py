"""TMF-style JSON for compliance resources (API ``turnupCompliance`` v1)."""

from __future__ import annotations

from typing import Any

from turnup.compliance.orm import HOLDING_STATES, ScreeningCase, ScreeningListVersion
from turnup.kernel.hrefs import api_base, href, iso

API = "turnupCompliance"
BASE_PATH = api_base(API)


def render_case(c: ScreeningCase) -> dict[str, Any]:
    return {
        "id": c.id,
        "href": href(API, "screeningCase", c.id),
        "@type": "ScreeningCase",
        "refType": c.ref_type,
        "refId": c.ref_id,
        "state": c.state,
        "onHold": c.state in HOLDING_STATES,
        "match": list(c.matches or []),
        "reason": list(c.reasons or []),
        "screeningListSha256": c.list_sha256,
        "screenCount": c.screen_count,
        "createdAt": iso(c.created_at),
        "lastUpdate": iso(c.updated_at),
        "lastScreenedAt": iso(c.last_screened_at),
        "resolvedAt": iso(c.resolved_at),
        "resolvedBy": c.resolved_by,
        "resolutionReason": c.resolution_reason,
    }


def render_list(v: ScreeningListVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "href": href(API, "screeningList", v.id),
        "@type": "ScreeningList",
        "name": v.name,
        "sha256": v.sha256,
        "entryCount": v.entry_count,
        "loadedAt": iso(v.loaded_at),
        "loadedBy": v.loaded_by,
    }
