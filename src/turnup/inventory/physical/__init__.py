"""Physical inventory: SKUs, a location tree (warehouses, vans, stores, customer sites, data centres, cages,
racks), stock per SKU × location as an immutable movement ledger, serialised units with a lifecycle,
quote-time reservations that never oversell, rack space holds, replenishment and cycle counts (TMF687).

Other features use only this face: ``hold_stock`` / ``stock_hold_status`` / ``stock_regions`` (quote
holds), ``commit_reservation`` and the assignment commands (orders and services), ``hand_over_allocation``
(ordering, when the plan item that delivers stock completes), ``check_availability``. CPE returns arrive
as ``CpeReturnRequestedEvent`` (consumer ``physical_inventory.cpe_returns``).
"""

from turnup.inventory.physical.assignment import (
    AllocatedStock,
    allocate_lines,
    commit_stock_for_order,
    release_stock_if_held,
    return_allocation,
)
from turnup.inventory.physical.fulfilment import hand_over_allocation
from turnup.inventory.physical.holds import (
    HeldStockLine,
    StockHold,
    StockHoldFacts,
    hold_stock,
    stock_hold_facts,
    stock_hold_status,
    stock_regions,
)
from turnup.inventory.physical.reservations import check_availability, commit_reservation
from turnup.inventory.physical.schemas import LineRequest

__all__ = [
    "AllocatedStock",
    "HeldStockLine",
    "LineRequest",
    "StockHold",
    "StockHoldFacts",
    "allocate_lines",
    "check_availability",
    "commit_reservation",
    "commit_stock_for_order",
    "hand_over_allocation",
    "hold_stock",
    "release_stock_if_held",
    "return_allocation",
    "stock_hold_facts",
    "stock_hold_status",
    "stock_regions",
]
