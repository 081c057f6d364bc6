"""``turnup catalog …``: publish a YAML catalog file, list, show and retire catalog entities."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from turnup.catalog import get_offering_detail, list_offerings, load_catalog_file, publish_catalog, services
from turnup.cli.common import CLI_ACTOR, cli_session, console

app = typer.Typer(help="Product catalog (TMF620): publish, list, show, retire.", no_args_is_help=True)


@app.command("publish")
def publish(file: Path = typer.Argument(..., help="YAML catalog file")) -> None:
    """Validate the whole FILE, report every problem with its path, and publish it all or nothing."""
    with cli_session() as session:
        document = load_catalog_file(file)
        result = publish_catalog(session, document, CLI_ACTOR)
        console.print(f"Published [bold]{result.catalog or file.name}[/]: {result.summary()}")


@app.command("list")
def list_cmd(
    status: str | None = typer.Option(None, "--status", help="inDesign | active | retired"),
    search: str | None = typer.Option(None, help="text in name or description"),
    category: str | None = typer.Option(None, help="category id"),
    limit: int = typer.Option(50),
    offset: int = typer.Option(0),
) -> None:
    """List product offerings."""
    with cli_session() as session:
        page = list_offerings(
            session, lifecycle_status=status, search=search, category_id=category, limit=limit, offset=offset
        )
        table = Table("id", "name", "version", "status", "bundle", "channels")
        for o in page:
            table.add_row(
                o["id"],
                o["name"],
                o["version"],
                o["lifecycleStatus"],
                "yes" if o["isBundle"] else "",
                ", ".join(c["id"] for c in o["channel"]),
            )
        console.print(table)
        console.print(f"{len(page)} of {page.total} offerings")


@app.command("show")
def show(resource_id: str) -> None:
    """Show an offering (with specifications, delivery requirements and prices) or any catalog entity."""
    with cli_session() as session:
        for kind in (services.SPECIFICATION, services.PRICE, services.CATEGORY):
            obj = session.get(kind.model, resource_id)
            if obj is not None:
                document = kind.render(obj)
                break
        else:
            document = get_offering_detail(session, resource_id)
        console.print_json(json.dumps(document))


@app.command("retire")
def retire(resource_id: str, reason: str | None = typer.Option(None, help="statusReason")) -> None:
    """Retire an offering, specification, price or category (final; it stays readable by id)."""
    with cli_session() as session:
        kind, obj = services.retire(session, resource_id, CLI_ACTOR, reason)
        console.print(f"{kind.label} [bold]{obj.name}[/] version {obj.version} is now retired")
