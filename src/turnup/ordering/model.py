"""The order's rules that need no database: its state machine and the vocabulary of its plan."""

from __future__ import annotations

TRANSITIONS: dict[str, set[str]] = {
    "acknowledged": {"inProgress", "rejected", "cancelled"},
    "inProgress": {"completed", "partial", "failed", "held", "pending", "pendingCancellation"},
    "held": {"inProgress", "failed", "cancelled", "pendingCancellation"},
    "pending": {"inProgress", "failed", "cancelled", "pendingCancellation"},
    # TMF622 cancel flow: the cancellation is assessed synchronously (the request is refused or accepted);
    # accepted, the order is pendingCancellation until its workflow has stopped and compensated
    "pendingCancellation": {"cancelled"},
    "completed": set(),
    "partial": set(),
    "failed": set(),
    "cancelled": set(),
    "rejected": set(),
}
FINAL = {s for s, nxt in TRANSITIONS.items() if not nxt}
ORDER_WORKFLOW = "turnup.order"  # the DBOS workflow (``turnup.ordering.workflow``) each accepted order runs
MAX_BUNDLE_DEPTH = 3
# plan item action -> adapter operation
OPERATIONS = {
    "add": "activate",
    "modify": "modify",
    "suspend": "suspend",
    "resume": "resume",
    "delete": "deactivate",
    "moveOut": "deactivate",
    "moveIn": "activate",
}
MOVE_FROM = "_fromSite"  # moveIn parameters key: the site the service leaves (restored if the move is undone)
# plan item kinds that wait for an outside event instead of calling an adapter, and their default event
WAIT_KINDS = ("fieldVisit", "shipment", "pickup", "projectMilestone")
RESOURCE_KIND = "resourceAssignment"  # plan item assigning a reservation the order carries to its service
DEFAULT_EVENTS = {
    "fieldVisit": "technicianCompleted",
    "shipment": "shipmentDelivered",
    "pickup": "pickedUp",
    "projectMilestone": "milestoneAccepted",
}
# wait kinds whose completion hands stock over to the customer, and the catalog fulfilmentMethod they deliver
HANDOVER = {"fieldVisit": "technician", "shipment": "ship", "pickup": "pickup"}
UNDO_KEY = "_undo"  # plan parameters key holding what a modify replaced (not sent to the adapter)
# plan item kind for a move's site-dependent resources: ``assign`` (the new site's IP prefixes / numbers, held
# when the order is accepted, assigned to the service before it moves) and ``release`` (the old site's given
# back once it has moved)
SITE_RESOURCES_KIND = "siteResources"
MOVE_HOLD_DAYS = 30  # how long a move's new-site hold lasts before its assign step runs
