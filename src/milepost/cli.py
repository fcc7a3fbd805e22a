"""The ``milepost`` command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy import inspect

from milepost.kit.db import DEFAULT_DATABASE_URL, Database, upgrade_schema
from milepost.kit.errors import MilepostError
from milepost.ledger.cli import statement_command

app = typer.Typer(
    help="Milepost: escrow-backed milestone payments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(ledger_app, name="ledger")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=f"Database URL (else MILEPOST_DATABASE_URL, else {DEFAULT_DATABASE_URL}).",
        show_default=False,
    ),
]


def database_url(db: str | None) -> str:
    return db or os.environ.get("MILEPOST_DATABASE_URL") or DEFAULT_DATABASE_URL


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


@contextmanager
def open_database(db: str | None, *, upgrade: bool = False) -> Iterator[Database]:
    """Open the database, creating the schema first if asked; refuse one that has no schema."""
    url = database_url(db)
    if upgrade:
        upgrade_schema(url)
    database = Database(url)
    try:
        if not upgrade and not inspect(database.engine).has_table("milestones"):
            raise fail(f"the database at {url} has no schema yet: run 'milepost db upgrade' first")
        yield database
    except MilepostError as error:
        raise fail(error.message) from None
    finally:
        database.dispose()


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema to the newest version."""
    upgrade_schema(database_url(db))
    typer.echo("schema is up to date")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="E-mail address (the login).")],
    name: Annotated[str, typer.Option(help="Display name.")],
    password: Annotated[
        str,
        typer.Option(
            help="At least 10 characters; asked for (hidden) when not given.",
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
        ),
    ],
    staff: Annotated[
        bool, typer.Option("--staff", help="Platform staff (mediates disputes).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Create a user."""
    from milepost.users.service import create_user

    with open_database(db) as database, database.unit_of_work() as session:
        user = create_user(session, email=email, name=name, password=password, is_staff=staff)
        typer.echo(f"created {'staff ' if staff else ''}user {user.id} <{user.email}>")


@ledger_app.command("verify")
def ledger_verify(db: DbOption = None) -> None:
    """Recompute every balance from the postings and check every invariant. Exit 1 on any problem."""
    from milepost.ledger.verify import verify_ledger

    with open_database(db) as database, database.read_only() as session:
        report = verify_ledger(session)
    typer.echo(
        f"checked {report.accounts} accounts, {report.entries} entries, "
        f"{report.milestones} milestones, {report.events} events"
    )
    if report.ok:
        typer.echo("ledger OK")
        return
    typer.echo(f"ledger has {len(report.problems)} problem(s):", err=True)
    for problem in report.problems:
        typer.echo(f"  - {problem}", err=True)
    raise typer.Exit(code=1)


@ledger_app.command("summary")
def ledger_summary(db: DbOption = None) -> None:
    """Print the money on the platform: wallets, escrow, fees and the outside world, per currency."""
    from milepost.ledger.summary import summarise

    with open_database(db) as database, database.read_only() as session:
        for line in summarise(session):
            typer.echo(line)


def refuse_broken_storage(url: str) -> None:
    """Stop before serving from a database that is damaged (SQLite's quick_check) or cannot be written:
    otherwise the server would start and answer every write with a 500, or keep writing to a damaged
    file."""
    from milepost.kit.storage import startup_problems

    database = Database(url)
    try:
        problems = startup_problems(database)
    finally:
        database.dispose()
    if problems:
        raise fail(f"not starting on {url}: " + "; ".join(problems))


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    db: DbOption = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run background work in this process.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Server processes (PostgreSQL: one per core).")] = 1,
) -> None:
    """Run the HTTP API, with the background worker (webhooks, e-mail, reminders, late fees, automatic
    approval and release, dispute deadlines) unless --no-worker."""
    import uvicorn

    url = database_url(db)
    refuse_broken_storage(url)
    if url.startswith("sqlite"):
        upgrade_schema(url)  # nothing to install: a fresh SQLite file gets its schema on start
    # Server processes build their settings from the environment (app.app_from_environment).
    os.environ["MILEPOST_DATABASE_URL"] = url
    os.environ["MILEPOST_RUN_WORKER"] = "false" if no_worker else "true"
    typer.echo(
        f"Milepost is running at http://{host}:{port}  (API docs: http://{host}:{port}/docs)"
    )
    uvicorn.run(
        "milepost.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.command("tick")
def tick(
    now: Annotated[
        str | None,
        typer.Option(
            help="The moment to run as (ISO 8601; without an offset, UTC). Default: the current time.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Run all due time-driven work once (reminders, late fees, auto-approval, delayed releases, dispute
    deadlines, e-mails and webhooks) and print what was done. Running it again for the same moment does
    nothing twice. Exit 1 if any item failed (it is tried again on the next run)."""
    from milepost.kit.time import parse_instant, utcnow
    from milepost.schedule.service import run_due
    from milepost.settings import Settings

    try:
        moment = utcnow() if now is None else parse_instant(now)
    except ValueError:
        raise fail(f"--now must be an ISO 8601 date and time, not {now!r}") from None
    with open_database(db) as database:
        report = run_due(database, Settings(database_url=database_url(db)), moment)
    for line in report.lines():
        typer.echo(line)
    if report.failed:
        raise typer.Exit(code=1)


@app.command("worker")
def worker(
    db: DbOption = None,
    interval: Annotated[
        float, typer.Option(help="Seconds between runs of the due work.", min=0.1)
    ] = 5.0,
) -> None:
    """Run the due time-driven work every few seconds until stopped (SIGTERM or Ctrl-C). Any number of
    workers may share one PostgreSQL database."""
    import signal
    import threading

    from milepost.schedule.service import TickReport
    from milepost.schedule.worker import run_until_stopped
    from milepost.settings import Settings

    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def show(report: TickReport) -> None:
        if not report.nothing_done:
            for line in report.lines():
                typer.echo(line)

    with open_database(db) as database:
        typer.echo(f"worker running every {interval:g}s on {database_url(db)}; Ctrl-C to stop")
        run_until_stopped(
            database,
            Settings(database_url=database_url(db)),
            stop,
            interval=interval,
            on_report=show,
        )
    typer.echo("worker stopped")


@app.command("demo")
def demo(db: DbOption = None) -> None:
    """Fill a database with realistic demo projects (creates the schema if needed)."""
    from milepost.demo import DEMO_PASSWORD, load_demo
    from milepost.ledger.summary import summarise

    with open_database(db, upgrade=True) as database:
        people = load_demo(database)
        with database.read_only() as session:
            lines = summarise(session)
    typer.echo(f"demo data loaded into {database_url(db)}")
    typer.echo(f"sign in as any of these with the password {DEMO_PASSWORD!r}:")
    for email, role in people:
        typer.echo(f"  {email:32} {role}")
    for line in lines:
        typer.echo(line)


app.command("statement")(statement_command)


def main() -> None:
    """Console entry point: expected errors in one line; anything unexpected without a stack trace
    unless MILEPOST_DEBUG is set."""
    try:
        app()
    except MilepostError as error:
        typer.echo(f"error: {error.message}", err=True)
        sys.exit(1)
    except Exception as error:
        if os.environ.get("MILEPOST_DEBUG"):
            raise
        typer.echo(
            f"internal error: {type(error).__name__}: {error} (set MILEPOST_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(2)
