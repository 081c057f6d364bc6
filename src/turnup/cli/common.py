"""Shared CLI plumbing: a database session from settings, readable errors, the in-process delivery worker."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from sqlalchemy.orm import Session

from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.kernel.errors import TurnupError
from turnup.kernel.settings import get_settings

# Output that is not a terminal (a pipe, a file, a test runner) is never cut to a width: ids must survive
# copying and scripts. COLUMNS applies to terminals only.
UNCUT_WIDTH = 10_000


class CliConsole(Console):
    """A Rich console that, when not writing to a terminal, lays tables out as wide as their content."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Rich fixes the width from COLUMNS when the console is made (at import); decide it per print instead
        self._width = kwargs.get("width")

    @property
    def size(self) -> ConsoleDimensions:
        dimensions = Console.size.fget(self)  # type: ignore[attr-defined]
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(UNCUT_WIDTH, dimensions.height)
        return dimensions  # type: ignore[no-any-return]

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = CliConsole()
err_console = CliConsole(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def print_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], output: OutputFormat, *, title: str | None = None
) -> None:
    """Rows as a Rich table (no column ever truncated: ids stay whole), JSON (a list of objects keyed by
    column) or CSV with a header line; JSON and CSV go to stdout as plain text."""
    if output is OutputFormat.json:
        typer.echo(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], indent=2, default=str))
        return
    if output is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        typer.echo(buffer.getvalue(), nl=False)
        return
    table = Table(*columns, title=title)
    for column in table.columns:
        column.overflow = "fold"  # on a narrow terminal a long value wraps, it is never cut with an ellipsis
    table.columns[0].no_wrap = True
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


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
