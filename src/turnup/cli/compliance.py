"""``turnup compliance …``: screen names, work the review queue, load screening lists, check exports."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import select

from turnup.cli.common import CLI_ACTOR, cli_session, console, err_console
from turnup.compliance import services
from turnup.compliance.orm import ScreeningCase
from turnup.kernel import clock

app = typer.Typer(help="Export compliance: screening, review queue, export rules.", no_args_is_help=True)


@app.command("screen")
def screen(
    name: str,
    country: str | None = typer.Option(None, "--country", help="ISO 3166 alpha-2"),
    threshold: float | None = typer.Option(None, help="override TURNUP_SCREENING_THRESHOLD"),
) -> None:
    """Screen one name against the list in force (writes nothing)."""
    with cli_session() as session:
        matches = services.screen_name(session, name, country.upper() if country else None, threshold)
        if not matches:
            console.print(f"No match for [bold]{name}[/]")
            return
        table = Table("entry", "listed name", "matched", "source", "score", "notes")
        for m in matches:
            table.add_row(
                m.entry_id, m.entry_name, m.matched_name, m.source, f"{m.score:g}", "; ".join(m.notes)
            )
        console.print(table)
        raise typer.Exit(2)  # a hit: useful in scripts


@app.command("cases")
def cases(state: str | None = typer.Option(None, help="open | cleared | confirmed")) -> None:
    """List compliance cases (the review queue)."""
    with cli_session() as session:
        stmt = select(ScreeningCase).order_by(ScreeningCase.created_at, ScreeningCase.id)
        if state:
            stmt = stmt.where(ScreeningCase.state == state)
        table = Table("id", "ref", "state", "matches", "updated")
        for c in session.scalars(stmt):
            table.add_row(
                c.id, f"{c.ref_type}/{c.ref_id}", c.state, str(len(c.matches or [])), c.updated_at.isoformat()
            )
        console.print(table)


def _print_case(case: ScreeningCase) -> None:
    console.print(f"Case [bold]{case.id}[/] for {case.ref_type}/{case.ref_id} is now [bold]{case.state}[/]")


@app.command("clear")
def clear(
    case_id: str, reason: str = typer.Option(..., "--reason", help="why this is a false positive")
) -> None:
    """Clear a case (false positive): the deal leaves compliance hold."""
    with cli_session() as session:
        _print_case(services.clear_case(session, case_id, reason, CLI_ACTOR))


@app.command("confirm")
def confirm(case_id: str, reason: str = typer.Option(..., "--reason")) -> None:
    """Confirm a case (true match): the deal stays on hold."""
    with cli_session() as session:
        _print_case(services.confirm_case(session, case_id, reason, CLI_ACTOR))


@app.command("load-list")
def load_list(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True)) -> None:
    """Load a screening list (CSL CSV layout) and re-screen every open deal."""
    try:
        content = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        err_console.print(f"[bold red]Error:[/] {file}: not UTF-8 text")
        raise typer.Exit(1) from None
    with cli_session() as session:
        version, result = services.load_list(session, content, file.name, CLI_ACTOR)
        console.print(
            f"Loaded {version.entry_count} entries (sha256 {version.sha256[:12]}…); "
            f"re-screened {result.screened} open deal(s), {len(result.held)} on hold"
        )
        for ref_type, ref_id, case_id in result.held:
            console.print(f"  on hold: {ref_type}/{ref_id} case {case_id}")


@app.command("check-export")
def check_export(
    country: str = typer.Option(..., "--country"),
    eccn: str | None = typer.Option(None),
    on: str | None = typer.Option(None, "--date", help="YYYY-MM-DD (default today)"),
) -> None:
    """Embargo and licence findings for an ECCN to a destination on a date."""
    try:
        on_date = date.fromisoformat(on) if on else clock.now().date()
    except ValueError:
        err_console.print(f"[bold red]Error:[/] --date: {on!r} is not YYYY-MM-DD")
        raise typer.Exit(1) from None
    with cli_session() as session:
        findings = services.check_export(
            session, eccn=eccn, destination_country=country.upper(), on_date=on_date
        )
        if not findings:
            console.print("No embargo or licence requirement found")
            return
        for f in findings:
            console.print(f.describe())
        raise typer.Exit(2)
