"""The composition root: registers every feature's consumers, housekeeping sweeps and workflows.

Kernel and orchestration know no feature; they keep registries that the features fill. ``wire()`` imports
the modules that do so, once per process, before anything publishes an event, runs a sweep or launches
workflows: ``turnup.api.app.create_app``, the CLI, and the test suite call it.
"""

from __future__ import annotations

from importlib import import_module

from turnup.kernel import consumers

# Modules that register something when imported, in registration order (housekeeping runs its sweeps in
# the order they registered: quotes, then stock, then numbers).
REGISTRARS = (
    "turnup.quoting.sweeps",  # housekeeping: expired quotes
    "turnup.inventory.physical.sweeps",  # housekeeping: expired stock and rack holds
    "turnup.inventory.logical.sweeps",  # housekeeping: aged numbers
    "turnup.ordering.workflow",  # the order workflow and its steps (DBOS)
    "turnup.ordering.guards",  # service inventory refuses direct changes to services an order works on
    "turnup.product_inventory.consumers",  # products follow orders and services through their events
)


def wire() -> None:
    """Register everything (idempotent)."""
    if consumers.is_wired():
        return
    import turnup.models  # noqa: F401  (complete metadata)

    for module in REGISTRARS:
        import_module(module)
    consumers.mark_wired()
