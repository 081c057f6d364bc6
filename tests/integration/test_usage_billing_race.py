"""Two bill runs marking the same usage at once: one bills it, the other gets a Conflict and marks nothing
(``usage.mark_billed`` is conditional on ``status = 'rated'``). Both databases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_usage_api import IMPORT, at, make_service, record
from tests.e2e.test_usage_api import voice as voice  # the fixture
from turnup import usage
from turnup.kernel.errors import Conflict
from turnup.usage.orm import UsageRecord

MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


def test_two_bill_runs_at_once_bill_a_record_once(
    client: TestClient, session_factory: sessionmaker[Session], voice: dict[str, str]
) -> None:
    service = make_service(session_factory, voice["customer"], voice["offering"])
    assert client.post(IMPORT, json=[record("race-1", service, at(12), 10)]).status_code == 200
    outcome: dict[str, str] = {}

    def second_run() -> None:
        with session_factory() as s:
            ids = [u.id for u in usage.unbilled_rated_usage(s, *MARCH)] or ["race-1"]
            try:
                usage.mark_billed(s, ids, "bill-B")
                s.commit()
                outcome["B"] = "billed"
            except Conflict as exc:
                s.rollback()
                outcome["B"] = exc.message

    # given the first bill run has marked the record but not committed yet
    with session_factory() as first:
        assert usage.mark_billed(first, ["race-1"], "bill-A") == 1
        first.flush()
        # when a second run marks it meanwhile (it waits for the first, or runs after it)
        other = threading.Thread(target=second_run)
        other.start()
        first.commit()
    other.join(60)
    assert not other.is_alive()
    # then it is billed once, on the first run's bill; the second got a Conflict
    assert "bill-A" in outcome["B"] or "another bill run" in outcome["B"], outcome
    with session_factory() as s:
        assert s.execute(select(UsageRecord.status, UsageRecord.bill_ref)).all() == [("billed", "bill-A")]
