"""Every error is a TMF Error body, including unexpected 500s and database conflicts."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from turnup.api.deps import public

TMF_ERROR_KEYS = {"@type", "code", "reason", "message", "status"}


def test_unexpected_exception_is_a_tmf_500_without_internals(app: Any) -> None:
    @app.get("/boom")
    def boom(_: None = public()) -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert set(body) >= TMF_ERROR_KEYS and body["status"] == "500"
    assert "secret internal detail" not in response.text


def test_integrity_error_is_a_tmf_409(app: Any) -> None:
    @app.get("/conflict")
    def conflict(_: None = public()) -> None:
        raise IntegrityError("INSERT …", {}, Exception("duplicate key"))

    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/conflict")
    assert response.status_code == 409
    assert set(response.json()) >= TMF_ERROR_KEYS


def test_unsupported_content_type_is_a_tmf_error(client: TestClient) -> None:
    response = client.post(
        "/tmf-api/customerManagement/v4/customer",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= response.status_code < 500
    assert set(response.json()) >= TMF_ERROR_KEYS


def test_numbers_too_large_for_storage_are_tmf_400(app: Any) -> None:
    @app.get("/overflow")
    def overflow(_: None = public()) -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/overflow")
    assert response.status_code == 400
    assert set(response.json()) >= TMF_ERROR_KEYS
