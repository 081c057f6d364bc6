"""``turnup``: one command line for operators."""

from __future__ import annotations

import os
import threading
import time

import typer

from turnup.cli.accounts import app as accounts_app
from turnup.cli.audit import app as audit_app
from turnup.cli.billing import app as billing_app
from turnup.cli.catalog import app as catalog_app
from turnup.cli.common import cli_session, console, start_delivery_worker
from turnup.cli.compliance import app as compliance_app
from turnup.cli.events import app as events_app
from turnup.cli.fallout import app as fallout_app
from turnup.cli.housekeeping import app as housekeeping_app
from turnup.cli.logical_inventory import ip_app, numbers_app, pools_app
from turnup.cli.onboarding import app as onboarding_app
from turnup.cli.orchestrator import app as orchestrator_app
from turnup.cli.orders import app as orders_app
from turnup.cli.quotes import app as quotes_app
from turnup.cli.revenue import app as revenue_app
from turnup.cli.security import app as security_app
from turnup.cli.security import user_roles
from turnup.cli.services import app as services_app
from turnup.cli.stock import app as stock_app
from turnup.cli.usage import app as usage_app
from turnup.cli.users import app as users_app
from turnup.kernel import endpoint, hrefs, migrate
from turnup.kernel.housekeeping import start_housekeeper
from turnup.kernel.settings import Settings, get_settings

app = typer.Typer(help="Turnup service delivery platform.", no_args_is_help=True)


# commands that serve (they record their own URL) or may run before the schema exists
_NO_SERVER_URL = ("serve", "demo", "worker", "db")


@app.callback()
def _wire(ctx: typer.Context) -> None:
    """Turnup service delivery platform."""
    from turnup.wiring import wire

    wire()  # every feature's consumers, sweeps and workflows registered before any command runs
    hrefs.use_server_url(None)
    if ctx.invoked_subcommand not in _NO_SERVER_URL and not endpoint.configured_here():
        _use_recorded_server_url()


def _use_recorded_server_url() -> None:
    """Hrefs printed by this command follow the running server's URL (``turnup serve`` records it)."""
    from turnup.kernel.db import make_engine, make_sessionmaker

    engine = make_engine(get_settings().database_url)
    try:
        with make_sessionmaker(engine)() as session:
            hrefs.use_server_url(endpoint.recorded(session))
    finally:
        engine.dispose()


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(accounts_app, name="accounts")
app.add_typer(stock_app, name="stock")
app.add_typer(ip_app, name="ip")
app.add_typer(numbers_app, name="numbers")
app.add_typer(pools_app, name="pools")
app.add_typer(events_app, name="events")
app.add_typer(catalog_app, name="catalog")
app.add_typer(orchestrator_app, name="orchestrator")
app.add_typer(fallout_app, name="fallout")
app.add_typer(quotes_app, name="quotes")
app.add_typer(compliance_app, name="compliance")
app.add_typer(onboarding_app, name="onboarding")
app.add_typer(housekeeping_app, name="housekeeping")
app.add_typer(orders_app, name="orders")
app.add_typer(services_app, name="services")
app.add_typer(usage_app, name="usage")
app.add_typer(security_app, name="security")
users_app.command("roles")(user_roles)
app.add_typer(audit_app, name="audit")
app.add_typer(revenue_app, name="revenue")
app.add_typer(billing_app, name="billing")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    url = get_settings().database_url
    migrate.upgrade(url, revision)
    console.print(f"Database at [bold]{_redact(url)}[/] upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(get_settings().database_url, revision)
    console.print(f"Database downgraded to {revision}")


@app.command("serve")
def serve(
    host: str | None = typer.Option(None),
    port: int | None = typer.Option(None),
    worker: bool | None = typer.Option(None, help="also run the outbox delivery worker"),
    orchestrator: bool | None = typer.Option(
        None, help="also run order workflows (DBOS) and the housekeeping sweeps in this process"
    ),
    consumers: bool | None = typer.Option(None, help="also run the durable event consumers in this process"),
) -> None:
    """Serve the API and web console (by default with the delivery worker, order workflows and housekeeping
    in-process)."""
    import uvicorn

    from turnup.app import create_app

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    if (host, port) != (settings.host, settings.port):  # hrefs are built from the settings
        os.environ["TURNUP_HOST"], os.environ["TURNUP_PORT"] = host, str(port)
        get_settings.cache_clear()
        settings = get_settings()
    if not settings.public_url and settings.host in endpoint.WILDCARD_HOSTS:  # 0.0.0.0 is no address to link
        os.environ["TURNUP_PUBLIC_URL"] = endpoint.served_url(settings)
        get_settings.cache_clear()
        settings = get_settings()
    stop = threading.Event()
    if worker if worker is not None else settings.run_worker:
        start_delivery_worker(stop)
    stop_consumers = None
    if consumers if consumers is not None else settings.run_consumers:
        from turnup.kernel.consumers import start_worker_thread
        from turnup.kernel.db import make_engine, make_sessionmaker

        stop_consumers = start_worker_thread(make_sessionmaker(make_engine(settings.database_url)), settings)
    run_orchestrator = orchestrator if orchestrator is not None else settings.run_orchestrator
    if run_orchestrator:  # before uvicorn starts its event loop: DBOS registers its queue synchronously
        from turnup.orchestration import runtime

        if not runtime.runtime.launched:  # `turnup demo` launched it already to deliver its orders
            runtime.launch(settings.database_url)
        start_housekeeper(stop, settings)  # stopped by ``stop`` below, like the delivery worker
    _record_served_url(settings)
    console.print(f"Turnup serving on [bold]http://{host}:{port}[/]")
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)
    finally:
        stop.set()
        if stop_consumers is not None:
            stop_consumers()
        if run_orchestrator:
            runtime.shutdown()


