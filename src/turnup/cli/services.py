"""``turnup services …``: list the service inventory and show one service."""

from __future__ import annotations

import json

import typer

from turnup import service_inventory
from turnup.cli.common import OutputFormat, cli_session, console, print_rows
from turnup.kernel.hrefs import iso

app = typer.Typer(help="Service inventory (TMF638): list, show.", no_args_is_help=True)


@app.command("list")
def list_services(
    state: str | None = typer.Option(None, help="designed | reserved | active | inactive | terminated"),
    customer: str | None = typer.Option(None, help="customer id"),
    offering: str | None = typer.Option(None, help="product offering id"),
    site: str | None = typer.Option(None, help="geographic site id"),
    limit: int = typer.Option(50, min=1, max=1000),
    offset: int = typer.Option(0, min=0),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o", help="table | json | csv"),
) -> None:
    """List services, newest first (ids are never cut, whatever the width)."""
    with cli_session() as session:
        rows = [
            [s.id, s.name, s.state, s.customer_id, s.site_id, s.offering_name, iso(s.activation_date)]
            for s in service_inventory.find_services(
                session,
                state=state,
                customer_id=customer,
                offering_id=offering,
                site_id=site,
                limit=limit,
                offset=offset,
            )
        ]
    print_rows(["id", "name", "state", "customer", "site", "offering", "activated"], rows, output)


@app.command("show")
def show(service_id: str, output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o")) -> None:
    """Show a service: state, place, characteristics and supporting resources (``--output json``: TMF638)."""
    with cli_session() as session:
        doc = service_inventory.render_service(service_inventory.get_service(session, service_id))
    if output is not OutputFormat.table:
        typer.echo(json.dumps(doc, indent=2))
        return
    console.print(f"service [bold]{doc['id']}[/] {doc['name']} is [bold]{doc['state']}[/]", soft_wrap=True)
    console.print(f"customer {doc['relatedParty'][0]['id']}, offering {doc['productOffering']['name']}")
    console.print(f"place {', '.join(p['id'] for p in doc['place']) or '-'}", soft_wrap=True)
    console.print(f"href {doc['href']}", soft_wrap=True)
    print_rows(
        ["characteristic", "value"],
        [[c["name"], json.dumps(c["value"])] for c in doc["serviceCharacteristic"]],
        OutputFormat.table,
        title="Characteristics",
    )
    print_rows(
        ["resource", "type", "details"],
        [
            [
                r.get("id", ""),
                r.get("resourceType", ""),
                json.dumps({k: v for k, v in r.items() if k not in ("id", "resourceType")}),
            ]
            for r in doc["supportingResource"]
        ],
        OutputFormat.table,
        title="Supporting resources",
    )
