"""``turnup fallout …``: the fallout queue from the command line."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import select

from turnup.cli.common import CLI_ACTOR, cli_session, console
from turnup.ordering import fallout as services
from turnup.ordering.orm import FalloutEntry

app = typer.Typer(help="Order steps that failed for good: retry, skip or abort them.", no_args_is_help=True)


@app.command("list")
def list_fallout(
    state: str = typer.Option("open", help="open | retried | skipped | aborted | all"),
    limit: int = typer.Option(50),
) -> None:
    """List fallout entries (open ones by default)."""
    with cli_session() as session:
        stmt = select(FalloutEntry).order_by(FalloutEntry.opened_at).limit(limit)
        if state != "all":
            stmt = stmt.where(FalloutEntry.state == state)
        table = Table("id", "order", "step", "state", "attempts", "error")
        for f in session.scalars(stmt):
            table.add_row(f.id, f.order_id, f.step, f.state, str(f.attempts), f.error[:80])
        console.print(table)


def _decide(action: str, fallout_id: str, reason: str | None) -> None:
    with cli_session() as session:
        entry = services.resolve(session, fallout_id, action, reason, CLI_ACTOR)
        console.print(f"Fallout {entry.id}: {entry.state}")


@app.command("retry")
def retry(fallout_id: str, reason: str | None = typer.Option(None)) -> None:
    """Run the failed step again."""
    _decide("retry", fallout_id, reason)


@app.command("skip")
def skip(fallout_id: str, reason: str = typer.Option(..., help="why the step may be skipped")) -> None:
    """Skip the failed step (the order ends partial)."""
    _decide("skip", fallout_id, reason)


@app.command("abort")
def abort(fallout_id: str, reason: str | None = typer.Option(None)) -> None:
    """Abort the order: undo what it activated; the order ends failed."""
    _decide("abort", fallout_id, reason)
