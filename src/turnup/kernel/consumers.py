"""Durable in-process event consumers: how one feature reacts to another's events.

A feature declares a consumer of named events::

    @consumer("billing.charges", events=["ServiceStateChangeEvent"])
    def start_charge(session: Session, event: Event) -> None: ...

``turnup.kernel.outbox.publish`` (already inside the changing transaction) writes one ``consumer_inbox``
row for every registered consumer interested in the event type: what that consumer owes. A worker
(``ConsumerWorker``) then runs each handler inside a transaction that also marks its row ``done``, so an
(event, consumer) pair is applied exactly once whatever happens to the worker: a killed worker's
transaction rolls back and the row is still ``pending`` for the next one.

Handlers receive the worker's session: they read and write through it, may ``publish`` further events,
and never commit. They run in ``turnup serve`` and in every ``turnup orchestrator run`` worker; the
composition root (``turnup.wiring.wire``) imports every feature's consumers before any of that starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Event:
    """One published event as a consumer sees it."""

    id: str
    api: str
    event_type: str
    event_time: datetime
    resource_type: str
    resource_id: str
    payload: dict[str, Any]

    @property
    def resource(self) -> dict[str, Any]:
        """The resource as it was rendered when the event was published."""
        body = self.payload.get("event") or {}
        value = body.get(self.resource_type) if isinstance(body, dict) else None
        return value if isinstance(value, dict) else {}


Handler = Callable[[Session, Event], None]


@dataclass(frozen=True)
class Consumer:
    name: str
    events: frozenset[str]
    handler: Handler
    max_attempts: int = 5
    description: str = field(default="")


_REGISTRY: dict[str, Consumer] = {}
_BY_EVENT: dict[str, tuple[str, ...]] = {}


def consumer(
    name: str, *, events: Iterable[str], max_attempts: int = 5
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the consumer ``name`` of ``events`` (event type names, e.g.
    ``ServiceStateChangeEvent``). ``max_attempts`` failures park an event (it then blocks only this
    consumer for that resource until an operator retries or skips it)."""

    def add(handler: Handler) -> Handler:
        register(Consumer(name=name, events=frozenset(events), handler=handler, max_attempts=max_attempts,
                          description=(handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else ""))
        return handler

    return add


def register(spec: Consumer) -> None:
    """Add (or replace, for the same handler re-imported) a consumer."""
    if not spec.name or len(spec.name) > 100:
        raise ValueError("a consumer needs a name of 1-100 characters")
    if not spec.events:
        raise ValueError(f"consumer {spec.name!r} consumes no events")
    _REGISTRY[spec.name] = spec
    _rebuild()


def unregister(name: str) -> None:
    """Remove a consumer (tests and benchmarks register temporary ones)."""
    _REGISTRY.pop(name, None)
    _rebuild()


def _rebuild() -> None:
    by_event: dict[str, list[str]] = {}
    for spec in sorted(_REGISTRY.values(), key=lambda c: c.name):
        for event_type in spec.events:
            by_event.setdefault(event_type, []).append(spec.name)
    _BY_EVENT.clear()
    _BY_EVENT.update({k: tuple(v) for k, v in by_event.items()})


def interested(event_type: str) -> tuple[str, ...]:
    """Names of the registered consumers of ``event_type``."""
    return _BY_EVENT.get(event_type, ())


def registered() -> dict[str, Consumer]:
    return dict(_REGISTRY)


def get(name: str) -> Consumer | None:
    return _REGISTRY.get(name)


_wired: list[bool] = [False]


def mark_wired() -> None:
    """Called by the composition root once every feature's consumers are registered."""
    _wired[0] = True


def is_wired() -> bool:
    return _wired[0]
