"""What every page module shares: the message placement for refused forms, and the 404 page."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from fastapi.responses import Response

from milepost.kit.errors import MilepostError
from milepost.web.session import WebDep

FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]


def form_errors(error: MilepostError, fields: tuple[str, ...]) -> dict[str, str]:
    """The message under the field it is about, or under "form" for the form as a whole."""
    field = error.param if error.param in fields else "form"
    return {field: error.message}


def not_found(web: WebDep) -> Response:
    return web.not_found()
