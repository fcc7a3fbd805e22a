"""Loading one row by a query, optionally locked, or refusing with NotFound: the one home for the
``with_for_update()`` + ``populate_existing`` + "No such ..." pattern the services share."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from milepost.kit.errors import NotFound

T = TypeVar("T")


def one_or_404(
    session: Session,
    query: Select[T],
    *,
    lock: bool = False,
    missing: str,
    param: str | None = "id",
    **lock_options: Any,
) -> T:
    """The row ``query`` selects, or NotFound(``missing``). With ``lock`` the row is locked (FOR UPDATE,
    ``lock_options`` passed on, e.g. ``of=``) and re-read from the database, so that a row this unit of work
    loaded earlier shows what the lock holder committed, not a stale copy."""
    if lock:
        query = query.with_for_update(**lock_options).execution_options(populate_existing=True)
    row = session.scalar(query)
    if row is None:
        raise NotFound(missing, param=param)
    return row


# Where a unit of work keeps what it read for the rest of the action (session.info): the identity map
# holds objects only weakly, and without a reference a project or a party read with the locked row would
# be read again, each in a round trip of its own, by what comes after the action (the event subscribers,
# the response).
_KEPT = "milepost_kept"


def keep(session: Session, *objects: object) -> None:
    """Hold ``objects`` for the rest of the unit of work (see ``_KEPT``)."""
    session.info.setdefault(_KEPT, []).extend(obj for obj in objects if obj is not None)
