"""Text every input must satisfy, whatever the database: no C0 control characters except tab, LF and CR.

PostgreSQL refuses a NUL byte in text (with an error naming no field) while SQLite stores it; other control
characters are stored by both but break rendering, CSV exports and terminals. Input is therefore checked once,
before any database work: ``InputModel`` (the base of every request/CLI input schema) reports the field,
and the API's request guard (``turnup.api.guard``) does the same for query parameters.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

# C0 controls (U+0000..U+001F) except tab (U+0009), LF (U+000A) and CR (U+000D).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def control_character(text: str) -> str | None:
    """The first forbidden control character in ``text`` as ``U+XXXX``, or None."""
    found = _CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def find_control_character(value: Any, path: str = "") -> tuple[str, str] | None:
    """``(path, U+XXXX)`` of the first forbidden control character in a string, or in the strings, keys and
    items of nested dicts, lists, tuples and sets (path ``""`` for ``value`` itself, else ``a.0.b``); or None.
    Pydantic models inside are skipped: they checked their own fields."""
    if isinstance(value, str):
        code = control_character(value)
        return (path, code) if code else None
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (code := control_character(key)):
                return (sub, code)
            if found := find_control_character(item, sub):
                return found
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            if found := find_control_character(item, f"{path}.{index}" if path else str(index)):
                return found
    return None


def _problem(code: str, inner: str) -> PydanticCustomError:
    where = f" (at {inner})" if inner else ""
    return PydanticCustomError(
        "control_character",
        "contains the control character {code}{where}; only tab, line feed and carriage return are allowed",
        {"code": code, "where": where, "path": inner},
    )


def _clean(value: str) -> str:
    code = control_character(value)
    if code is not None:
        raise _problem(code, "")
    return value


# A plain string parameter (e.g. an HTML form field) held to the same rule as InputModel's fields.
CleanStr = Annotated[str, AfterValidator(_clean)]


class InputModel(BaseModel):
    """Base of input schemas: every string anywhere in a field (nested dicts and lists included) is free of
    control characters, or validation fails on that field (400 naming it at the API)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        found = find_control_character(value)
        if found is not None:
            inner, code = found
            raise _problem(code, inner)
        return value
