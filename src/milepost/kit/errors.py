"""Typed errors. Each carries the HTTP status, type and code of the API's error shape.

Services raise these; the edges (HTTP, CLI, worker) render them. A raised error always means the unit of
work is rolled back, so a refused action changes nothing.
"""

from __future__ import annotations

from typing import Any


class MilepostError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str = "internal_error"
    # Almost every refusal rolls back everything. A few must keep a record of the refused attempt (a failed
    # sign-in counts towards the rate limit): they set this, and the unit of work commits before re-raising.
    keep_changes: bool = False

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
            }
        }


class InvalidRequest(MilepostError):
    status = 400
    type = "invalid_request"
    code = "invalid_request"


class AuthenticationFailed(MilepostError):
    status = 401
    type = "authentication"
    code = "authentication_failed"


class InsufficientFunds(MilepostError):
    status = 402
    type = "insufficient_funds"
    code = "insufficient_funds"


class PermissionDenied(MilepostError):
    status = 403
    type = "permission"
    code = "permission_denied"


class NotFound(MilepostError):
    status = 404
    type = "not_found"
    code = "not_found"


class Conflict(MilepostError):
    """A concurrent request holds the object, or the database refused to serialise two writers."""

    status = 409
    type = "conflict"
    code = "conflict"


class InvalidState(Conflict):
    """The action is not allowed in the object's current state."""

    code = "invalid_state"


class ValidationFailed(MilepostError):
    status = 422
    type = "validation"
    code = "invalid_value"


class RateLimited(MilepostError):
    status = 429
    type = "rate_limited"
    code = "rate_limited"
