"""``turnup revenue …``: contracts and schedules, the month-end close, the waterfall, the GL export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import select

from turnup.cli.common import CLI_ACTOR, cli_session, console
from turnup.revenue import close_period, reports
from turnup.revenue.orm import RevenueContract


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from error


app = typer.Typer(
    help="Revenue recognition (ASC 606): schedules, close, waterfall, export.", no_args_is_help=True
)


@app.command("schedules")
def schedules(
    order: str | None = typer.Option(None, help="a product order id"),
    contract: str | None = typer.Option(None, help="a revenue contract id"),
) -> None:
    """The performance obligations of contracts and their schedules (by month)."""
    with cli_session() as session:
        stmt = select(RevenueContract).order_by(RevenueContract.created_at, RevenueContract.id)
        if order:
            stmt = stmt.where(RevenueContract.order_id == order)
        if contract:
            stmt = stmt.where(RevenueContract.id == contract)
        table = Table("contract", "obligation", "kind", "allocated", "state", "period", "amount", "status")
        for c in session.scalars(stmt):
            doc = reports.render_contract(session, c, detail=True)
            if c.status == "review":
                table.add_row(c.id, "-", "-", "-", f"review: {c.review_reason}", "", "", "")
            for o in doc["performanceObligation"]:
                label = f"{o['product']} ({o['productOrderItemId']})"
                if not o["schedule"]:
                    table.add_row(c.id, label, o["kind"], o["allocatedAmount"], o["state"], "", "", "")
                for line in o["schedule"]:
                    table.add_row(
                        c.id,
                        label,
                        o["kind"],
                        o["allocatedAmount"],
                        o["state"],
                        line["period"],
                        line["amount"],
                        line["status"],
                    )
        console.print(table)


@app.command("close")
def close(
    through: str = typer.Argument(..., help="post ratable periods ended by this date, YYYY-MM-DD"),
) -> None:
    """Month-end close: post the ended periods to the ledger."""
    with cli_session() as session:
        day = _date(through, "through")
        assert day is not None
        posted = close_period(session, day, CLI_ACTOR)
    console.print(f"Posted {posted} periods through {through}")


@app.command("waterfall")
def waterfall(
    start: str | None = typer.Option(None, "--from", help="YYYY-MM"),
    end: str | None = typer.Option(None, "--to", help="YYYY-MM"),
) -> None:
    """The deferred-revenue waterfall by month and obligation type."""
    with cli_session() as session:
        rows = reports.waterfall(session, start=start, end=end)
    table = Table("period", "kind", "recognised", "deferred", "total")
    for r in rows:
        table.add_row(r["period"], r["kind"], r["recognised"], r["deferred"], r["total"])
    console.print(table)


@app.command("export")
def export(
    output: Path = typer.Argument(..., help="file to write (.csv or .parquet)"),
    start: str | None = typer.Option(None, "--from", help="YYYY-MM-DD"),
    end: str | None = typer.Option(None, "--to", help="YYYY-MM-DD"),
) -> None:
    """Export the journal for a general ledger (CSV or Parquet, by the file's suffix)."""
    with cli_session() as session:
        rows = reports.gl_rows(
            session,
            start=_date(start, "--from"),
            end=_date(end, "--to"),
        )
    if output.suffix == ".parquet":
        output.write_bytes(reports.gl_parquet(rows))
    else:
        output.write_text(reports.gl_csv(rows))
    console.print(f"Wrote {len(rows)} journal lines to {output}")
