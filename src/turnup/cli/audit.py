"""``turnup audit …``: search the audit trail, verify its hash chain, record an anchor."""

from __future__ import annotations

import json
from datetime import datetime

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from turnup.cli.common import cli_session, console, err_console
from turnup.kernel import audit
from turnup.kernel.hrefs import iso

app = typer.Typer(help="Audit trail: search, verify the hash chain, anchor.", no_args_is_help=True)


def _when(name: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        err_console.print(f"[bold red]Error:[/] {name}: {raw!r} is not an ISO 8601 date-time")
        raise typer.Exit(2) from None
    if value.tzinfo is None:
        err_console.print(f"[bold red]Error:[/] {name}: {raw!r} needs a timezone offset (e.g. Z)")
        raise typer.Exit(2)
    return value


@app.command("search")
def search(
    resource_type: str | None = typer.Option(None, "--resource-type", help="e.g. customer"),
    resource_id: str | None = typer.Option(None, "--resource-id"),
    actor: str | None = typer.Option(None, "--actor", help="e.g. user:admin"),
    since: str | None = typer.Option(None, "--since", help="ISO 8601 with offset, inclusive"),
    until: str | None = typer.Option(None, "--until", help="ISO 8601 with offset, exclusive"),
    limit: int = typer.Option(100, min=1, max=10_000, help="the newest N matches"),
    as_json: bool = typer.Option(False, "--json", help="JSON objects instead of a table"),
) -> None:
    """Audit entries matching every option given, oldest first (the newest --limit of them)."""
    since_at, until_at = _when("--since", since), _when("--until", until)
    with cli_session() as session:
        entries = audit.search(
            session,
            resource_type=resource_type,
            resource_id=resource_id,
            actor=actor,
            since=since_at,
            until=until_at,
            limit=limit,
        )
        if as_json:
            docs = [
                {
                    "id": e.id,
                    "seq": e.seq,
                    "at": iso(e.at),
                    "actor": e.actor,
                    "action": e.action,
                    "resourceType": e.resource_type,
                    "resourceId": e.resource_id,
                    "requestId": e.request_id,
                    "details": e.details,
                    "comment": e.comment,
                    "before": e.before,
                    "after": e.after,
                }
                for e in entries
            ]
            typer.echo(json.dumps(docs, indent=2, default=str))
            return
        table = Table("seq", "at", "actor", "action", "resource", "request", "comment", title="Audit entries")
        for column in table.columns:
            column.overflow = "fold"
        for e in entries:
            table.add_row(
                "" if e.seq is None else str(e.seq),
                iso(e.at) or "",
                e.actor,
                e.action,
                f"{e.resource_type}/{e.resource_id}",
                e.request_id or "",
                e.comment or "",
            )
        console.print(table)


@app.command("verify")
def verify(
    as_json: bool = typer.Option(False, "--json", help="the report as JSON"),
) -> None:
    """Walk the chain, recompute every hash, check the head and anchors. Exit 1 on any edit, insertion or
    deletion, naming the first broken seq."""
    with cli_session() as session:
        if as_json:
            report = audit.verify(session)
        else:
            with Progress(
                TextColumn("verifying"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task("verify", total=None)
                report = audit.verify(
                    session, progress=lambda done, total: bar.update(task, completed=done, total=total)
                )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "entries": report.entries,
                    "headSeq": report.head_seq,
                    "headHash": report.head_hash,
                    "anchors": report.anchors,
                    "keyConfigured": report.key_configured,
                    "firstBrokenSeq": report.first_broken_seq,
                    "pending": report.pending,
                    "problems": [
                        {"seq": p.seq, "kind": p.kind, "message": p.message} for p in report.problems
                    ],
                },
                indent=2,
            )
        )
    else:
        if not report.key_configured:
            err_console.print(
                "[yellow]Warning:[/] neither TURNUP_AUDIT_KEY nor TURNUP_SECRET_KEY is set: the head and "
                "anchor MACs use the published development key and prove nothing."
            )
        for p in report.problems:
            console.print(f"[red]✗[/] {p.kind}: {p.message}")
        if report.pending:
            console.print(f"[yellow]{len(report.pending)} entr(ies) being committed, not yet chained[/]")
        if report.ok:
            console.print(
                f"[green]✓ audit chain intact[/]: {report.entries} entries, head seq {report.head_seq} "
                f"({report.head_hash[:16]}…), {report.anchors} anchor(s) checked"
            )
        else:
            console.print(
                f"[bold red]audit chain BROKEN[/]: first broken seq {report.first_broken_seq}; "
                f"{len(report.problems)} problem(s)"
            )
    if not report.ok:
        raise typer.Exit(1)


@app.command("anchor")
def anchor(force: bool = typer.Option(False, help="anchor even if the newest anchor names the head")) -> None:
    """Record the chain's head as an anchor (HMAC with the key outside the database)."""
    with cli_session() as session:
        made = audit.anchor(session, force=force)
    if made is None:
        console.print("the newest anchor already names the head; nothing to do")
    else:
        console.print(f"anchored seq {made.seq} ({made.head_hash[:16]}…) at {iso(made.created_at)}")
