"""Physical inventory: SKUs, a location tree (warehouses, vans, stores, customer sites, data centres, cages,
racks), stock per SKU × location as an immutable movement ledger, serialised units with a lifecycle,
quote-time reservations that never oversell, rack space holds, replenishment and cycle counts (TMF687).

Python API for other features (the quote feature combines these with logical reservations):
``turnup.inventory.physical.reservations`` — ``create_reservation``, ``extend_reservation``,
``release_reservation``, ``commit_reservation``, ``check_availability``, ``sweep_expired``.
"""

from turnup.inventory.physical.assignment import (
    commit_stock_for_order,
    release_stock_if_held,
    return_allocation,
)

__all__ = ["commit_stock_for_order", "release_stock_if_held", "return_allocation"]
