"""Shared CLI plumbing: a database session from settings, readable errors, the in-process delivery worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from sqlalchemy.orm import Session

from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.kernel.errors import TurnupError
from turnup.kernel.settings import get_settings

console = Console()
err_console = Console(stderr=True)

CLI_ACTOR = "cli"


@contextmanager
def cli_session() -> Iterator[Session]:
    """A session on TURNUP_DATABASE_URL; domain errors become a red message and exit code 1."""
    engine = make_engine(get_settings().database_url)
    session = make_sessionmaker(engine)()
    try:
        yield session
    except TurnupError as exc:
        session.rollback()
        err_console.print(f"[bold red]Error ({exc.status} {exc.reason}):[/] {exc.message}")
        if isinstance(exc.details, list):
            for item in exc.details:
                err_console.print(f"  - {item}")
        raise typer.Exit(1) from None
    finally:
        session.close()
        engine.dispose()


M = TypeVar("M", bound=BaseModel)


def validated(schema: type[M], **values: Any) -> M:
    """Build an input schema from CLI options, printing every validation error readably."""
    try:
        return schema(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            err_console.print(f"[bold red]Error:[/] {field}: {error['msg']}")
        raise typer.Exit(1) from None


def start_delivery_worker(stop: threading.Event) -> threading.Thread:
    """Run the outbox delivery worker in a background thread of this process."""
    from turnup.kernel.delivery import DeliveryWorker

    settings = get_settings()
    worker = DeliveryWorker(make_sessionmaker(make_engine(settings.database_url)), settings)
    thread = threading.Thread(target=worker.run_forever, args=(stop,), name="outbox-delivery", daemon=True)
    thread.start()
    return thread
