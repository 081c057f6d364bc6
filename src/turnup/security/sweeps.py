"""Housekeeping sweep owned by security (registered with ``turnup.kernel.housekeeping`` on import)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from turnup.kernel import clock
from turnup.kernel.db import rowcount
from turnup.kernel.housekeeping import register
from turnup.kernel.settings import get_settings
from turnup.security.orm import LoginCounter


@register("login-counters")
def prune_login_counters(session: Session) -> dict[str, Any]:
    """Delete failed-login counters whose window has passed and that lock nothing (commits)."""
    now = clock.now()
    window = timedelta(seconds=get_settings().login_window_seconds)
    deleted = rowcount(
        session.execute(
            delete(LoginCounter).where(
                LoginCounter.window_start <= now - window,
                or_(LoginCounter.locked_until.is_(None), LoginCounter.locked_until <= now),
            )
        )
    )
    session.commit()
    return {"login_counters_pruned": deleted}
