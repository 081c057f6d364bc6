"""When a service may be billed for usage: usage's own record of the delivery events.

``usage.service_periods`` (``turnup.usage.consumers``) keeps, per service, every state change it was told of
(``usage_service_change``: from ``at`` on, the service is ``active``, ``inactive`` — suspended — or
``terminated``). A usage record at time *t* is billable when the latest change at or before *t* (ties: the
later event, by the order usage received them: ``position``) is ``active``. Otherwise it goes to the review
queue with the reason:

- ``beforeActivation``: no change at or before *t* (the service was not active yet, or usage has not been
  told of its activation yet);
- ``suspended``: the latest change is a suspension;
- ``afterTermination``: the latest change is the termination.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.usage.orm import UsageServiceChange

REASONS = {
    "beforeActivation": "the service was not active yet at the usage date (as far as usage has been told)",
    "suspended": "the service was suspended at the usage date",
    "afterTermination": "the service was terminated before the usage date",
    "noUsagePrice": "no usage price for this usage type",
    "forcedByOperator": "",
}
ACTIVITY_REASONS = ("beforeActivation", "suspended", "afterTermination")


class Timeline:
    """The state changes of some services, to ask what state each was in at a moment."""

    def __init__(self, changes: Iterable[tuple[str, datetime, int, str]]) -> None:
        self._by_service: dict[str, list[tuple[datetime, int, str]]] = {}
        for service_id, at, position, state in changes:
            self._by_service.setdefault(service_id, []).append((at, position, state))
        for rows in self._by_service.values():
            rows.sort()

    def reason_not_billable(self, service_id: str, at: datetime) -> str | None:
        """None when the service was active at ``at``, else the review reason."""
        rows = self._by_service.get(service_id, [])
        i = bisect_right([r[0] for r in rows], at)
        if i == 0:
            return "beforeActivation"
        state = rows[i - 1][2]
        if state == "active":
            return None
        return "afterTermination" if state == "terminated" else "suspended"


def timeline(session: Session, service_ids: Iterable[str]) -> Timeline:
    ids = sorted(set(service_ids))
    changes: list[tuple[str, datetime, int, str]] = []
    for i in range(0, len(ids), 500):
        changes.extend(
            (r.service_id, r.at, r.position, r.state)
            for r in session.execute(
                select(
                    UsageServiceChange.service_id,
                    UsageServiceChange.at,
                    UsageServiceChange.position,
                    UsageServiceChange.state,
                ).where(UsageServiceChange.service_id.in_(ids[i : i + 500]))
            )
        )
    return Timeline(changes)
