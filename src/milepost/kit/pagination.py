"""Cursor pagination.

``paginate``: over time-ordered ids, newest first, ``starting_after`` an id from the last page.
``keyset``: in any ascending order that ends with a unique column (the id, so that ties break the same way
on every page), continuing after the row a page ended with. Both read ``limit + 1`` rows to know whether
there is more, and a later page costs what the first does (an index on the order's columns answers it):
no OFFSET.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from milepost.kit.errors import InvalidRequest, ValidationFailed

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


def key_of(
    session: Session,
    order: Sequence[InstrumentedAttribute[Any]],
    id_column: InstrumentedAttribute[str],
    row_id: str,
    *,
    param: str,
) -> tuple[Any, ...]:
    """The ``order`` values of the row ``row_id`` (a page's last row, named in a "next page" link); a
    400 naming ``param`` if there is no such row."""
    found = session.execute(select(*order).where(id_column == row_id)).one_or_none()
    if found is None:
        raise InvalidRequest(f"Nothing to continue after: {row_id!r} is unknown.", param=param)
    return tuple(found)


def keyset(
    session: Session,
    query: Select[*tuple[Any, ...]],
    order: Sequence[InstrumentedAttribute[Any]],
    *,
    limit: int,
    after: Sequence[Any] | None = None,
) -> Page[Any]:
    """One page of ``query``'s rows in ascending ``order``, those after ``after`` (the order's values of
    the previous page's last row, e.g. from ``key_of``) when given. ``order`` must end with a unique
    column. Rows come as ``session.execute`` gives them (a Row per result)."""
    check_limit(limit)
    if after is not None:
        if len(after) != len(order):
            raise ValueError("a keyset cursor has one value per order column")
        typed: list[ColumnElement[Any]] = [
            bindparam(None, value, type_=column.type)
            for column, value in zip(order, after, strict=True)
        ]
        query = query.where(tuple_(*order) > tuple_(*typed))
    rows = session.execute(query.order_by(*order).limit(limit + 1)).all()
    return Page(data=list(rows[:limit]), has_more=len(rows) > limit)
