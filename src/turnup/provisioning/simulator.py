"""The network simulator adapter: configurable latency and failure rate, and a persistent ledger of effects.

Configuration (environment): ``TURNUP_SIMULATOR_LATENCY_MS`` (default 0), ``TURNUP_SIMULATOR_FAILURE_RATE``
(0..1, default 0) and ``TURNUP_SIMULATOR_SEED`` (default 0). Whether a call fails is a pure function of
(seed, idempotency key, number of earlier failures for that key), so runs are reproducible.
Request parameters can force behaviour per catalog entry or test: ``simulateFailFirst: N`` refuses the
first N calls for a key; ``simulateMalformed: true`` answers something that is not a valid answer.

The ledger (``simulator_ledger``) lives in Turnup's database but is written in the simulator's own
transaction, as a real network element would: an effect applied here stays applied even if the calling
step then crashes, and a repeated call with the same key is answered from the ledger without a new effect.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel import clock
from turnup.provisioning.adapters import AdapterContext, AdapterError, AdapterRequest
from turnup.provisioning.orm import SimulatorLedgerEntry


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TURNUP_SIMULATOR_", extra="ignore")

    latency_ms: float = 0.0
    failure_rate: float = 0.0
    seed: int = 0


class SimulatedOutage(AdapterError):
    pass


def _draw(seed: int, key: str, failures: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}:{failures}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class NetworkSimulator:
    name = "network-simulator"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        latency_ms: float = 0.0,
        failure_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        self.sessions = sessions
        self.latency_ms = latency_ms
        self.failure_rate = failure_rate
        self.seed = seed

    # --- the adapter operations ---------------------------------------------------------------------------
    def activate(self, request: AdapterRequest) -> dict[str, Any]:
        return self._apply("activate", request)

    def modify(self, request: AdapterRequest) -> dict[str, Any]:
        return self._apply("modify", request)

    def suspend(self, request: AdapterRequest) -> dict[str, Any]:
        return self._apply("suspend", request)

    def resume(self, request: AdapterRequest) -> dict[str, Any]:
        return self._apply("resume", request)

    def deactivate(self, request: AdapterRequest) -> dict[str, Any]:
        return self._apply("deactivate", request)

    def status(self, request: AdapterRequest) -> dict[str, Any]:
        with self.sessions() as s:
            rows = (
                s.query(SimulatorLedgerEntry).filter_by(service_id=request.service_id, status="applied").all()
            )
            ops = sorted(rows, key=lambda r: r.applied_at or r.first_call_at)
            state = ops[-1].operation if ops else "absent"
        return {"status": "done", "networkRef": None, "lastOperation": state}

    # --- internals ----------------------------------------------------------------------------------------
    def _apply(self, operation: str, request: AdapterRequest) -> dict[str, Any]:
        latency = float(request.parameters.get("simulateLatencyMs", self.latency_ms))
        if latency > 0:
            time.sleep(latency / 1000.0)
        for _ in range(3):
            try:
                return self._apply_once(operation, request)
            except IntegrityError:
                continue  # a concurrent first call with the same key won the insert; read its row
        raise AdapterError(f"simulator: could not record {request.idempotency_key!r}")

    def _apply_once(self, operation: str, request: AdapterRequest) -> dict[str, Any]:
        key = request.idempotency_key
        with self.sessions() as s:
            row = s.get(SimulatorLedgerEntry, key, with_for_update=True)
            now = clock.now()
            if row is None:
                row = SimulatorLedgerEntry(
                    idempotency_key=key,
                    operation=operation,
                    service_id=request.service_id,
                    status="failing",
                    parameters=dict(request.parameters),
                    calls=0,
                    failures=0,
                    first_call_at=now,
                )
                s.add(row)
            if row.operation != operation or row.service_id != request.service_id:
                raise AdapterError(
                    f"simulator: idempotency key {key!r} was used for {row.operation} of "
                    f"service {row.service_id}, not {operation} of {request.service_id}"
                )
            row.calls += 1
            if row.status == "applied":
                result = dict(row.result or {})
                s.commit()
                return result
            fail_first = int(request.parameters.get("simulateFailFirst", 0))
            if row.failures < fail_first or (
                self.failure_rate > 0 and _draw(self.seed, key, row.failures) < self.failure_rate
            ):
                row.failures += 1
                failures = row.failures
                s.commit()
                raise SimulatedOutage(
                    f"simulator: network element unavailable ({operation} {key}, failure {failures})"
                )
            row.status = "applied"
            row.applied_at = now
            if request.parameters.get("simulateMalformed"):
                row.result = {"answer": "garbled"}
            else:
                row.result = {
                    "status": "done",
                    "networkRef": f"sim-{request.service_id[:12]}",
                    "operation": operation,
                }
            result = dict(row.result)
            s.commit()
            return result


def factory(context: AdapterContext) -> NetworkSimulator:
    """Entry point ``network-simulator`` (and stand-in for adapters not built yet, e.g.
    ``voice-platform``)."""
    settings = SimulatorSettings()
    return NetworkSimulator(
        context.sessions,
        latency_ms=settings.latency_ms,
        failure_rate=settings.failure_rate,
        seed=settings.seed,
    )
