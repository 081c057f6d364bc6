"""DBOS wired onto Turnup's database.

Where the system tables live:

- **SQLite**: in the same file as Turnup's data (DBOS's table names — ``workflow_status``,
  ``operation_outputs``, ``notifications``… — do not collide with Turnup's).
- **PostgreSQL**: in the same database, in a schema of their own: ``TURNUP_DBOS_SCHEMA`` if set, else
  ``<first search_path schema>_dbos`` when the URL pins a ``search_path`` (tests: one schema per test),
  else ``dbos``. Keeping them out of Turnup's schema keeps them out of Alembic's view.

Because the system tables are in the same database, an API request enqueues the order workflow
(``DBOSClient.enqueue_in_transaction``) and sends staff decisions to a waiting workflow
(``send_in_transaction``) **in the same transaction** as the rows it writes: an order is never stored
without its workflow, and a fallout decision is never recorded without reaching the workflow.

Features register their workflows and steps with DBOS by being imported (the composition root
``turnup.wiring.wire`` imports them); ``launch`` starts DBOS with whatever is registered and knows no
feature. Workers: every worker process launches DBOS with an ``executor_id`` and listens on the work
queue (``orders``). PostgreSQL hands each queued workflow to exactly one worker (``FOR UPDATE SKIP
LOCKED``). On start a worker recovers the workflows its executor id left PENDING (so a restarted worker
must keep its id);
``turnup orchestrator recover --executor-id X`` adopts those of a worker that is gone for good.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from turnup import __version__
from turnup.kernel.db import is_sqlite, make_engine, make_sessionmaker

APP_NAME = "turnup"
ORDER_QUEUE = "orders"  # the work queue every worker listens on (the name is kept for existing databases)
APP_VERSION = f"turnup-{__version__}"

_lock = threading.Lock()
_clients: dict[tuple[str, str | None], Any] = {}
_migrated: set[tuple[str, str | None]] = set()


class _Runtime:
    """What steps need in a worker process: Turnup's session factory and configuration."""

    url: str | None = None
    engine: Engine | None = None
    factory: sessionmaker[Session] | None = None
    launched: bool = False
    executor_id: str | None = None


runtime = _Runtime()


def dbos_schema(url: str) -> str | None:
    """The PostgreSQL schema holding DBOS's system tables for this Turnup database (None on SQLite)."""
    if is_sqlite(url):
        return None
    configured = os.environ.get("TURNUP_DBOS_SCHEMA")
    if configured:
        return configured
    options = make_url(url).query.get("options")
    if isinstance(options, tuple):
        options = " ".join(options)
    if options:
        for part in options.split():
            part = part.removeprefix("-c")
            if part.startswith("search_path="):
                first = part.split("=", 1)[1].split(",")[0].strip()
                if first and first != "public":
                    return f"{first}_dbos"
    return "dbos"


def system_url(url: str) -> str:
    """DBOS connects with its own engine; it accepts Turnup's URL as is (psycopg 3 driver)."""
    return url


def default_executor_id() -> str:
    return os.environ.get("TURNUP_EXECUTOR_ID") or f"turnup-{socket.gethostname()}"


def ensure_system_tables(url: str) -> None:
    """Create/migrate DBOS's system tables (idempotent; once per process and database)."""
    key = (url, dbos_schema(url))
    if key in _migrated:
        return
    with _lock:
        if key in _migrated:
            return
        from dbos import DBOS

        DBOS.migrate(system_url(url), schema=dbos_schema(url) or "dbos")
        _migrated.add(key)


def client_for(url: str) -> Any:
    """A DBOS client on this database (cached); creating it first makes sure the system tables exist.

    Call it *before* opening a write transaction on SQLite: creating the tables takes the write lock.
    """
    key = (url, dbos_schema(url))
    client = _clients.get(key)
    if client is not None:
        return client
    ensure_system_tables(url)
    with _lock:
        client = _clients.get(key)
        if client is None:
            from dbos import DBOSClient

            client = DBOSClient(
                system_database_url=system_url(url),
                dbos_system_schema=dbos_schema(url) or "dbos",
                application_name=APP_NAME,
                lazy=True,
                system_database_pool_size=2,
            )
            _clients[key] = client
    return client


