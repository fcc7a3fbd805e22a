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
    # True for a refusal that says nothing about the request itself, only about this moment (a lock timeout,
    # a busy database, an unreachable one): the same request may succeed if sent again, so an idempotency key
    # is released rather than made to answer this refusal for 24 hours.
    transient: bool = False

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        # Refusals of other fields found with this one (``validate.Problems``): the API answers with
        # this one; a form shows them all, each by its field.
        self.others: tuple[MilepostError, ...] = ()

    @property
    def all(self) -> tuple[MilepostError, ...]:
        return (self, *self.others)

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


class TransientConflict(Conflict):
    """Another transaction got in the way (lock timeout, deadlock, serialisation failure, busy database):
    nothing was changed and the same request may well succeed if sent again."""

    transient = True


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


class OutcomeUnknown(MilepostError):
    """The connection to the database broke while the transaction was being committed: it may or may not
    have committed, and nobody can tell from here. Never say "nothing was changed" about this."""

    status = 500
    type = "api_error"
    code = "outcome_unknown"

    WITH_KEY = (
        "The connection to the database was lost while saving this request: its outcome is unknown (it "
        "may or may not have taken effect). Retry with the same Idempotency-Key: the retry answers what "
        "happened and never does it twice."
    )
    WITHOUT_KEY = (
        "The connection to the database was lost while saving this request: its outcome is unknown (it "
        "may or may not have taken effect). Check before retrying (for example, list what it would have "
        "created): a retry without an Idempotency-Key may do it twice."
    )

    def __init__(self, *, with_key: bool, request_id: str | None = None) -> None:
        message = self.WITH_KEY if with_key else self.WITHOUT_KEY
        if request_id:
            message += f" Request id: {request_id}."
        super().__init__(message)
        self.with_key = with_key


class ServiceUnavailable(MilepostError):
    """The database cannot be reached (refused, reset, timed out) before anything was committed."""

    status = 503
    type = "service_unavailable"
    code = "service_unavailable"
    transient = True
    retry_after_seconds = 5

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "The service cannot reach its database right now; nothing was changed. "
            f"Try again in {self.retry_after_seconds} seconds."
        )
