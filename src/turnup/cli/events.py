"""``turnup events …``: the outbox and its deliveries from the command line."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import select

from turnup.cli.common import CLI_ACTOR, cli_session, console
from turnup.kernel.delivery import redeliver as requeue
from turnup.kernel.hrefs import iso
from turnup.kernel.outbox import EventDelivery, HubSubscription, OutboxEvent

app = typer.Typer(help="Events (outbox), hub subscriptions and deliveries.", no_args_is_help=True)


@app.command("list")
def list_events(
    api: str | None = typer.Option(None, help="e.g. customerManagement"),
    event_type: str | None = typer.Option(None, "--type", help="e.g. CustomerCreateEvent"),
    limit: int = typer.Option(50),
) -> None:
    """List the most recent events, newest first."""
    with cli_session() as session:
        stmt = select(OutboxEvent).order_by(OutboxEvent.event_time.desc(), OutboxEvent.id).limit(limit)
        if api:
            stmt = stmt.where(OutboxEvent.api == api)
        if event_type:
            stmt = stmt.where(OutboxEvent.event_type == event_type)
        table = Table("eventId", "time", "api", "type", "resource")
        for e in session.scalars(stmt):
            table.add_row(
                e.id, iso(e.event_time) or "", e.api, e.event_type, f"{e.resource_type}/{e.resource_id}"
            )
        console.print(table)


@app.command("subscriptions")
def list_subscriptions(api: str | None = typer.Option(None)) -> None:
    """List hub subscriptions."""
    with cli_session() as session:
        stmt = select(HubSubscription).order_by(HubSubscription.created_at, HubSubscription.id)
        if api:
            stmt = stmt.where(HubSubscription.api == api)
        table = Table("id", "api", "callback", "query")
        for sub in session.scalars(stmt):
            table.add_row(sub.id, sub.api, sub.callback, sub.query or "")
        console.print(table)


@app.command("deliveries")
def list_deliveries(
    status: str | None = typer.Option(None, help="pending | delivered | failed"),
    subscription: str | None = typer.Option(None, help="hub subscription id"),
    limit: int = typer.Option(50),
) -> None:
    """List deliveries, most recent events first."""
    with cli_session() as session:
        stmt = (
            select(EventDelivery, OutboxEvent.event_type)
            .join(OutboxEvent, OutboxEvent.id == EventDelivery.event_id)
            .order_by(OutboxEvent.event_time.desc(), EventDelivery.id)
            .limit(limit)
        )
        if status:
            stmt = stmt.where(EventDelivery.status == status)
        if subscription:
            stmt = stmt.where(EventDelivery.subscription_id == subscription)
        table = Table(
            "deliveryId",
            "eventId",
            "type",
            "subscription",
            "status",
            "attempts",
            "next attempt",
            "last error",
        )
        for d, event_type in session.execute(stmt):
            table.add_row(
                d.id,
                d.event_id,
                event_type,
                d.subscription_id,
                d.status,
                str(d.attempts),
                iso(d.next_attempt_at) if d.status == "pending" else "",
                d.last_error or "",
            )
        console.print(table)


@app.command("redeliver")
def redeliver(delivery_id: str) -> None:
    """Requeue a failed (dead-lettered) delivery with a fresh retry budget."""
    with cli_session() as session:
        delivery = requeue(session, delivery_id, CLI_ACTOR)
        console.print(
            f"Delivery [bold]{delivery.id}[/] requeued (event {delivery.event_id}, "
            f"{delivery.attempts} attempts so far)"
        )
