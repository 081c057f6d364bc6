"""The ``turnup`` command line (Typer + Rich)."""
