"""Pieces shared by every domain's request and response models."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from milepost.kit.validate import LAST_DATE

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

Amount = Field(description="Integer amount in the currency's minor unit (cents for USD).")


class ErrorDetail(BaseModel):
    type: str = Field(description="The error family, e.g. `validation` or `not_found`.")
    code: str = Field(description="A machine-readable reason, e.g. `invalid_state`.")
    message: str = Field(description="A human-readable explanation; never a stack trace.")
    param: str | None = Field(description="The field or parameter at fault, when there is one.")


class ErrorOut(BaseModel):
    """The body of every error response: ``{"error": {"type", "code", "message", "param"}}``."""

    error: ErrorDetail
