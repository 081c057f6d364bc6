"""``turnup housekeeping …``: run the expiry sweeps once by hand (the serve/orchestrator processes run them
every ``TURNUP_SWEEP_INTERVAL_SECONDS``)."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from turnup.cli.common import console
from turnup.kernel import housekeeping
from turnup.kernel.settings import get_settings

app = typer.Typer(
    help="Periodic housekeeping: release expired holds, expire quotes, end number aging.",
    no_args_is_help=True,
)


def _details(entry: dict[str, Any]) -> str:
    if entry["status"] == "failed":
        return str(entry["error"])
    if entry["status"] == "skipped":
        return str(entry["skipped"])
    parts = []
    for key, value in entry["result"].items():
        if isinstance(value, list | tuple):
            shown = ", ".join(str(v) for v in value[:5]) + (", …" if len(value) > 5 else "")
            parts.append(f"{key}={len(value)}" + (f" ({shown})" if value else ""))
        else:
            parts.append(f"{key}={value}")
    return "; ".join(parts)


@app.command("run")
def run() -> None:
    """Run every sweep once and show what each did; exit code 1 when any sweep failed."""
    from turnup.kernel.db import make_engine, make_sessionmaker

    engine = make_engine(get_settings().database_url)
    try:
        report = housekeeping.run_once(make_sessionmaker(engine))
    finally:
        engine.dispose()
    table = Table("sweep", "status", "details", "seconds")
    for name, entry in report.items():
        style = {"ok": "green", "skipped": "yellow", "failed": "bold red"}[entry["status"]]
        table.add_row(name, f"[{style}]{entry['status']}[/]", _details(entry), str(entry.get("seconds", "")))
    console.print(table)
    if housekeeping.failed(report):
        raise typer.Exit(1)
