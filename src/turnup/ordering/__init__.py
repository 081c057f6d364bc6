"""Product ordering (TMF622): orders, their decomposition into a plan, the durable order workflow that
carries the plan out through provisioning adapters and the service inventory, and its fallout queue.

Other features use only what is exported here. The workflow (``turnup.ordering.workflow``) and the guard
protecting services an order works on (``turnup.ordering.guards``) register themselves when the
composition root (``turnup.wiring.wire``) imports them.
"""

from turnup.ordering.decompose import Plan, PlannedItem, decompose
from turnup.ordering.model import FINAL, ORDER_WORKFLOW, TRANSITIONS
from turnup.ordering.queries import (
    OrderedProduct,
    find_orders,
    open_order_for_service,
    ordered_product,
    ordered_products,
    product_items_select,
    product_of_service,
)
from turnup.ordering.references import QuoteFacts, read_quotes_with
from turnup.ordering.schemas import ProductOrderCreate
from turnup.ordering.services import (
    cancel_order,
    create_order,
    get_order,
    plan_items,
    release_reservations,
    report_event,
    transition,
)

__all__ = [
    "FINAL",
    "ORDER_WORKFLOW",
    "TRANSITIONS",
    "OrderedProduct",
    "Plan",
    "PlannedItem",
    "ProductOrderCreate",
    "QuoteFacts",
    "cancel_order",
    "create_order",
    "decompose",
    "find_orders",
    "get_order",
    "open_order_for_service",
    "ordered_product",
    "ordered_products",
    "plan_items",
    "product_items_select",
    "product_of_service",
    "read_quotes_with",
    "release_reservations",
    "report_event",
    "transition",
]
