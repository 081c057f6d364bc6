"""Housekeeping: run the expiry sweeps periodically, so expired holds are released without an operator.

Each registered sweep is a function ``(session) -> dict | dataclass | None`` that does its own commits.
``run_once`` runs every sweep in a fresh session of its own; a failing sweep is logged and reported, and
the others still run. ``Housekeeper.run_forever`` calls ``run_once`` every ``sweep_interval_seconds``
(``TURNUP_SWEEP_INTERVAL_SECONDS``; 0 disables it). ``turnup serve`` (with the in-process orchestrator) and
``turnup orchestrator run`` start one in a thread; ``turnup housekeeping run`` runs one pass by hand.

Several processes may run housekeeping against one database. On PostgreSQL each sweep first takes a
session-level ``pg_try_advisory_lock`` keyed on its name, on the very connection its session uses, so only
one process runs a given sweep at a time (the others report it ``skipped``). The sweeps are also safe to
run concurrently on their own (they lock the rows they change); the lock only avoids duplicated effort.
SQLite serialises writers (``BEGIN IMMEDIATE``), so no lock is taken there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel.settings import Settings, get_settings

log = structlog.get_logger(__name__)

ACTOR = "system:housekeeping"  # the actor sweeps record in the audit log
SKIPPED = "running elsewhere"

Sweep = Callable[[Session], Any]

# name -> sweep, run in this order by ``run_once``
SWEEPS: dict[str, Sweep] = {}


def register(name: str) -> Callable[[Sweep], Sweep]:
    """Add a sweep to the registry under ``name`` (the name also keys its PostgreSQL advisory lock)."""

    def add(fn: Sweep) -> Sweep:
        SWEEPS[name] = fn
        return fn

    return add


# The sweeps themselves belong to the features that own the rows they release (``quoting/sweeps.py``,
# ``inventory/physical/sweeps.py``, ``inventory/logical/sweeps.py``); each registers here when imported, and
# the composition root (``turnup.wiring.wire``) imports them. Kernel knows no feature.


# --- running ----------------------------------------------------------------------------------------------


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a sweep name (the same in every process and release)."""
    digest = hashlib.blake2b(f"turnup.housekeeping:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _normalise(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, dict):
        return dict(result)
    return {"result": result}


def _engine(factory: sessionmaker[Session]) -> Engine:
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("housekeeping needs a sessionmaker bound to an Engine")
    return bind


def _run_locked(engine: Engine, factory: sessionmaker[Session], name: str, sweep: Sweep) -> tuple[bool, Any]:
    """PostgreSQL: run ``sweep`` holding its advisory lock on the connection its session uses.

    The session is bound to one checked-out connection, so the lock and every transaction of the sweep share
    it, even though the sweep commits several times. Returns (False, None) when the lock is held elsewhere.
    """
    key = lock_key(name)
    conn = engine.connect()
    try:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one()
        conn.commit()  # a session-level lock: it outlives this transaction
        if not got:
            return False, None
        try:
            with factory(bind=conn) as session:
                return True, sweep(session)
        finally:
            try:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()
            except Exception:  # the lock dies with the connection: make sure it is not pooled
                log.exception("housekeeping_unlock_failed", sweep=name)
                conn.invalidate()
    finally:
        conn.close()


def run_once(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Run every registered sweep once, each in a fresh session.

    Returns ``{name: entry}`` in registry order, where ``entry`` is ``{"status": "ok", "result": {...},
    "seconds": s}``, ``{"status": "failed", "error": "Type: message"}`` or ``{"status": "skipped",
    "skipped": "running elsewhere"}`` (PostgreSQL only: another process holds that sweep's lock).
    """
    engine = _engine(factory)
    postgres = engine.dialect.name == "postgresql"
    report: dict[str, Any] = {}
    for name, sweep in list(SWEEPS.items()):
        started = time.monotonic()
        try:
            if postgres:
                ran, result = _run_locked(engine, factory, name, sweep)
            else:
                with factory() as session:
                    ran, result = True, sweep(session)
        except Exception as exc:
            log.exception("housekeeping_sweep_failed", sweep=name)
            report[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            continue
        if not ran:
            log.info("housekeeping_sweep_skipped", sweep=name, reason=SKIPPED)
            report[name] = {"status": "skipped", "skipped": SKIPPED}
            continue
        outcome = _normalise(result)
        report[name] = {"status": "ok", "result": outcome, "seconds": round(time.monotonic() - started, 3)}
        if any(outcome.values()):  # quiet when there was nothing to do (every minute, in every process)
            log.info("housekeeping_sweep_done", sweep=name, result=outcome)
    return report


def failed(report: dict[str, Any]) -> list[str]:
    """Names of the sweeps that failed in a ``run_once`` report."""
    return [name for name, entry in report.items() if entry.get("status") == "failed"]


class Housekeeper:
    """Calls ``run_once`` every ``interval`` seconds until stopped; an interval of 0 (or less) disables it."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings | None = None,
        *,
        interval: float | None = None,
    ) -> None:
        self.factory = factory
        self.interval = (
            interval if interval is not None else (settings or get_settings()).sweep_interval_seconds
        )

    def run_forever(self, stop: threading.Event) -> None:
        """Sweep at once, then every ``interval`` seconds; returns promptly once ``stop`` is set."""
        if self.interval <= 0:
            log.info("housekeeping_disabled")
            return
        log.info("housekeeping_started", interval=self.interval)
        try:
            while not stop.is_set():
                try:
                    run_once(self.factory)
                except Exception:  # database unreachable and the like: keep going, try again next time
                    log.exception("housekeeping_error")
                if stop.wait(self.interval):
                    break
        finally:
            log.info("housekeeping_stopped")


def start_housekeeper(stop: threading.Event, settings: Settings | None = None) -> threading.Thread | None:
    """Run a ``Housekeeper`` in a background thread of this process (None when the interval disables it)."""
    from turnup.kernel.db import make_engine, make_sessionmaker

    settings = settings or get_settings()
    if settings.sweep_interval_seconds <= 0:
        log.info("housekeeping_disabled")
        return None
    engine = make_engine(settings.database_url)
    keeper = Housekeeper(make_sessionmaker(engine), settings)

    def run() -> None:
        try:
            keeper.run_forever(stop)
        finally:
            engine.dispose()

    thread = threading.Thread(target=run, name="housekeeping", daemon=True)
    thread.start()
    return thread
