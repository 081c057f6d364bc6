"""The simulator's ledger of effects, and the fallout queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from turnup.kernel.db import Base, JSONDoc, UTCDateTime
from turnup.kernel.ids import new_id


class SimulatorLedgerEntry(Base):
    """One effect the network simulator applied, keyed by the caller's idempotency key.

    ``calls`` counts every request made with the key (repeats are answered from this row without a new
    effect); ``failures`` counts the requests the simulator refused (simulated outages).
    """

    __tablename__ = "simulator_ledger"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(30))  # activate | modify | suspend | resume | deactivate
    service_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20))  # applied | failing
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_call_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class FalloutEntry(Base):
    """A workflow step that failed for good and waits for a person: retry, skip (with a reason) or abort."""

    __tablename__ = "fallout_entry"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(String(32), index=True)
    plan_item_id: Mapped[str] = mapped_column(String(32), index=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(100))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), index=True)  # open | retried | skipped | aborted
    resolution_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
