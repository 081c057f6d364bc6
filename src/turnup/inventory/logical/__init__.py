"""Logical inventory: IP address management, telephone numbers, VLAN/ASN/identifier pools, reservations."""

from turnup.inventory.logical.assignment import (
    age_number,
    assign_reservation_to_service,
    release_block,
    release_reservation_if_held,
)

__all__ = [
    "age_number",
    "assign_reservation_to_service",
    "release_block",
    "release_reservation_if_held",
]
