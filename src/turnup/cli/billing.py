"""``turnup billing …``: billing accounts, bill runs, bills, tax rates and the charge export."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import select

from turnup.billing import billrun, services
from turnup.billing.orm import BillingAccount, CustomerBill
from turnup.billing.schemas import BillRunCreate, TaxRateSet
from turnup.cli.common import CLI_ACTOR, cli_session, console, validated

app = typer.Typer(
    help="Billing accounts, bill runs, customer bills and the charge export.", no_args_is_help=True
)


@app.command("accounts")
def list_accounts(limit: int = typer.Option(100)) -> None:
    """List billing accounts."""
    with cli_session() as session:
        table = Table("id", "name", "customer", "state", "currency", "cycle day", "terms (days)")
        for a in session.scalars(select(BillingAccount).order_by(BillingAccount.id).limit(limit)):
            table.add_row(
                a.id,
                a.name,
                a.customer_id,
                a.state,
                a.currency,
                str(a.bill_cycle_day),
                str(a.payment_terms_days),
            )
        console.print(table)


@app.command("run")
def run(
    cycle_day: int = typer.Option(..., "--cycle-day", help="bill cycle day (1-28)"),
    period: str = typer.Option(..., "--period", help="YYYY-MM"),
) -> None:
    """Bill every account of a bill cycle day for a period (re-runnable; never bills a charge twice)."""
    data = validated(BillRunCreate, billCycleDay=cycle_day, period=period)
    with cli_session() as session:
        result = billrun.run_bills(session, data, CLI_ACTOR)
        console.print(
            f"Bill run {result.run.id} ({period}, cycle day {cycle_day}, run {result.run.runs}): "
            f"{len(result.bills)} bills, {result.skipped} accounts skipped, {len(result.failed)} failed"
        )
        for account_id, message in result.failed:
            console.print(f"[red]{account_id}: {message}[/]")


@app.command("close")
def close(run_id: str) -> None:
    """Close a bill run's period: it cannot be run again."""
    with cli_session() as session:
        run = billrun.close_bill_run(session, run_id, CLI_ACTOR)
        console.print(f"Bill run {run.id} closed")


@app.command("bills")
def list_bills(account: str | None = typer.Option(None, "--account"), limit: int = typer.Option(100)) -> None:
    """List customer bills."""
    with cli_session() as session:
        stmt = select(CustomerBill).order_by(CustomerBill.period_start, CustomerBill.bill_no).limit(limit)
        if account:
            stmt = stmt.where(CustomerBill.billing_account_id == account)
        table = Table("id", "bill no", "account", "period", "excl. tax", "tax", "amount due")
        for b in session.scalars(stmt):
            table.add_row(
                b.id,
                b.bill_no,
                b.billing_account_id,
                f"{b.period_start:%Y-%m}",
                f"{Decimal(b.amount_excluding_tax):.2f}",
                f"{Decimal(b.tax_amount):.2f}",
                f"{b.currency} {Decimal(b.amount_due):.2f}",
            )
        console.print(table)


@app.command("tax-rate")
def tax_rate(country: str, rate: str, category: str = typer.Option("standard", "--category")) -> None:
    """Set the tax rate (e.g. 0.20) of a customer country and product tax category."""
    data = validated(TaxRateSet, country=country, taxCategory=category, rate=rate)
    with cli_session() as session:
        row = services.set_tax_rate(session, data, CLI_ACTOR)
        console.print(f"Tax rate {row.country}/{row.tax_category} = {Decimal(row.rate):.4f}")


@app.command("export")
def export(
    format: str = typer.Option("csv", "--format", help="csv | json"),
    since: str | None = typer.Option(None, "--since", help="ISO 8601 date-time with offset"),
    output: Path | None = typer.Option(None, "--output", "-o", help="file (default: standard output)"),
) -> None:
    """Export charges (appliedCustomerBillingRate) created since a moment."""
    with cli_session() as session:
        body = services.export_charges(session, format, services.parse_since(since))
    if output is None:
        typer.echo(body, nl=False)
    else:
        output.write_text(body)
        console.print(f"Wrote {output}")
