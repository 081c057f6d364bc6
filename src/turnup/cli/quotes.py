"""``turnup quotes …``: list, show, price, approve, reject, accept, cancel, sweep, import approval rules."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import select

from turnup import security
from turnup.catalog import ZERO, money_text
from turnup.cli.common import CLI_ACTOR, cli_session, console, validated
from turnup.quoting import approvals, services
from turnup.quoting.orm import Quote
from turnup.quoting.render import render_quote
from turnup.quoting.schemas import ApprovalDecisionIn, QuoteAccept, Signer

app = typer.Typer(help="Quotes: pricing, inventory holds, approvals, acceptance.", no_args_is_help=True)


@app.command("list")
def list_quotes(state: str | None = typer.Option(None), limit: int = typer.Option(50)) -> None:
    """List quotes (newest first)."""
    with cli_session() as session:
        stmt = select(Quote).order_by(Quote.created_at.desc(), Quote.id).limit(limit)
        if state:
            stmt = stmt.where(Quote.state == state)
        table = Table(
            "id", "state", "version", "customer", "recurring", "one-time", "valid until", "approval"
        )
        table.columns[0].no_wrap = True
        for q in session.scalars(stmt):
            table.add_row(
                q.id,
                q.state,
                str(q.version),
                q.customer_id,
                str(q.recurring_total or ""),
                str(q.one_time_total or ""),
                q.valid_until.isoformat(),
                q.approval_status or "",
            )
        console.print(table)


@app.command("show")
def show(quote_id: str) -> None:
    """Print a quote as TMF648 JSON (lines, prices, holds, approvals)."""
    with cli_session() as session:
        console.print_json(json.dumps(render_quote(services.get_quote(session, quote_id))))


@app.command("price")
def price(quote_id: str) -> None:
    """Price a quote and hold its resources until it expires."""
    with cli_session() as session:
        q = services.price_quote(session, quote_id, CLI_ACTOR)
        console.print(
            f"Quote {q.id} v{q.version} is [bold]{q.state}[/]: recurring {q.currency} "
            f"{money_text(q.recurring_total or ZERO)}, one-time {q.currency} "
            f"{money_text(q.one_time_total or ZERO)}"
        )


def _decide(quote_id: str, user: str, role: str | None, comment: str, decision: str) -> None:
    data = validated(ApprovalDecisionIn, quoteId=quote_id, role=role, decision=decision, comment=comment)
    with cli_session() as session:
        decider = security.find_principal(session, user)
        q = services.decide(session, data, decider.actor, decider.roles)
        console.print(f"Quote {q.id} is [bold]{q.state}[/] (approval {q.approval_status})")


AS_USER = typer.Option(..., "--as", help="the deciding user: their roles say which steps they may decide")
STEP_ROLE = typer.Option(None, help="the step meant (refused if another step is next)")


@app.command("approve")
def approve(
    quote_id: str,
    user: str = AS_USER,
    role: str | None = STEP_ROLE,
    comment: str = typer.Option(...),
) -> None:
    """Approve the quote's next approval step as a user bound to it."""
    _decide(quote_id, user, role, comment, "approved")


@app.command("reject")
def reject(
    quote_id: str,
    user: str = AS_USER,
    role: str | None = STEP_ROLE,
    comment: str = typer.Option(...),
) -> None:
    """Reject the quote at its next approval step (releases its holds) as a user bound to it."""
    _decide(quote_id, user, role, comment, "rejected")


@app.command("accept")
def accept(
    quote_id: str, signer_name: str = typer.Option(...), signer_email: str = typer.Option(...)
) -> None:
    """Accept a quote: convert holds, generate and sign the agreement, create the product order."""
    data = QuoteAccept(signer=validated(Signer, name=signer_name, email=signer_email))
    with cli_session() as session:
        q = services.accept_quote(session, quote_id, data, CLI_ACTOR)
        console.print(f"Quote {q.id} accepted: agreement {q.agreement_id}, product order {q.order_id}")


@app.command("cancel")
def cancel(quote_id: str, reason: str | None = typer.Option(None)) -> None:
    """Cancel a quote (releases its holds)."""
    with cli_session() as session:
        q = services.cancel_quote(session, quote_id, reason, CLI_ACTOR)
        console.print(f"Quote {q.id} is [bold]{q.state}[/]")


@app.command("sweep")
def sweep() -> None:
    """Cancel expired quotes and release their holds."""
    with cli_session() as session:
        result = services.sweep_expired(session, actor="cli:sweep")
        console.print(
            f"Expired {len(result.expired)} quote(s)"
            + (f": {', '.join(result.expired)}" if result.expired else "")
        )


@app.command("import-rules")
def import_rules(path: Path) -> None:
    """Import approval rules from a YAML file ``{rules: [...]}`` (upsert by name)."""
    with cli_session() as session:
        result = approvals.import_rules(session, path.read_text(encoding="utf-8"), CLI_ACTOR)
        console.print(f"Approval rules: {len(result['created'])} created, {len(result['updated'])} updated")
