"""Durable workflows on DBOS, over the same database as Turnup's data. Knows no feature: features register
their workflows and steps with DBOS when imported (``turnup.wiring.wire``), and ``runtime.launch`` runs
whatever is registered.

- ``runtime``: DBOS configuration (system tables in Turnup's database), launch/shutdown of a worker,
  the DBOS client used by API processes to enqueue workflows and send messages *inside* Turnup's own
  transactions, and the session factory steps use. (``turnup orchestrator run|recover`` is in
  ``turnup.cli.orchestrator``.)
- ``testing``: feature-free helpers for tests and benchmarks: an in-process orchestrator (with an event
  consumer worker), worker subprocesses, polling. Feature fixtures are in ``turnup.testing``.
"""
