"""HTTP adapters: they parse input, call a feature's service and render TMF JSON."""