def _record_served_url(settings: Settings) -> None:
    """Record where this server is reached, so CLI hrefs elsewhere follow it (``turnup.kernel.endpoint``)."""
    from sqlalchemy.exc import SQLAlchemyError

    from turnup.kernel.db import make_engine, make_sessionmaker

    url = endpoint.served_url(settings)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            endpoint.record(session, url)
    except SQLAlchemyError as exc:  # a database not migrated yet: hrefs still work, from the settings
        console.print(f"[yellow]Could not record the served URL {url}:[/] {exc.__class__.__name__}")
    finally:
        engine.dispose()


@app.command("worker")
def worker_cmd() -> None:
    """Run the outbox delivery worker in the foreground (any number of these may run)."""
    stop = threading.Event()
    console.print("Outbox delivery worker running; Ctrl-C to stop")
    thread = start_delivery_worker(stop)
    try:
        while thread.is_alive():
            thread.join(1.0)
    except KeyboardInterrupt:
        stop.set()


@app.command("demo")
def demo(
    serve_too: bool = typer.Option(True, "--serve/--no-serve"),
    empty: bool = typer.Option(False, "--empty", help="a bare operator: the admin and nothing else"),
) -> None:
    """Migrate, load the demo operator (catalog, customers, stock, pools, numbers, approval rules and
    approvers, screening list, delivered orders), create an admin and its API token, then serve."""
    from turnup.demo.loader import load_demo

    settings = get_settings()
    started = time.monotonic()
    migrate.upgrade(settings.database_url)
    with cli_session() as session:
        result = load_demo(session, empty=empty)
    run_orchestrator = serve_too and settings.run_orchestrator
    if result.delivered_orders:
        _deliver(settings.database_url, result.delivered_orders, keep_running=run_orchestrator)
    # plain print: one line each, never wrapped (scripts and tests read them)
    print(f"Demo operator loaded in {time.monotonic() - started:.1f}s: {result.summary()}", flush=True)
    for line in result.reported_events:
        print(f"  delivered order, event reported: {line}", flush=True)
    console.print(f"Web console login: [bold]{result.admin_username}[/] / [bold]{result.admin_password}[/]")
    for approver in result.approvers:
        print(f"Approver token ({approver.role}, user {approver.username}): {approver.token}", flush=True)
    if result.approvers:
        console.print("  (another one: turnup users token <username>; README § Walkthrough uses them)")
    print(f"API token: {result.api_token}", flush=True)
    if serve_too:
        serve(None, None, None, None, None)


def _deliver(url: str, order_ids: list[str], *, keep_running: bool, timeout: float = 60.0) -> None:
    """Run the workflows of the demo's orders until each is final (the orchestrator stays up to serve)."""
    from turnup.orchestration import runtime
    from turnup.ordering import FINAL, get_order

    def pending() -> list[str]:
        with cli_session() as session:
            return [o for o in order_ids if get_order(session, o).state not in FINAL]

    if not pending():
        return
    runtime.launch(url)
    deadline = time.monotonic() + timeout
    try:
        while (left := pending()) and time.monotonic() < deadline:
            time.sleep(0.1)
        if left:
            console.print(f"[yellow]demo orders still running (they finish while serving): {', '.join(left)}")
    finally:
        if not keep_running:
            runtime.shutdown()


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


if __name__ == "__main__":
    app()
