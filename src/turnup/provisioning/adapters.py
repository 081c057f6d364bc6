"""Provisioning adapter plugins.

An adapter is found by name among the entry points of group ``turnup.provisioning_adapters``; the entry
point is a factory ``(context: AdapterContext) -> ProvisioningAdapter``. Every operation gets an
idempotency key: calling twice with one key must have the effect once and give the same answer.
Answers are checked here (``check_result``): a malformed answer is an ``AdapterAnswerMalformed``, which
the workflow does not retry (it goes straight to the fallout queue).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

ENTRY_POINT_GROUP = "turnup.provisioning_adapters"
OPERATIONS = ("activate", "modify", "suspend", "resume", "deactivate", "status")


class AdapterError(Exception):
    """The adapter (or the network behind it) failed; worth retrying."""


class AdapterAnswerMalformed(AdapterError):
    """The adapter answered something Turnup cannot interpret; retrying will not help."""


class UnknownAdapter(LookupError):
    pass


@dataclass(frozen=True)
class AdapterRequest:
    idempotency_key: str
    service_id: str
    action: str  # the catalog's provisioning action, e.g. "activate-access"
    parameters: dict[str, Any] = field(default_factory=dict)
    order_id: str | None = None


@dataclass(frozen=True)
class AdapterResult:
    status: str  # done
    network_ref: str | None
    details: dict[str, Any]


@dataclass
class AdapterContext:
    """What a factory may use: Turnup's sessions (the simulator keeps its ledger there) and settings."""

    sessions: sessionmaker[Session]
    settings: dict[str, Any]


class ProvisioningAdapter(Protocol):
    name: str

    def activate(self, request: AdapterRequest) -> dict[str, Any]: ...
    def modify(self, request: AdapterRequest) -> dict[str, Any]: ...
    def suspend(self, request: AdapterRequest) -> dict[str, Any]: ...
    def resume(self, request: AdapterRequest) -> dict[str, Any]: ...
    def deactivate(self, request: AdapterRequest) -> dict[str, Any]: ...
    def status(self, request: AdapterRequest) -> dict[str, Any]: ...


def check_result(adapter: str, operation: str, raw: Any) -> AdapterResult:
    """Validate an adapter's raw answer: ``{"status": "done", "networkRef": str|None, ...}``."""
    if not isinstance(raw, dict):
        raise AdapterAnswerMalformed(
            f"adapter {adapter!r} {operation}: answer is not an object: {raw!r:.200}"
        )
    status = raw.get("status")
    if status != "done":
        raise AdapterAnswerMalformed(f"adapter {adapter!r} {operation}: unexpected status {status!r}")
    ref = raw.get("networkRef")
    if ref is not None and not isinstance(ref, str):
        raise AdapterAnswerMalformed(f"adapter {adapter!r} {operation}: networkRef must be a string")
    return AdapterResult(
        status=status,
        network_ref=ref,
        details={k: v for k, v in raw.items() if k not in ("status", "networkRef")},
    )


@lru_cache(maxsize=1)
def available_adapters() -> tuple[str, ...]:
    return tuple(sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)))


class AdapterRegistry:
    """Adapters by name, created once per registry from their entry points."""

    def __init__(self, context: AdapterContext) -> None:
        self.context = context
        self._adapters: dict[str, ProvisioningAdapter] = {}

    def get(self, name: str) -> ProvisioningAdapter:
        adapter = self._adapters.get(name)
        if adapter is None:
            matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
            if not matches:
                raise UnknownAdapter(
                    f"no provisioning adapter named {name!r} is installed "
                    f"(installed: {', '.join(available_adapters()) or 'none'})"
                )
            adapter = matches[0].load()(self.context)
            self._adapters[name] = adapter
        return adapter

    def call(self, name: str, operation: str, request: AdapterRequest) -> AdapterResult:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown adapter operation {operation!r}")
        raw = getattr(self.get(name), operation)(request)
        return check_result(name, operation, raw)


class AdapterTimeout(AdapterError):
    """The adapter did not answer within the step timeout: a failed attempt (retried, then fallout)."""


def step_timeout(parameters: dict[str, Any]) -> float:
    """Per-call timeout of an adapter call: the ``stepTimeoutSeconds`` parameter (from the catalog's
    provisioning entry), else ``TURNUP_STEP_TIMEOUT_SECONDS`` (default 30 s)."""
    value = parameters.get("stepTimeoutSeconds") or os.environ.get("TURNUP_STEP_TIMEOUT_SECONDS") or 30
    return max(float(value), 0.001)


def call_with_timeout(
    registry: AdapterRegistry, name: str, operation: str, request: AdapterRequest, timeout: float
) -> AdapterResult:
    """Call the adapter in a daemon thread and give up (``AdapterTimeout``) after ``timeout`` seconds.

    A call that hangs is abandoned (Python cannot stop a thread); if it completes later its effect is
    recorded by the adapter under the same idempotency key, so a retry gets that answer without a second
    effect. Whatever the adapter raised is raised here.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["result"] = registry.call(name, operation, request)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name=f"adapter-{request.idempotency_key}", daemon=True).start()
    if not done.wait(timeout):
        raise AdapterTimeout(f"adapter {name!r} {operation} did not answer within {timeout:g}s")
    if "error" in box:
        raise box["error"]
    result: AdapterResult = box["result"]
    return result
