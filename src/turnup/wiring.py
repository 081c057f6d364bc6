"""The composition root: registers every feature's consumers, housekeeping sweeps and workflows.

Kernel and orchestration know no feature; they keep registries that the features fill. ``wire()`` imports
the modules that do so, once per process, before anything publishes an event, runs a sweep or launches
workflows: ``turnup.app.create_app``, the CLI, and the test suite call it.
"""

from __future__ import annotations

from turnup.kernel import consumers, housekeeping, idempotency


def _register() -> None:
    """Import (statically: checkers see them) the modules that register something. The order matters only
    for housekeeping, which runs its sweeps in registration order: quotes, then stock, then numbers, then
    expired idempotency keys, then stale failed-login counters."""
    # isort: off
    import turnup.models  # complete metadata
    import turnup.quoting.sweeps  # housekeeping: expired quotes
    import turnup.inventory.physical.sweeps  # housekeeping: expired stock and rack holds
    import turnup.inventory.logical.sweeps  # housekeeping: aged numbers
    import turnup.ordering.workflow  # the order workflow and its steps, DBOS
    import turnup.ordering.guards  # service inventory refuses changes to ordered services
    import turnup.quoting.order_refs  # ordering checks the quotes order bodies cite through quoting
    import turnup.product_inventory.consumers  # products follow orders and services
    import turnup.inventory.physical.consumers  # CPE returns expected after a disconnect
    import turnup.accounts.consumers  # the customer lifecycle follows its services
    import turnup.usage.consumers  # usage keeps its record of when services may be billed
    import turnup.revenue.consumers  # revenue contracts and earned triggers
    import turnup.billing.consumers  # charges follow the delivery events
    import turnup.billing.usage_source as billing_usage  # bill runs take rated usage

    billing_usage.register()
    housekeeping.register("idempotency")(idempotency.prune_expired)  # expired Idempotency-Key responses
    import turnup.security.sweeps  # noqa: F401  (housekeeping: stale failed-login counters)
    # isort: on


def wire() -> None:
    """Register everything (idempotent)."""
    if consumers.is_wired():
        return
    _register()
    consumers.mark_wired()
