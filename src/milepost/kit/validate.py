"""Small validators for raw input. Each refuses with ValidationFailed naming the field (``param``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, TypeVar

from milepost.kit.errors import MilepostError, ValidationFailed

T = TypeVar("T")


class Problems:
    """The refusals of independent checks, gathered to be refused all at once: ``check`` runs one and
    keeps its refusal, ``done`` raises the first with the others attached (``MilepostError.others``)."""

    def __init__(self) -> None:
        self.found: list[MilepostError] = []

    def check(self, run: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``run(*args, **kwargs)``, or, when it refuses, None in its place (the caller ends with
        ``done``, which raises before any None is used)."""
        try:
            return run(*args, **kwargs)
        except ValidationFailed as error:
            self.found.extend(error.all)
            return None  # type: ignore[return-value]

    def done(self) -> None:
        if self.found:
            first, *others = self.found
            first.others = tuple(others)
            raise first


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Characters no text of ours may hold: the C0 controls but tab, line feed and carriage return; DEL and the C1
# controls; and lone UTF-16 surrogates (JSON's "\ud800" decodes to one). PostgreSQL cannot store NUL in
# text and no UTF-8 encoder takes a surrogate; the rest are invisible, and in a title or an e-mail address
# can make two different values look the same.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def control_character_in(value: Any, param: str) -> tuple[str, str] | None:
    """The first place in ``value`` (text, or lists and objects of them, as JSON decodes) holding a
    character of ``CONTROL_CHARACTERS``: (its param, e.g. ``milestones[0].title``, and the character),
    or None. Keys of objects are checked as well as values."""
    for where, text_value in _texts(value, param):
        found = CONTROL_CHARACTERS.search(text_value)
        if found is not None:
            return where, found.group()
    return None


def _texts(value: Any, param: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield param, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, f"{param}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{param}.{key}" if param else str(key)
            yield where, str(key)
            yield from _texts(item, where)


def refuse_control_characters(value: Any, param: str) -> None:
    """ValidationFailed (422 ``control_character``) naming where ``value`` holds one, if it does."""
    found = control_character_in(value, param)
    if found is not None:
        where, character = found
        raise ValidationFailed(
            f"{where or 'The request'} holds a control character (U+{ord(character):04X}), which "
            "cannot be stored; remove it.",
            code="control_character",
            param=where or None,
        )


# The last day a date may be. Python's dates end with 9999-12-31, and the work done on a date adds days
# to it (the day after a statement's last day, reminders and late fees after a fund-by date, a review
# period after a due date): a year of room keeps every such sum a date.
LAST_DATE = date(9998, 12, 31)


def text(value: Any, param: str, *, max_length: int, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{param} must be text.", param=param)
    refuse_control_characters(value, param)
    stripped: str = value.strip()
    if required and not stripped:
        raise ValidationFailed(f"{param} is required.", code="missing", param=param)
    if len(stripped) > max_length:
        raise ValidationFailed(f"{param} must be at most {max_length} characters.", param=param)
    return stripped


def text_list(value: Any, param: str, *, max_items: int = 50, max_length: int = 2000) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationFailed(f"{param} must be a list of text items.", param=param)
    if len(value) > max_items:
        raise ValidationFailed(f"{param} may have at most {max_items} items.", param=param)
    return [
        text(item, f"{param}[{index}]", max_length=max_length) for index, item in enumerate(value)
    ]


def integer(value: Any, param: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{param} must be a whole number.", param=param)
    if not minimum <= value <= maximum:
        raise ValidationFailed(f"{param} must be between {minimum} and {maximum}.", param=param)
    return value


def date_in_range(value: date, param: str) -> date:
    """Refuse a date after ``LAST_DATE`` (see there why)."""
    if value > LAST_DATE:
        raise ValidationFailed(
            f"{param} must be on or before {LAST_DATE.isoformat()}.",
            code="date_out_of_range",
            param=param,
        )
    return value


def optional_date(value: Any, param: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return date_in_range(value, param)
    if isinstance(value, str):
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return date_in_range(parsed, param)
    raise ValidationFailed(f"{param} must be a date as YYYY-MM-DD.", param=param)


def email(value: Any, param: str = "email") -> str:
    address = text(value, param, max_length=320).lower()
    if not _EMAIL.match(address):
        raise ValidationFailed(f"{param} must be an e-mail address.", param=param)
    return address


def optional_email(value: Any, param: str) -> str | None:
    return None if value is None else email(value, param)


def only_known_fields(values: dict[str, Any], known: set[str] | frozenset[str]) -> None:
    """Refuse unknown fields: a misspelt term must not be silently dropped."""
    for name in values:
        if name not in known:
            raise ValidationFailed(f"Unknown field {name}.", code="unknown_field", param=name)
