"""Server-rendered web console (Jinja2 + htmx, assets vendored)."""
