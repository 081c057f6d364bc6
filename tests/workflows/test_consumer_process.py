"""``turnup orchestrator run`` runs the event consumers in a child process that handles events and goes away
with its parent, also after kill -9 (no orphaned consumers)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel.consumers import ConsumerInbox
from turnup.orchestration import runtime
from turnup.orchestration.testing import WorkerProcess, wait_until


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    state = Path(f"/proc/{pid}/stat")
    return state.exists() and state.read_text().split()[2] != "Z"


def test_the_consumer_child_handles_events_and_dies_with_a_killed_worker(
    db_url: str,
    engine: object,
    dbos_schema_cleanup: None,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("worker processes run on PostgreSQL here (SQLite's single-process path is in-process)")
    runtime.ensure_system_tables(db_url)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(db_url, "consumer-child-w1", log_path=str(log)).start()
    try:
        wait_until(
            lambda: log.exists() and "running" in log.read_text(errors="replace"), 60, message="worker"
        )
        assert worker.proc is not None
        wait_until(lambda: len(_children(worker.proc.pid)) >= 1, 30, message="consumer child")
        [child] = _children(worker.proc.pid)
        # given an event the product inventory consumes: the child handles it
        from turnup.kernel.outbox import publish

        with session_factory() as s, s.begin():
            publish(
                s,
                api="productOrderingManagement",
                event_type="ProductOrderCreateEvent",
                resource_type="productOrder",
                resource={"id": "no-such-order"},
            )

        def handled() -> bool:
            with session_factory() as s:
                return s.scalar(select(ConsumerInbox.status)) == "done"

        wait_until(handled, 30, message="event handled by the consumer child")
        with session_factory() as s:
            assert s.scalar(select(ConsumerInbox.handled_by)) == "consumer-child-w1-consumers"
        # when the worker is killed with SIGKILL, its consumer child exits by itself
        worker.kill()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        worker.stop()
