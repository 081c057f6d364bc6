"""Domain errors. The API renders each as a TMF Error; the CLI prints its message."""

from __future__ import annotations

from typing import Any


class TurnupError(Exception):
    status = 500
    code = "ERR500"
    reason = "Internal error"

    def __init__(self, message: str, *, reason: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.details = details


class InvalidInput(TurnupError):
    status = 400
    code = "ERR400"
    reason = "Invalid input"


class Unauthorized(TurnupError):
    status = 401
    code = "ERR401"
    reason = "Unauthorized"


class Forbidden(TurnupError):
    status = 403
    code = "ERR403"
    reason = "Forbidden"


class NotFound(TurnupError):
    status = 404
    code = "ERR404"
    reason = "Not found"


class Conflict(TurnupError):
    status = 409
    code = "ERR409"
    reason = "Conflict"
