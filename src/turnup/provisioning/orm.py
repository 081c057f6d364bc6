"""The network simulator's ledger of effects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from turnup.kernel.db import Base, JSONDoc, UTCDateTime


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
