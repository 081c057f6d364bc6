"""Service inventory (TMF638): every provisioned service instance, its state and its order history."""
