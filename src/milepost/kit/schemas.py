"""Pieces shared by every domain's request and response models."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, WithJsonSchema
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from milepost.kit.validate import LAST_DATE
from milepost.money import MAX_AMOUNT

T = TypeVar("T")


class Body(BaseModel):
    """A request body: unknown fields are refused, so that a misspelt field never goes unnoticed."""

    model_config = ConfigDict(extra="forbid")


class ListOf(BaseModel, Generic[T]):
    object: str = "list"
    data: list[T]
    has_more: bool


class Deleted(BaseModel):
    id: str
    deleted: bool = True


def _on_or_before_last_date(value: date) -> date:
    if value > LAST_DATE:
        # Rendered as 422 date_out_of_range by the app's validation handler, wherever it comes from.
        raise PydanticCustomError(
            "date_out_of_range", "must be on or before {last}", {"last": LAST_DATE.isoformat()}
        )
    return value


# A date taken from a request (a query parameter, a body field): at most kit.validate.LAST_DATE.
Day = Annotated[date, AfterValidator(_on_or_before_last_date)]

# --- what the OpenAPI document says about fields ----------------------------------------------------------
# Request fields keep the Python types that let the services refuse a wrong value with their own codes
# (invalid_currency, unknown_provider, date_out_of_range, ...): what the document adds below is schema only.

MINOR_UNITS = (
    "An integer number of the currency's minor units, never a float or a string: in USD, 1500000 is "
    "$15,000.00 (cents); JPY has no minor unit, so 1500000 is ¥1,500,000; KWD has three decimals, so "
    "1500000 is KWD 1,500.000."
)
AMOUNT_EXAMPLES = [1500000]


def amount_in(description: str, *, default: Any = ..., allow_zero: bool = False) -> Any:
    """A request's money field: minor units, 1 (0 with ``allow_zero``) to 10^12; anything else is 422
    ``invalid_amount`` (refused by the service, which names the field)."""
    return Field(
        default,
        description=f"{description} {MINOR_UNITS}",
        examples=AMOUNT_EXAMPLES,
        json_schema_extra={"minimum": 0 if allow_zero else 1, "maximum": MAX_AMOUNT},
    )


def amount_out(description: str) -> Any:
    """A response's money field, in the minor units of the object's currency."""
    return Field(description=f"{description} {MINOR_UNITS}", examples=AMOUNT_EXAMPLES)


def one_of(values: Iterable[str], description: str) -> WithJsonSchema:
    """The schema of a string that takes one of ``values`` (an enum in the document). On a request field
    the value is still checked by the service, so that a wrong one keeps its error code."""
    return WithJsonSchema(
        {"type": "string", "enum": [str(value) for value in values], "description": description}
    )


CURRENCY_DESCRIPTION = (
    "An upper-case ISO 4217 code of legal tender, such as USD, EUR, JPY or KWD. Codes that are not money "
    "anyone can be paid in (XXX, XTS, the metals such as XAU, units of account such as XDR, withdrawn "
    "codes) are refused with 422 `invalid_currency`."
)
_CURRENCY_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": "^[A-Z]{3}$",
        "description": CURRENCY_DESCRIPTION,
        "examples": ["USD", "EUR", "JPY", "KWD"],
    }
)
# A currency code, in the document three upper-case letters: in a request (checked by the service, which
# refuses a wrong one with 422 invalid_currency) and in a response.
CurrencyIn = Annotated[StrictStr, _CURRENCY_SCHEMA]
Currency = Annotated[str, _CURRENCY_SCHEMA]


def date_text(description: str) -> WithJsonSchema:
    """A request's date taken as text and read by the service (so that a wrong one keeps its code)."""
    return WithJsonSchema(
        {"type": "string", "format": "date", "description": description, "examples": ["2026-06-30"]}
    )


def require_in_schema(*names: str) -> Callable[[JsonDict], None]:
    """``json_schema_extra`` for a request body whose required fields are checked by the service (so that
    a refusal keeps its code and comes after the 404/403 of the object it names): the document lists
    them as required and not null."""

    def extra(schema: JsonDict) -> None:
        required = schema.get("required")
        listed = [str(name) for name in required] if isinstance(required, list) else []
        schema["required"] = [*listed, *(name for name in names if name not in listed)]
        properties = schema.get("properties")
        assert isinstance(properties, dict)
        for name in names:
            field = properties[name]
            assert isinstance(field, dict)
            field.pop("default", None)
            choices = field.get("anyOf")
            if isinstance(choices, list):
                kept = [
                    choice
                    for choice in choices
                    if not (isinstance(choice, dict) and choice.get("type") == "null")
                ]
                if len(kept) == 1 and isinstance(kept[0], dict):
                    del field["anyOf"]
                    field.update(kept[0])

    return extra


# --- errors --------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    type: str = Field(description="The error family, e.g. `validation` or `not_found`.")
    code: str = Field(description="A machine-readable reason, e.g. `invalid_state`.")
    message: str = Field(description="A human-readable explanation; never a stack trace.")
    param: str | None = Field(description="The field or parameter at fault, when there is one.")


class Error(BaseModel):
    """The body of every error response: ``{"error": {"type", "code", "message", "param"}}``."""

    error: ErrorDetail


_ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "`invalid_request`: the body is not valid JSON, or a query parameter has a value it cannot take.",
    401: "`authentication`: no token, or an unknown, expired or revoked one (`WWW-Authenticate: Bearer`).",
    402: "`insufficient_funds`: the available balance is smaller than the amount.",
    403: "`permission`: a party to the object, or a signed-in user, who may not do this (the `code` says "
    "why, e.g. `only_freelancer_can_cancel`, `staff_only`).",
    404: "`not_found`: no such object, or the caller is not a party to it.",
    409: "`conflict`: not allowed in the object's current state (`invalid_state`), or another request "
    "holds it right now (a concurrent write, or the same Idempotency-Key still running): nothing was "
    "changed; the same request may succeed later.",
    413: "`invalid_request`: the request body is larger than the server accepts.",
    422: "`validation`: a field or parameter is missing or wrong (`param` names it), a text holds a "
    "control character, or an Idempotency-Key was reused with another body (`idempotency_key_reused`).",
    429: "`rate_limited`: too many attempts; wait a few minutes.",
    503: "`service_unavailable`: the database cannot be reached; nothing was changed. `Retry-After` says "
    "when to try again.",
}
_INTERNAL_ERROR = "`api_error` `internal_error`: an unexpected failure; nothing was changed."
_OUTCOME_UNKNOWN = (
    "`api_error`: `internal_error` (an unexpected failure, rolled back), or `outcome_unknown`: the "
    "connection to the database broke while committing, so the write (and any money it moves) may or "
    "may not have taken effect. Retry with the same Idempotency-Key to learn which: it is never done "
    "twice."
)


def error_responses(*statuses: int, write: bool = False) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of an operation: the error statuses it can answer, each with the ``Error`` body,
    and always 500 and 503. ``write``: the operation commits, so its 500 may be ``outcome_unknown``."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 503}):
        documented[status] = {"model": Error, "description": _ERROR_DESCRIPTIONS[status]}
    documented[500] = {
        "model": Error,
        "description": _OUTCOME_UNKNOWN if write else _INTERNAL_ERROR,
    }
    return dict(sorted(documented.items(), key=lambda item: int(item[0])))


# A list endpoint's page size (API.md: 1 to 100, default 20).
Limit = Annotated[int, Query(ge=1, le=100)]
