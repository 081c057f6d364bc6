"""Pure functions behind the control-character check and the request guard (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from turnup.api.guard import is_import_path, query_problem
from turnup.kernel.text import control_character, find_control_character


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", None),
        ("tab\tlf\ncr\r", None),
        ("é 日本 \x7f", None),
        ("a\x00", "U+0000"),
        ("\x1bx", "U+001B"),
    ],
)
def test_control_character(text: str, expected: str | None) -> None:
    assert control_character(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": [1, {"b": "ok"}, {"c": "x\x02"}]}, ("a.2.c", "U+0002")),
        ({"k\x00": "v"}, ("k\x00", "U+0000")),
        (["ok", ("t", "\x0c")], ("1.1", "U+000C")),
        ({"a": 1, "b": None, "c": ["fine"]}, None),
        ("\x03", ("", "U+0003")),
    ],
)
def test_find_control_character(value: Any, expected: tuple[str, str] | None) -> None:
    assert find_control_character(value) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/tmf-api/resourcePoolManagement/v4/numberImport", True),
        ("/tmf-api/quoteManagement/v4/approvalRuleImport/", True),
        ("/tmf-api/x/v4/Import", False),
        ("/tmf-api/x/v4/numberImport/123", False),
        ("/tmf-api/customerManagement/v4/customer", False),
    ],
)
def test_is_import_path(path: str, expected: bool) -> None:
    assert is_import_path(path) is expected


def test_query_problem_names_the_parameter() -> None:
    assert query_problem(b"") is None
    assert query_problem(b"name=Caf%C3%A9&limit=5&fields=id,name") is None
    assert query_problem(b"name=a%09b%0A") is None
    assert query_problem(b"limit=5&name=a%00b") == (
        "query parameter name: contains the control character U+0000; "
        "only tab, line feed and carriage return are allowed"
    )
    assert query_problem(b"na%1Bme=x") == (
        "query parameter 'na\\x1bme': contains the control character U+001B; "
        "only tab, line feed and carriage return are allowed"
    )
