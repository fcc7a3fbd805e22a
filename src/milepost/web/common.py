"""What every page module shares: the message placement for refused forms, and the 404 page."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Form
from fastapi.responses import Response

from milepost.kit.errors import MilepostError
from milepost.web.session import WebDep

FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]


def form_errors(error: MilepostError, fields: tuple[str, ...]) -> dict[str, str]:
    """Every refusal (``error`` and the others found with it) under the field it is about, or under
    "form" for the form as a whole, in words rather than field names."""
    placed: dict[str, str] = {}
    for each in error.all:
        field = each.param if each.param in fields else "form"
        message = in_words(each.message, each.param)
        placed[field] = f"{placed[field]} {message}" if field in placed else message
    return placed


_ROW = re.compile(r"^(?P<list>\w+)\[(?P<index>\d+)\]\.(?P<field>\w+)$")


def field_words(param: str) -> str:
    """A field's name as a person says it: "milestones[0].title" -> "the title of milestone 1",
    "billing_contact_email" -> "the billing contact email"."""
    row = _ROW.match(param)
    if row is not None:
        item = row["list"].removesuffix("s").replace("_", " ")
        return f"the {row['field'].replace('_', ' ')} of {item} {int(row['index']) + 1}"
    return "the " + param.replace("_", " ").replace(".", " ")


def in_words(message: str, param: str | None) -> str:
    """A service's message with the field's name it starts with said in words ("milestones[0].title
    is required." -> "The title of milestone 1 is required."). The API keeps the names: its readers
    write code against them."""
    if not param or not message.startswith(param):
        return message
    said = field_words(param) + message[len(param) :]
    return said[0].upper() + said[1:]


def not_found(web: WebDep) -> Response:
    return web.not_found()