def session_url(session: Session) -> str:
    """The database URL (with its password) of the session's bind."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return engine.url.render_as_string(hide_password=False)


def prepare(session: Session) -> str:
    """Make sure the DBOS client (and system tables) exist before a use case starts writing.

    On SQLite every transaction takes the write lock (``BEGIN IMMEDIATE``), so a read-only transaction
    the request already opened (authentication) is ended first; it has nothing to lose.
    Returns the database URL of the session.
    """
    url = session_url(session)
    if (url, dbos_schema(url)) not in _clients:
        if session.in_transaction():
            if session.new or session.dirty or session.deleted:
                raise RuntimeError("prepare() must run before the use case writes anything")
            session.rollback()
        client_for(url)
    return url


def enqueue_in_transaction(
    session: Session, url: str, workflow_name: str, workflow_id: str, *args: Any
) -> str:
    """Enqueue the registered workflow ``workflow_name`` on the work queue, in the caller's transaction."""
    client_for(url).enqueue_in_transaction(
        session,
        {
            "workflow_name": workflow_name,
            "queue_name": ORDER_QUEUE,
            "workflow_id": workflow_id,
            "app_version": APP_VERSION,
        },
        *args,
    )
    return workflow_id


def send_in_transaction(
    session: Session, url: str, workflow_id: str, message: Any, topic: str, idempotency_key: str | None = None
) -> None:
    client_for(url).send_in_transaction(session, workflow_id, message, topic, idempotency_key)


def session() -> Session:
    """A Turnup session for a step (worker process only)."""
    if runtime.factory is None:
        raise RuntimeError("orchestrator not launched in this process")
    return runtime.factory()


@contextmanager
def step_session() -> Iterator[Session]:
    s = session()
    try:
        yield s
    finally:
        s.close()


def launch(
    url: str,
    *,
    executor_id: str | None = None,
    worker_concurrency: int = 8,
    polling_interval_sec: float = 0.05,
    log_level: str = "WARNING",
) -> None:
    """Start DBOS in this process on Turnup's database and listen on the work queue.

    The workflows run are those registered (imported) before this call: ``turnup.wiring.wire()``.
    """
    from dbos import DBOS

    if runtime.launched:
        raise RuntimeError("orchestrator already launched in this process")
    runtime.url = url
    runtime.engine = make_engine(url, **({} if is_sqlite(url) else {"pool_size": 10, "max_overflow": 10}))
    runtime.factory = make_sessionmaker(runtime.engine)
    runtime.executor_id = executor_id or default_executor_id()
    config: dict[str, Any] = {
        "name": APP_NAME,
        "system_database_url": system_url(url),
        "executor_id": runtime.executor_id,
        "application_version": APP_VERSION,
        "log_level": log_level,
        "notification_listener_polling_interval_sec": 0.05,
        "sys_db_pool_size": 10,
    }
    schema = dbos_schema(url)
    if schema:
        config["dbos_system_schema"] = schema
    DBOS(config=config)  # type: ignore[arg-type]
    DBOS.launch()
    DBOS.register_queue(
        ORDER_QUEUE,
        worker_concurrency=worker_concurrency,
        polling_interval_sec=polling_interval_sec,
        on_conflict="always_update",
    )
    runtime.launched = True
    _migrated.add((url, schema))


def shutdown() -> None:
    from dbos import DBOS

    DBOS.destroy(destroy_registry=False)
    if runtime.engine is not None:
        runtime.engine.dispose()
    runtime.url = runtime.engine = runtime.factory = runtime.executor_id = None
    runtime.launched = False


def recover_executor(executor_id: str) -> list[str]:
    """Adopt the PENDING workflows of another (dead) executor: they are re-enqueued for any worker."""
    from dbos import DBOS

    handles = DBOS._recover_pending_workflows([executor_id])
    return [h.get_workflow_id() for h in handles]
