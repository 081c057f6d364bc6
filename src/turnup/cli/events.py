"""``turnup events …``: the outbox, its hub deliveries and the durable consumers from the command line."""

from __future__ import annotations

import threading

import typer
from rich.table import Table
from sqlalchemy import select

from turnup.cli.common import CLI_ACTOR, cli_session, console
from turnup.kernel import clock, consumers
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


# --- durable consumers -----------------------------------------------------------------------------------


@app.command("consumers")
def list_consumers() -> None:
    """Each event consumer with its lag: pending (retrying), parked, oldest pending event."""
    with cli_session() as session:
        now = clock.now()
        table = Table("consumer", "events", "pending", "retrying", "parked", "lag (s)")
        for lag in consumers.lag(session):
            table.add_row(
                lag.name,
                ", ".join(lag.events),
                str(lag.pending),
                str(lag.retrying),
                str(lag.parked),
                f"{lag.lag_seconds(now):.1f}",
            )
        console.print(table)


@app.command("consumer-events")
def list_consumer_events(
    status: str | None = typer.Option(None, help="pending | done | parked | skipped"),
    consumer: str | None = typer.Option(None, help="consumer name"),
    resource: str | None = typer.Option(None, help="resource key, e.g. service/<id>"),
    limit: int = typer.Option(50),
) -> None:
    """List consumer inbox rows, newest first (``--status parked`` for what needs an operator)."""
    with cli_session() as session:
        stmt = consumers.entries_select(consumer=consumer, status=status, resource=resource).limit(limit)
        table = Table("seq", "consumer", "event", "resource", "status", "attempts", "last error")
        for entry in session.scalars(stmt):
            table.add_row(
                str(entry.seq),
                entry.consumer,
                f"{entry.event_type} {entry.event_id}",
                entry.resource_key,
                entry.status,
                str(entry.total_attempts),
                (entry.last_error or "")[:120],
            )
        console.print(table)


@app.command("retry")
def retry_consumer_event(
    seq: int, reason: str | None = typer.Option(None, help="why (kept in the audit trail)")
) -> None:
    """Give a parked consumer event a fresh retry budget."""
    with cli_session() as session:
        entry = consumers.retry(session, seq, actor=CLI_ACTOR, reason=reason)
        console.print(f"Consumer event [bold]{entry.seq}[/] ({entry.consumer}) queued again")


@app.command("skip")
def skip_consumer_event(
    seq: int, reason: str = typer.Option(..., help="why it is skipped (required)")
) -> None:
    """Give up on a parked or pending consumer event so later events of its resource flow again."""
    with cli_session() as session:
        entry = consumers.skip(session, seq, actor=CLI_ACTOR, reason=reason)
        console.print(f"Consumer event [bold]{entry.seq}[/] ({entry.consumer}) skipped: {entry.note}")


@app.command("run-consumers")
def run_consumers(
    drain: bool = typer.Option(False, help="handle what is due, then exit"),
    worker_id: str | None = typer.Option(None, help="name recorded on the events this worker handles"),
    parent_pid: int | None = typer.Option(
        None,
        help="exit when this process is gone (set by `turnup orchestrator run` for its consumer process)",
    ),
) -> None:
    """Run the event consumers in the foreground (serve and orchestrator workers already run them)."""
    import os
    import signal

    from turnup.kernel.db import make_engine, make_sessionmaker
    from turnup.kernel.settings import get_settings

    settings = get_settings()
    worker = consumers.ConsumerWorker(
        make_sessionmaker(make_engine(settings.database_url)), settings, worker_id=worker_id
    )
    if drain:
        console.print(f"{worker.drain()} consumer event(s) handled")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if parent_pid is not None:

        def watch_parent() -> None:  # a killed (kill -9) orchestrator must not leave its consumers behind
            while not stop.wait(0.5):
                if os.getppid() != parent_pid:
                    stop.set()

        threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    print("Event consumers running; Ctrl-C to stop", flush=True)  # the orchestrator waits for this line
    try:
        worker.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
