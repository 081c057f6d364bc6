"""Feature-free helpers for tests and benchmarks: an in-process orchestrator (with the event consumers),
worker subprocesses, polling. Helpers that make catalog entries, customers or orders are in
``turnup.testing``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from turnup.kernel import consumers


def wait_until(
    predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05, message: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@contextmanager
def in_process(url: str, executor_id: str = "test-inproc", **env: str) -> Iterator[None]:
    """DBOS launched in this process on ``url`` for the block (workflows run in background threads), and an
    event consumer worker in a thread (``turnup.kernel.consumers``), as ``turnup orchestrator run`` does.

    The workflows and consumers run are those registered (``turnup.wiring.wire()``) before the block.
    """
    from turnup.orchestration import runtime

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    runtime.launch(url, executor_id=executor_id)
    assert runtime.runtime.factory is not None
    stop_consumers = consumers.start_worker_thread(
        runtime.runtime.factory, worker_id=f"{executor_id}-consumers"
    )
    try:
        yield
    finally:
        stop_consumers()
        runtime.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class WorkerProcess:
    """``turnup orchestrator run`` in a subprocess (killable with SIGKILL, restartable with the same id)."""

    def __init__(
        self,
        url: str,
        executor_id: str,
        *,
        concurrency: int = 8,
        env: dict[str, str] | None = None,
        log_path: str | None = None,
        nice: int = 0,
        consumers: str = "process",
    ) -> None:
        self.url, self.executor_id, self.concurrency = url, executor_id, concurrency
        self.consumers = consumers  # process | thread | off (``--consumers``)
        self.env = env or {}
        self.log_path = log_path
        self.nice = nice
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = dict(os.environ, TURNUP_DATABASE_URL=self.url, **self.env)
        cmd = [
            sys.executable,
            "-m",
            "turnup.cli.main",
            "orchestrator",
            "run",
            "--executor-id",
            self.executor_id,
            "--concurrency",
            str(self.concurrency),
            "--consumers",
            self.consumers,
        ]
        if self.nice:
            cmd = ["nice", "-n", str(self.nice), *cmd]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no cleanup of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
