"""``milepost statement``: a user's CSV statement on standard output (the same CSV as
``GET /v1/ledger/entries?format=csv``); and the progress bar ``milepost ledger verify`` shows on a
terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import func, select

from milepost.cli_options import DbOption
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import NotFound, ValidationFailed
from milepost.ledger.statement import statement, to_csv
from milepost.users.models import User

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from milepost.ledger.verify import Progress as VerifyProgress


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return validate.date_in_range(date.fromisoformat(value), option)
    except ValueError:
        raise typer.BadParameter(
            f"must be a date as YYYY-MM-DD, not {value!r}", param_hint=option
        ) from None
    except ValidationFailed:
        raise typer.BadParameter(
            f"must be on or before {validate.LAST_DATE.isoformat()}, not {value}", param_hint=option
        ) from None


def statement_command(
    user: Annotated[str, typer.Option("--user", help="The user's e-mail address or id.")],
    start: Annotated[
        str | None,
        typer.Option("--from", help="First day (YYYY-MM-DD, UTC), included. Default: the start."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Last day (YYYY-MM-DD, UTC), included. Default: no end (the newest posting).",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Print a user's ledger statement as CSV: their postings, oldest first, with a running balance per
    account (it starts from the balance before --from and ends at the balance after --to)."""
    from milepost.cli_support import open_database

    first, last = _day(start, "--from"), _day(end, "--to")
    with open_database(db) as database, database.read_only() as session:
        found = session.scalar(
            select(User).where((User.id == user) | (func.lower(User.email) == user.lower()))
        )
        if found is None:
            raise NotFound(f"No user with the e-mail address or id {user!r}.")
        lines = statement(Context(session, None), found.id, start=first, end=last)
    typer.echo(to_csv(lines), nl=False)


class _Bar:
    """``ledger verify``'s stages, one Rich progress bar each: a stage whose size is not known
    beforehand spins until it ends, and shows as complete once the next one starts."""

    def __init__(self, bars: Progress) -> None:
        self._bars = bars
        self._task: TaskID | None = None
        self._rows = 0

    def stage(self, name: str, total: int | None = None) -> None:
        self.finish()
        self._task, self._rows = self._bars.add_task(name, total=total), 0

    def advance(self, rows: int) -> None:
        self._rows += rows
        if self._task is not None:
            self._bars.update(self._task, completed=self._rows)

    def finish(self) -> None:
        if self._task is not None:
            self._bars.update(self._task, total=self._rows or 1, completed=self._rows or 1)


@contextmanager
def verify_progress() -> Iterator[VerifyProgress | None]:
    """A progress bar on standard error while ``ledger verify`` runs, when that is a terminal (a log or
    a pipe gets only the verdict); None otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bars:
        bar = _Bar(bars)
        yield bar
        bar.finish()
