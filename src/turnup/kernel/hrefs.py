"""Absolute hrefs for TMF resources."""

from __future__ import annotations

from datetime import date

from turnup.kernel.settings import get_settings

# TM Forum APIs are v4; Turnup's own APIs (no TMF spec) are v1.
API_VERSIONS = {
    "turnupApproval": "v1",
    "turnupAudit": "v1",
    "turnupCompliance": "v1",
    "turnupDelivery": "v1",
    "turnupEvents": "v1",
    "turnupOnboarding": "v1",
    "turnupOrchestration": "v1",
    "turnupRevenue": "v1",
    "turnupSecurity": "v1",
}


def api_base(api: str) -> str:
    """``/tmf-api/<api>/<version>``: the prefix of every path of one API."""
    return f"/tmf-api/{api}/{API_VERSIONS.get(api, 'v4')}"


def tmf_path(api: str, resource: str, resource_id: str | None = None) -> str:
    path = f"{api_base(api)}/{resource}"
    return f"{path}/{resource_id}" if resource_id else path


# The base URL the server recorded (``turnup.kernel.endpoint``), used by CLI processes that were not told
# their own; None in the server and wherever the settings say where the API is.
_server_url: str | None = None


def use_server_url(url: str | None) -> None:
    """Build hrefs from ``url`` (the running server's recorded base URL), or from the settings (None)."""
    global _server_url
    _server_url = url.rstrip("/") if url else None


def base_url() -> str:
    """Where the API is reached: ``TURNUP_PUBLIC_URL``, else the running server's recorded URL (CLI), else
    ``http://<TURNUP_HOST>:<TURNUP_PORT>``."""
    settings = get_settings()
    return (settings.public_url or _server_url or settings.base_url).rstrip("/")


def href(api: str, resource: str, resource_id: str) -> str:
    return base_url() + tmf_path(api, resource, resource_id)


def iso(value: date | None) -> str | None:
    """ISO 8601 with an explicit UTC offset ('Z'), or None (a ``datetime`` is a ``date``)."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")
