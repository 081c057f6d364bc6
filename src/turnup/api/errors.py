"""Every error leaves the API as a TMF ``Error`` JSON: code, reason, message, status, @type."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from turnup.kernel.errors import TurnupError

log = structlog.get_logger(__name__)

_REASONS = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable entity",
    500: "Internal error",
}


def tmf_error(
    status: int,
    message: str,
    reason: str | None = None,
    code: str | None = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "@type": "Error",
        "code": code or f"ERR{status}",
        "reason": reason or _REASONS.get(status, "Error"),
        "message": message,
        "status": str(status),
    }
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) if parts else "body"


def describe_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"field": _loc(tuple(e.get("loc", ()))), "problem": str(e.get("msg", ""))} for e in errors]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TurnupError)
    async def _domain(request: Request, exc: TurnupError) -> JSONResponse:
        return tmf_error(exc.status, exc.message, exc.reason, exc.code, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return tmf_error(400, "request body is not valid JSON", "Malformed JSON")
        problems = describe_validation_errors(errors)
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return tmf_error(400, message, "Invalid input", details=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no resource at {request.url.path}"
        if exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return tmf_error(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity_error", path=request.url.path, error=str(exc.orig))
        return tmf_error(409, "the change conflicts with existing data", "Conflict")

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        log.warning("data_error", path=request.url.path, error=str(exc.orig))
        return tmf_error(400, "a value is out of range or of the wrong type for storage", "Invalid input")

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # sqlite3 raises this unwrapped for integers beyond 64 bits
        log.warning("overflow", path=request.url.path, error=str(exc))
        return tmf_error(400, "a number is too large to store", "Invalid input")

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        if isinstance(exc.orig, (OverflowError, ValueError)):  # e.g. an integer too large for SQLite
            log.warning("statement_value_error", path=request.url.path, error=str(exc.orig))
            return tmf_error(400, "a value is out of range or of the wrong type for storage", "Invalid input")
        log.exception("statement_error", path=request.url.path)
        return tmf_error(500, "internal error; the request changed nothing", "Internal error")

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database_error", path=request.url.path, error=str(exc.orig))
        return tmf_error(503, "database unavailable or busy; retry", "Service unavailable")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return tmf_error(500, "internal error; the request changed nothing", "Internal error")
