"""Housekeeping sweep owned by quoting (registered with ``turnup.kernel.housekeeping`` on import)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from turnup.kernel.housekeeping import ACTOR, register
from turnup.quoting import services


@register("quotes")
def sweep_quotes(session: Session) -> Any:
    """Cancel open quotes past their validity and release their stock and resource holds."""
    return services.sweep_expired(session, actor=ACTOR)
