"""``turnup orders …``: list product orders and show one with its plan and the events it waits for."""

from __future__ import annotations

import json

import typer

from turnup import ordering
from turnup.cli.common import OutputFormat, cli_session, console, print_rows
from turnup.kernel.hrefs import iso
from turnup.ordering.render import render_order, render_plan_item

app = typer.Typer(
    help="Product orders (TMF622): list; show with plan and awaited events.", no_args_is_help=True
)

OUTPUT = typer.Option(OutputFormat.table, "--output", "-o", help="table | json | csv")


@app.command("list")
def list_orders(
    state: str | None = typer.Option(None, help="acknowledged | inProgress | held | completed | …"),
    customer: str | None = typer.Option(None, help="customer id"),
    offering: str | None = typer.Option(None, help="product offering id of any item"),
    limit: int = typer.Option(50, min=1, max=1000),
    offset: int = typer.Option(0, min=0),
    output: OutputFormat = OUTPUT,
) -> None:
    """List product orders, newest first (ids are never cut, whatever the width)."""
    with cli_session() as session:
        orders = ordering.find_orders(
            session, state=state, customer_id=customer, offering_id=offering, limit=limit, offset=offset
        )
        rows = []
        for order in orders:
            doc = render_order(order)
            rows.append(
                [
                    order.id,
                    order.state,
                    order.customer_id,
                    iso(order.order_date),
                    ", ".join(i.offering_name for i in order.items),
                    ", ".join(e["eventType"] for e in doc["awaitedEvent"]),
                ]
            )
    print_rows(["id", "state", "customer", "order date", "offerings", "awaiting"], rows, output)


@app.command("show")
def show(order_id: str, output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o")) -> None:
    """Show an order: items, plan (with each plan item's order item id) and the events it waits for
    (report one with ``POST /productOrder/{id}/event``). ``--output json`` prints the TMF622 document."""
    with cli_session() as session:
        order = ordering.get_order(session, order_id)
        doc = render_order(order)
        plan = [render_plan_item(p) for p in ordering.plan_items(session, order_id)]
    if output is not OutputFormat.table:
        typer.echo(json.dumps(doc | {"planItem": plan}, indent=2))
        return
    console.print(f"productOrder [bold]{doc['id']}[/] is [bold]{doc['state']}[/]", soft_wrap=True)
    console.print(f"customer {order.customer_id}, ordered {doc['orderDate']}", soft_wrap=True)
    console.print(f"href {doc['href']}", soft_wrap=True)
    print_rows(
        ["item", "action", "state", "quantity", "offering"],
        [
            [i["id"], i["action"], i["state"], i["quantity"], i["productOffering"]["name"]]
            for i in doc["productOrderItem"]
        ],
        OutputFormat.table,
        title="Items",
    )
    print_rows(
        ["plan item", "item", "kind", "action", "state", "service"],
        [
            [p["id"], p["productOrderItemId"], p["kind"], p["adapterAction"], p["state"], p["service"]["id"]]
            for p in plan
        ],
        OutputFormat.table,
        title="Plan",
    )
    if doc["awaitedEvent"]:
        print_rows(
            ["eventType", "planItemId", "state", "kind"],
            [[e["eventType"], e["planItemId"], e["state"], e["kind"]] for e in doc["awaitedEvent"]],
            OutputFormat.table,
            title="Awaited events",
        )
    else:
        console.print("Awaits no events")
