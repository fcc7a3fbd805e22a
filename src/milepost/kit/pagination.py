"""Cursor pagination over time-ordered ids: newest first, ``starting_after`` an id from the last page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from milepost.kit.errors import ValidationFailed

T = TypeVar("T")
MAX_LIMIT = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    data: list[T]
    has_more: bool


def check_limit(limit: int) -> None:
    """A page size outside 1..MAX_LIMIT is a wrong value: 422 naming ``limit`` (API.md)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}.", param="limit")


def paginate(
    session: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[str],
    *,
    limit: int = 20,
    starting_after: str | None = None,
) -> Page[Any]:
    check_limit(limit)
    if starting_after is not None:
        query = query.where(id_column < starting_after)
    rows = list(session.scalars(query.order_by(id_column.desc()).limit(limit + 1)))
    return Page(data=rows[:limit], has_more=len(rows) > limit)
