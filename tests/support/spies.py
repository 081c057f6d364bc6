"""Test spies shared by the fast-path tests."""

from __future__ import annotations

from typing import Any

import pytest


def fast_path_outcomes(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[str]:
    """Wrap ``module.name`` (a fast path that returns ``None`` when it declines) and record, per call,
    'served' or 'declined'."""
    calls: list[str] = []
    real = getattr(module, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append("declined" if result is None else "served")
        return result

    monkeypatch.setattr(module, name, wrapped)
    return calls
