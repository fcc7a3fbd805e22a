"""The ``milepost`` command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated

import typer
from sqlalchemy import inspect

from milepost.kit.db import DEFAULT_DATABASE_URL, Database, pooler_from_environment, upgrade_schema
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
    try:
        pooler = pooler_from_environment()
    except ValueError as error:
        raise fail(str(error)) from None
    if upgrade:
        upgrade_schema(url)
    database = Database(url, pooler)
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
    from milepost.kit.macs import ledger_keys
    from milepost.kit.time import utcnow
    from milepost.ledger.verify import record_verification, verify_ledger
    from milepost.settings import Settings

    keys = ledger_keys(Settings())
    started_at = utcnow()
    with open_database(db) as database:
        with database.read_only() as session:
            report = verify_ledger(session, keys)
        # The verdict below stands either way; only its record for /metrics would be missing.
        try:
            record_verification(database, report, started_at=started_at)
        except Exception as error:
            reason = (str(getattr(error, "orig", None) or error).strip().splitlines() or ["?"])[0]
            typer.echo(
                f"warning: this run could not be recorded for the metrics: {reason}", err=True
            )
    typer.echo(
        f"checked {report.accounts} accounts, {report.entries} entries, "
        f"{report.milestones} milestones, {report.events} events"
        + (f"; keyed MACs with ledger key {keys.current_id!r}" if report.macs_checked else "")
    )
    for note in report.notes:
        typer.echo(f"note: {note}")
    if report.ok:
        typer.echo("ledger OK")
        return
    typer.echo(f"ledger has {len(report.problems)} problem(s):", err=True)
    for problem in report.problems:
        typer.echo(f"  - {problem}", err=True)
    raise typer.Exit(code=1)


@ledger_app.command("sign")
def ledger_sign(
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Also re-sign rows signed with a retired key (MILEPOST_LEDGER_OLD_KEYS), so that "
            "key can be removed afterwards.",
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Sign the rows written before MILEPOST_LEDGER_KEY was set with keyed MACs (run it once, after
    setting the key on every server). Rows that fail their hash or MAC are left unsigned and listed.

    It trusts the rows it signs: run 'milepost ledger verify' first, and sign only a ledger you trust."""
    from milepost.kit.macs import ledger_keys
    from milepost.ledger.signing import sign_ledger
    from milepost.settings import Settings

    keys = ledger_keys(Settings())
    if not keys.configured:
        raise fail("MILEPOST_LEDGER_KEY is not set: there is no key to sign with")
    with open_database(db) as database:
        report = sign_ledger(database, keys, rotate=rotate)
    typer.echo(
        f"signed {report.entries_signed} entries and {report.events_signed} events "
        f"with ledger key {keys.current_id!r}"
    )
    if report.refused:
        typer.echo(f"{len(report.refused)} left unsigned:", err=True)
        for line in report.refused:
            typer.echo(f"  - {line}", err=True)
        raise typer.Exit(code=1)


@ledger_app.command("summary")
def ledger_summary(db: DbOption = None) -> None:
    """Print the money on the platform: wallets, escrow, fees and the outside world, per currency."""
    from milepost.ledger.summary import summarise

    with open_database(db) as database, database.read_only() as session:
        for line in summarise(session):
            typer.echo(line)


def _check_settings() -> None:
    """Refuse to start on bad MILEPOST_* settings, in one line each, before anything listens: a server
    that starts and then fails every request (or, worse, runs with a provider nobody meant) helps no one."""
    from pydantic import ValidationError

    from milepost.settings import Settings

    try:
        Settings()
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            typer.echo(f"error: bad setting{f' ({where})' if where else ''}: {message}", err=True)
        raise typer.Exit(1) from None


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

    _check_settings()
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
    from milepost.kit.metrics import prepare_for_workers

    prepare_for_workers(workers)  # /metrics sums every server process's counters (kit/metrics.py)
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
            help="The moment to run as (ISO 8601; without an offset, UTC). Default: the current time. "
            "A moment ahead of the real clock needs --simulate (or --dry-run).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print what is due at that moment and change nothing: no rows, e-mails or webhooks.",
        ),
    ] = False,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Allow a --now ahead of the real clock: the future's work is done for real on this "
            "database (for a copy or a test database).",
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Run all due time-driven work once (reminders, late fees, auto-approval, delayed releases, dispute
    deadlines, e-mails and webhooks) and print what was done. Running it again for the same moment does
    nothing twice. Exit 1 if any item failed (it is tried again on the next run); exit 2 if --now is in
    the future without --simulate."""
    from milepost.kit.time import parse_instant, utcnow
    from milepost.schedule.service import ahead_of_clock, preview_due, run_due
    from milepost.settings import Settings

    try:
        moment = utcnow() if now is None else parse_instant(now)
    except ValueError:
        raise fail(f"--now must be an ISO 8601 date and time, not {now!r}") from None
    ahead = None if dry_run else ahead_of_clock(moment)
    if ahead is not None and not simulate:
        typer.echo(
            f"error: --now {moment.isoformat()} is {_duration(ahead)} ahead of the real clock: "
            "running it would do the future's work for real on this database (release money, add "
            "late fees, send reminders and escalations, write audit events dated then). "
            "Use --dry-run to see what is due then, or --simulate on a copy of the database.",
            err=True,
        )
        raise typer.Exit(code=2)
    settings = Settings(database_url=database_url(db))
    with open_database(db) as database:
        if dry_run:
            report = preview_due(database, settings, moment)
        else:
            if ahead is not None:
                # Said before it is done, on stderr, so that stdout stays the report of what was done.
                typer.echo(
                    f"simulating {moment.isoformat()}, {_duration(ahead)} ahead of the real clock: "
                    f"doing the future's work for real on {database_url(db)}:",
                    err=True,
                )
                for line in preview_due(database, settings, moment).lines():
                    typer.echo(f"  {line}", err=True)
            report = run_due(database, settings, moment)
    for line in report.lines():
        typer.echo(line)
    if report.failed:
        raise typer.Exit(code=1)


def _duration(span: timedelta) -> str:
    """A span for people: "3 days 4 hours", "25 minutes"."""
    days, seconds = span.days, span.seconds
    parts = [(days, "day"), (seconds // 3600, "hour"), (seconds % 3600 // 60, "minute")]
    shown = [f"{count} {unit}{'s' if count != 1 else ''}" for count, unit in parts if count][:2]
    return " ".join(shown) or f"{seconds} seconds"


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


def _add_backup_commands() -> None:
    from milepost.backup.cli import backup_command, restore_command

    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


_add_backup_commands()


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
