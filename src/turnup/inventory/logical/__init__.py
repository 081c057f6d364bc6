"""Logical inventory: IP address management, telephone numbers, VLAN/ASN/identifier pools, reservations.

Other features use only this face: ``resource_pools`` / ``hold_resources`` / ``resource_hold_state`` /
``commit_resource_hold`` (quote holds), ``site_resource_needs`` (what a moving service needs at its new
site) and the assignment commands (orders and services).
"""

from turnup.inventory.logical.assignment import (
    age_number,
    assign_reservation_to_service,
    release_block,
    release_reservation_if_held,
)
from turnup.inventory.logical.holds import (
    HeldResource,
    PoolInfo,
    ResourceHold,
    ResourceHoldState,
    commit_resource_hold,
    hold_resources,
    resource_hold_state,
    resource_pools,
)
from turnup.inventory.logical.moves import SitePlace, SiteResourceNeed, pool_for_site, site_resource_needs
from turnup.inventory.logical.reservations import ReserveLine

__all__ = [
    "HeldResource",
    "PoolInfo",
    "ReserveLine",
    "ResourceHold",
    "ResourceHoldState",
    "SitePlace",
    "SiteResourceNeed",
    "age_number",
    "assign_reservation_to_service",
    "commit_resource_hold",
    "hold_resources",
    "pool_for_site",
    "release_block",
    "release_reservation_if_held",
    "resource_hold_state",
    "resource_pools",
    "site_resource_needs",
]
