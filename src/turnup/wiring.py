"""The composition root: registers every feature's consumers, housekeeping sweeps and workflows.

Kernel and orchestration know no feature; they keep registries that the features fill. ``wire()`` imports
the modules that do so, once per process, before anything publishes an event, runs a sweep or launches
workflows: ``turnup.api.app.create_app``, the CLI, and the test suite call it.
"""

from __future__ import annotations

from turnup.kernel import consumers


def wire() -> None:
    """Register everything (idempotent)."""
    if consumers.is_wired():
        return
    import turnup.models  # noqa: F401  (complete metadata)

    consumers.mark_wired()
