"""Idempotency keys: the stored first response of a POST sent with an ``Idempotency-Key`` header.

A row is claimed (``pending``) before the request runs, in a transaction of its own, so a concurrent request
with the same key finds it and is refused with 409 instead of running twice; the unique index on
(principal, key) decides a race between two claims. When the request has run, the row keeps its status,
headers and body (``done``) until ``expires_at`` (``TURNUP_IDEMPOTENCY_KEY_TTL_HOURS``); a server error
frees the key again. The housekeeping sweep ``idempotency`` (registered by ``turnup.wiring``) deletes
expired rows. The HTTP side is ``turnup.api.idempotency``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from turnup.kernel import clock
from turnup.kernel.db import Base, JSONDoc, UTCDateTime
from turnup.kernel.ids import new_id

PENDING, DONE = "pending", "done"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    principal: Mapped[str] = mapped_column(String(200))  # whose key: the authenticated user's id
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path, query and body
    state: Mapped[str] = mapped_column(String(10))  # pending | done
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    headers: Mapped[list[list[str]] | None] = mapped_column(JSONDoc, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: ``new`` (run the request, then ``finish``), ``replay`` (answer with the
    stored response), ``mismatch`` (the key was used with another request) or ``in_progress``."""

    outcome: str
    record_id: str | None = None
    status_code: int | None = None
    headers: list[list[str]] | None = None
    body: bytes | None = None


def claim(session: Session, principal: str, key: str, fingerprint: str, ttl: timedelta) -> Claim:
    """Find or claim ``key`` for ``principal``, kept for ``ttl`` once claimed (commits)."""
    now = clock.now()
    for _ in range(2):
        row = session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
            )
        )
        if row is not None and row.expires_at <= now:
            session.delete(row)  # expired (not swept yet): the key is free again
            session.flush()
            row = None
        if row is not None:
            session.rollback()
            if row.fingerprint != fingerprint:
                return Claim("mismatch")
            if row.state != DONE:
                return Claim("in_progress")
            return Claim("replay", row.id, row.status_code, row.headers, row.body)
        record = IdempotencyRecord(
            principal=principal,
            key=key,
            fingerprint=fingerprint,
            state=PENDING,
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(record)
        try:
            session.commit()
        except IntegrityError:  # claimed concurrently: read theirs
            session.rollback()
            continue
        return Claim("new", record.id)
    return Claim("in_progress")


def finish(session: Session, record_id: str, status_code: int, headers: list[list[str]], body: bytes) -> None:
    """Keep the response of the request that claimed the key (commits)."""
    row = session.get(IdempotencyRecord, record_id)
    if row is not None:
        row.state, row.status_code, row.headers, row.body = DONE, status_code, headers, body
    session.commit()


def release(session: Session, record_id: str) -> None:
    """Free a key whose request failed with a server error (commits)."""
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    session.commit()


def prune_expired(session: Session) -> dict[str, Any]:
    """Housekeeping: delete every key past its expiry (commits)."""
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= clock.now()))
    session.commit()
    return {"keys_expired": int(getattr(result, "rowcount", 0) or 0)}
