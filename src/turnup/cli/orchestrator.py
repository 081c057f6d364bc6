"""``turnup orchestrator …``: run a workflow worker, adopt a dead worker's workflows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import typer

from turnup.cli.common import console
from turnup.kernel.settings import get_settings

app = typer.Typer(help="Durable order workflows (DBOS) on Turnup's database.", no_args_is_help=True)


def _consumer_process(worker_id: str) -> Callable[[], None]:
    """``turnup events run-consumers`` as a child that exits with this process (even after kill -9).

    Returns once the child is handling events, so a worker that says "running" has its consumers running.
    """
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "turnup.cli.main",
            "events",
            "run-consumers",
            "--worker-id",
            worker_id,
            "--parent-pid",
            str(os.getpid()),
        ],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    first = child.stdout.readline()  # "Event consumers running…", or b"" if it died on the way
    if b"running" not in first:
        child.kill()
        console.print(f"[red]the event consumer process did not start[/] ({first!r})")
        raise typer.Exit(1)

    def halt() -> None:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()

    return halt


@app.command("run")
def run(
    executor_id: str | None = typer.Option(
        None,
        help="stable id of this worker (default TURNUP_EXECUTOR_ID "
        "or turnup-<hostname>); keep it across restarts",
    ),
    concurrency: int = typer.Option(8, help="workflows this worker runs at once"),
    delivery: bool = typer.Option(
        False, "--delivery/--no-delivery", help="also run the outbox delivery worker in this process"
    ),
    consumers: str = typer.Option(
        "process",
        help="run the event consumers in a child process (default: no GIL shared with the workflows), "
        "a thread of this process, or not at all: process | thread | off",
    ),
) -> None:
    """Run order workflows, the event consumers and the housekeeping sweeps until stopped (SIGTERM/Ctrl-C).
    Any number may run against PostgreSQL (each sweep runs in one of them at a time; each event is applied
    once per consumer whichever worker takes it)."""
    from turnup.kernel.consumers import start_worker_thread
    from turnup.kernel.housekeeping import start_housekeeper
    from turnup.orchestration import runtime

    if consumers not in ("process", "thread", "off"):
        raise typer.BadParameter("--consumers must be process, thread or off")
    settings = get_settings()
    stop = threading.Event()
    executor_id = executor_id or runtime.default_executor_id()
    consumer_id = f"{executor_id}-consumers"
    stop_consumers: Callable[[], None] = lambda: None  # noqa: E731
    if consumers == "process":  # first: once DBOS is launched, workflows start, and events with them
        stop_consumers = _consumer_process(consumer_id)
    runtime.launch(settings.database_url, executor_id=executor_id, worker_concurrency=concurrency)
    assert runtime.runtime.factory is not None
    if consumers == "thread":
        stop_consumers = start_worker_thread(runtime.runtime.factory, settings, worker_id=consumer_id)
    if delivery:
        from turnup.cli.common import start_delivery_worker

        start_delivery_worker(stop)
    start_housekeeper(stop, settings)  # every TURNUP_SWEEP_INTERVAL_SECONDS (0: off); stopped by ``stop``
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(
        f"Orchestrator [bold]{runtime.runtime.executor_id}[/] running; Ctrl-C to stop", highlight=False
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        stop_consumers()
        runtime.shutdown()


@app.command("recover")
def recover(executor_id: str = typer.Argument(..., help="the executor id of a worker that is gone")) -> None:
    """Re-enqueue the unfinished workflows of a worker that will not come back, for any worker to run."""
    from turnup.orchestration import runtime

    runtime.launch(get_settings().database_url, executor_id="turnup-recover-cli", worker_concurrency=0)
    try:
        ids = runtime.recover_executor(executor_id)
        console.print(f"Re-enqueued {len(ids)} workflow(s) of executor {executor_id}")
    finally:
        runtime.shutdown()
