"""``turnup onboarding …``: onboard a customer from a YAML file, show and resume onboardings."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.table import Table

from turnup.cli.common import CLI_ACTOR, cli_session, console, err_console
from turnup.onboarding import services
from turnup.onboarding.orm import Onboarding
from turnup.onboarding.schemas import OnboardingCreate

app = typer.Typer(help="New customer onboarding.", no_args_is_help=True)


def _print(o: Onboarding) -> None:
    console.print(f"Onboarding [bold]{o.id}[/] state=[bold]{o.state}[/] customer={o.customer_id}")
    table = Table("#", "step", "state", "time", "outcome")
    for s in o.steps:
        table.add_row(str(s.seq), s.name, s.state, s.updated_at.isoformat(), s.outcome or "")
    console.print(table)


@app.command("start")
def start(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True)) -> None:
    """Onboard a customer described in FILE.yaml (customer, sites, primaryContact)."""
    from pydantic import ValidationError

    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
        data = OnboardingCreate.model_validate(document)
    except yaml.YAMLError as exc:
        err_console.print(f"[bold red]Error:[/] {file}: not valid YAML: {exc}")
        raise typer.Exit(1) from None
    except ValidationError as exc:
        for error in exc.errors():
            err_console.print(f"[bold red]Error:[/] {'.'.join(str(p) for p in error['loc'])}: {error['msg']}")
        raise typer.Exit(1) from None
    with cli_session() as session:
        _print(services.start_onboarding(session, data, CLI_ACTOR))


@app.command("show")
def show(onboarding_id: str) -> None:
    """Show an onboarding with each step, its time and outcome."""
    with cli_session() as session:
        _print(services.get_onboarding(session, onboarding_id))


@app.command("resume")
def resume(onboarding_id: str) -> None:
    """Continue an onboarding whose compliance case has been cleared."""
    with cli_session() as session:
        _print(services.resume_onboarding(session, onboarding_id, CLI_ACTOR))


@app.command("deliver-mail")
def deliver_mail() -> None:
    """Send due outbound mail now (failed sends are retried with backoff)."""
    with cli_session() as session:
        results = services.deliver_mail(session)
        for m in results:
            console.print(
                f"{m.id} to {m.to_address}: {m.status}" + (f" ({m.last_error})" if m.last_error else "")
            )
        console.print(f"{len(results)} message(s) processed")
