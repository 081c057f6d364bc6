"""Strings are validated the same way on SQLite and PostgreSQL: a C0 control character other than tab, LF
and CR in any string of a request body, or in a query parameter, is a 400 naming the field; nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
ALLOWED = "only tab, line feed and carriage return are allowed"


def _invalid(response: Any, field: str, code: str, where: str = "") -> None:
    assert response.status_code == 400
    problem = f"contains the control character {code}{where}; {ALLOWED}"
    assert response.json() == {
        "@type": "Error",
        "code": "ERR400",
        "reason": "Invalid input",
        "message": f"{field}: {problem}",
        "status": "400",
        "details": [{"field": field, "problem": problem}],
    }


def test_nul_in_customer_name_is_400_naming_name_and_nothing_is_stored(client: TestClient) -> None:
    response = client.post(CUSTOMERS, json={"name": "Acme\x00Corp"})
    _invalid(response, "name", "U+0000")
    assert client.get(CUSTOMERS).json() == []


@pytest.mark.parametrize("char", ["\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f"])
def test_other_c0_control_characters_are_refused(client: TestClient, char: str) -> None:
    _invalid(client.post(CUSTOMERS, json={"name": f"Acme{char}Corp"}), "name", f"U+{ord(char):04X}")
    assert client.get(CUSTOMERS).json() == []


def test_nested_field_is_named(client: TestClient) -> None:
    response = client.post(CUSTOMERS, json={"name": "Acme", "billingAccount": {"id": "x", "name": "B\x00"}})
    _invalid(response, "billingAccount.name", "U+0000")
    assert client.get(CUSTOMERS).json() == []


def test_patch_with_nul_is_400_and_leaves_the_customer_unchanged(client: TestClient) -> None:
    created = client.post(CUSTOMERS, json={"name": "Acme"}).json()
    response = client.patch(
        f"{CUSTOMERS}/{created['id']}",
        content=b'{"segment": "smb\\u0000"}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    _invalid(response, "segment", "U+0000")
    assert client.get(f"{CUSTOMERS}/{created['id']}").json() == created


def test_unicode_tab_and_newline_are_accepted(client: TestClient) -> None:
    name = "Café 日本\tZürich\r\nSüd"
    created = client.post(CUSTOMERS, json={"name": name, "segment": "é"})
    assert created.status_code == 201
    fetched = client.get(f"{CUSTOMERS}/{created.json()['id']}").json()
    assert (fetched["name"], fetched["segment"]) == (name, "é")


def test_nul_in_a_filter_query_parameter_is_400_naming_it(client: TestClient) -> None:
    client.post(CUSTOMERS, json={"name": "Acme"})
    response = client.get(CUSTOMERS, params={"name": "Acme\x00"})
    assert response.status_code == 400
    assert response.json() == {
        "@type": "Error",
        "code": "ERR400",
        "reason": "Invalid input",
        "message": f"query parameter name: contains the control character U+0000; {ALLOWED}",
        "status": "400",
    }
    assert [c["name"] for c in client.get(CUSTOMERS, params={"name": "Acme"}).json()] == ["Acme"]


def test_an_item_of_a_list_field_is_named_with_its_position(client: TestClient) -> None:
    body = {"kind": "receipt", "sku": "ONT", "location": "WH1", "serials": ["ONT-1", "ONT-\x002"]}
    _invalid(client.post("/tmf-api/stock/v4/adjustProductStock", json=body), "serials", "U+0000", " (at 1)")
    assert client.get("/tmf-api/stock/v4/stockMovement").json() == []


def test_schemas_outside_the_features_check_too(client: TestClient) -> None:
    # the hub subscription body lives in turnup.api.hub; it derives from the same base
    response = client.post("/tmf-api/customerManagement/v4/hub", json={"callback": "http://x/\x07"})
    _invalid(response, "callback", "U+0007")


def test_nul_in_a_console_form_field_is_400_naming_it(anon_client: TestClient) -> None:
    response = anon_client.post("/login", data={"username": "admin\x00", "password": "x"})
    _invalid(response, "username", "U+0000")


def test_every_body_parameter_is_checked(app: Any) -> None:
    """Every body is an InputModel (which checks all its strings) or a form field that refuses a NUL."""
    from pydantic import BaseModel

    from turnup.api.introspect import iter_api_routes
    from turnup.kernel.text import InputModel

    models, forms, missing = 0, 0, []
    for info in iter_api_routes(app):
        for param in info.route.dependant.body_params:
            annotation = param.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                models += 1
                if not issubclass(annotation, InputModel):
                    missing.append(f"{info.path}: {annotation.__qualname__}")
            else:
                forms += 1
                _, errors = param.validate("a\x00", {}, loc=("body", param.name))
                if not errors:
                    missing.append(f"{info.path}: {param.name}")
    assert models > 50 and forms == 7  # login: 4 (with the TOTP code), invitation: 3
    assert missing == []
