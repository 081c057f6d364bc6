"""Service inventory (TMF638): the services delivered to customers, their states and the orders that
changed them. The single truth of what is provisioned.

Other features use only what is exported here. The commands run inside the caller's transaction (they
never commit) and publish ``ServiceStateChangeEvent`` / ``ServiceAttributeValueChangeEvent`` (TMF638) and
the internal delivery events (``turnupDelivery``: ``ServiceActivatedEvent``, ``ServiceSuspendedEvent``,
``ServiceResumedEvent``, ``ServiceTerminatedEvent``, ``ServiceModifiedEvent``, ``ServiceMovedEvent``,
``CpeReturnRequestedEvent``) that other features consume.
"""

from turnup.service_inventory.guards import OpenOrderGuard, register_open_order_guard
from turnup.service_inventory.moves import assign_move_resources, release_move_resources
from turnup.service_inventory.orm import Service
from turnup.service_inventory.queries import find_services
from turnup.service_inventory.render import API, render_service
from turnup.service_inventory.services import (
    DELIVERY_API,
    TRANSITIONS,
    ServiceView,
    assign_reservation,
    change_state,
    design_service,
    get_service,
    lock_service,
    modify_characteristics,
    move,
    release_resources,
    service_views,
)

__all__ = [
    "API",
    "DELIVERY_API",
    "TRANSITIONS",
    "OpenOrderGuard",
    "Service",
    "ServiceView",
    "assign_move_resources",
    "assign_reservation",
    "change_state",
    "design_service",
    "find_services",
    "get_service",
    "lock_service",
    "modify_characteristics",
    "move",
    "register_open_order_guard",
    "release_move_resources",
    "release_resources",
    "render_service",
    "service_views",
]
