"""Turnup: the system between "quote accepted" and "service active, billed and recognised"."""

__version__ = "0.1.0"
