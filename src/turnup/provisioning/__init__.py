"""Provisioning: the adapter side of delivery. Adapter plugins (entry points
``turnup.provisioning_adapters``) behind one protocol and registry, the network simulator, the HTTP adapter.

The order workflow that decides which adapter call happens when lives in ``turnup.ordering``.
"""

from turnup.provisioning.adapters import (
    ENTRY_POINT_GROUP,
    AdapterAnswerMalformed,
    AdapterContext,
    AdapterError,
    AdapterRegistry,
    AdapterRequest,
    AdapterResult,
    AdapterTimeout,
    ProvisioningAdapter,
    UnknownAdapter,
    available_adapters,
    call_with_timeout,
    check_result,
    step_timeout,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterAnswerMalformed",
    "AdapterContext",
    "AdapterError",
    "AdapterRegistry",
    "AdapterRequest",
    "AdapterResult",
    "AdapterTimeout",
    "ProvisioningAdapter",
    "UnknownAdapter",
    "available_adapters",
    "call_with_timeout",
    "check_result",
    "step_timeout",
]
