"""Audit rows that the PostgreSQL fast paths insert with their own SQL are chained like any other (SQLite
takes the general path: the same outcome), including the stock reservation statement that commits itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.inventory.physical import fastpath
from turnup.inventory.physical import reservations as R
from turnup.inventory.physical import services as S
from turnup.inventory.physical.schemas import LocationCreate, MovementCreate, ReservationCreate, SkuCreate
from turnup.kernel import audit, clock
from turnup.kernel.audit import AuditEntry


@pytest.fixture
def solo_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    monkeypatch.setattr(fastpath, "_filtered_seen_at", float("-inf"))
    calls: list[bool] = []
    real = fastpath._execute

    def wrapped(session: Session, params: dict[str, Any], *, solo: bool) -> Any:
        calls.append(solo)
        return real(session, params, solo=solo)

    monkeypatch.setattr(fastpath, "_execute", wrapped)
    return calls


def test_a_fast_path_reservation_is_chained_even_when_its_statement_commits_itself(
    engine: Engine, session_factory: sessionmaker[Session], solo_calls: list[bool]
) -> None:
    with session_factory() as s:
        S.create_sku(s, SkuCreate(code="CABLE", name="Cable"), "t")
        S.create_location(s, LocationCreate(code="WH1", name="WH1", locationType="warehouse"), "t")
        S.apply_movement(s, MovementCreate(kind="receipt", sku="CABLE", location="WH1", quantity=5), "t")
    one = [{"sku": "CABLE", "quantity": 1, "location": "WH1"}]
    expires = clock.now() + timedelta(hours=1)
    with session_factory() as s:  # the whole transaction: solo on PostgreSQL
        solo = R.create_reservation(s, ReservationCreate(lines=one, expiresAt=expires), "user:a")
    with session_factory() as s:  # inside a caller's transaction: not solo
        kept = R.create_reservation(
            s, ReservationCreate(lines=one, expiresAt=expires), "user:b", commit=False
        )
        s.commit()
    postgres = engine.dialect.name == "postgresql"
    assert solo_calls == ([True, False] if postgres else [])
    with session_factory() as s:
        rows = s.execute(
            select(AuditEntry.seq, AuditEntry.resource_id).where(AuditEntry.action == "stock.reserve")
        ).all()
        assert sorted((rid, seq is not None) for seq, rid in rows) == sorted(
            [(solo.id, True), (kept.id, True)]
        )
        report = audit.verify(s)
    assert report.ok and report.pending == [], report.problems
