"""Durable workflows on DBOS, over the same database as Turnup's data.

- ``runtime``: DBOS configuration (system tables in Turnup's database), launch/shutdown of a worker,
  the DBOS client used by API processes to enqueue workflows and send messages *inside* Turnup's own
  transactions, and the session factory steps use.
- ``cli``: ``turnup orchestrator run|recover|status``.
- ``testing``: in-process orchestrator and worker subprocess helpers for tests and benchmarks.
"""
