"""Registers ordering's rule with service inventory: a service an unfinished order works on cannot be
changed directly (TMF640). Imported by the composition root (``turnup.wiring.wire``)."""

from __future__ import annotations

from turnup import service_inventory
from turnup.ordering.queries import open_order_for_service

service_inventory.register_open_order_guard("ordering.open_order", open_order_for_service)
