"""FastAPI routers, one module per feature: thin adapters that parse, call the feature, render."""
