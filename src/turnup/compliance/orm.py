"""Compliance cases (the review queue) and the loaded screening lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from turnup.kernel.db import Base, JSONDoc, UTCDateTime
from turnup.kernel.ids import new_id

HOLDING_STATES = ("open", "confirmed")


class ScreeningCase(Base):
    """One case per screened deal (``ref_type``/``ref_id``): open -> cleared | confirmed.

    ``fingerprint`` is the set of match keys the case was opened (or last reopened) for: a cleared case is
    reopened only when a screening finds a key outside it.
    """

    __tablename__ = "compliance_screening_case"
    __table_args__ = (
        UniqueConstraint("ref_type", "ref_id"),
        CheckConstraint("state IN ('open', 'cleared', 'confirmed')", name="state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    ref_type: Mapped[str] = mapped_column(String(40), index=True)
    ref_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    matches: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    fingerprint: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    reasons: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    list_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    screen_count: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_screened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resolution_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class ScreeningListVersion(Base):
    """A screening list loaded into the database; the newest one is in force."""

    __tablename__ = "compliance_screening_list"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    entry_count: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    loaded_by: Mapped[str] = mapped_column(String(200))
