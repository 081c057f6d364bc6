"""Logical inventory: IP address management, telephone numbers, VLAN/ASN/identifier pools, reservations."""
