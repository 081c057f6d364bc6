"""Housekeeping sweep owned by physical inventory (registers with ``turnup.kernel.housekeeping`` on
import)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from turnup.inventory.physical import reservations
from turnup.kernel.housekeeping import ACTOR, register


@register("stock")
def sweep_stock(session: Session) -> Any:
    """Release expired stock holds (ledger ``release`` rows) and expire rack-space holds."""
    return reservations.sweep_expired(session, actor=ACTOR)
