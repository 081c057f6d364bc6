"""``turnup usage …``: import usage files (TMF635 records as CSV or JSON) with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from turnup import usage
from turnup.cli.common import CLI_ACTOR, cli_session, console, err_console
from turnup.usage.files import kind_of, read_records

app = typer.Typer(help="Usage records (TMF635): import files, rated usage.", no_args_is_help=True)


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="a .csv or .json file"),
    chunk: int = typer.Option(5000, min=1, max=100_000, help="records per transaction"),
    report_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Import a usage file: CSV (header ``id,usageDate,usageType,quantity,serviceId[,description]``) or a
    JSON array of TMF635 records. Records are written ``--chunk`` at a time (one transaction each); running
    the same file again adds nothing (records are de-duplicated by id). Exit code 1 when lines were
    rejected (they are listed)."""
    kind = kind_of(None, file.name) if file.suffix.lower() != ".json" else "json"
    with cli_session() as session:
        records = list(read_records(file.read_text(encoding="utf-8-sig"), kind))
        total = usage.ImportReport()
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        with progress:
            task = progress.add_task(f"importing {file.name}", total=len(records))
            for start in range(0, len(records), chunk):
                part = records[start : start + chunk]
                parsed = [usage.parse_one(line, doc) for line, doc in part]
                total.add(usage.import_usage(session, parsed, source=f"file:{file.name}", actor=CLI_ACTOR))
                progress.advance(task, len(part))
    document = total.document()
    if report_json:
        console.print_json(json.dumps(document))
    else:
        table = Table("received", "accepted", "rated", "review", "duplicates", "rejected")
        table.add_row(
            *(
                str(document[k])
                for k in ("received", "accepted", "rated", "review", "duplicates", "rejectedCount")
            )
        )
        console.print(table)
        for bad in total.rejected[:100]:
            err_console.print(f"[red]line {bad.line}[/] ({bad.id or '-'}): {bad.field}: {bad.problem}")
        if len(total.rejected) > 100:
            err_console.print(f"… and {len(total.rejected) - 100} more rejected lines (use --json)")
    if total.rejected:
        raise typer.Exit(1)
