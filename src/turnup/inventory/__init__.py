"""Inventory: physical stock (``inventory.physical``) and logical resources (numbers, IPs, ports …)."""
