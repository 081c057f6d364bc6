"""Who may refuse a direct change to a service (TMF640) because an order is working on it.

Service inventory does not know orders: the ordering feature registers a guard (``turnup.wiring.wire``
imports it) answering "which unfinished order is this service the subject of?".
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

OpenOrderGuard = Callable[[Session, str], str | None]

_GUARDS: dict[str, OpenOrderGuard] = {}


def register_open_order_guard(name: str, guard: OpenOrderGuard) -> None:
    """Add (or replace) a guard: ``guard(session, service_id)`` returns the id of an unfinished order working
    on the service, or None."""
    _GUARDS[name] = guard


def open_order(session: Session, service_id: str) -> str | None:
    """The first unfinished order any registered guard reports for the service, or None."""
    for name in sorted(_GUARDS):
        found = _GUARDS[name](session, service_id)
        if found is not None:
            return found
    return None
