"""The ``milepost`` command line."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from milepost.cli_options import DbOption
from milepost.cli_support import (
    check_before_start,
    database_url,
    fail,
    load_settings,
    open_database,
    refuse_unwritable_files_dir,
    url_in_use,
)
from milepost.kit.db import DEFAULT_DATABASE_URL
from milepost.kit.db_failures import explain_failure, shown_url
from milepost.kit.errors import MilepostError
from milepost.kit.schema import upgrade_schema
from milepost.ledger.cli import statement_command

if TYPE_CHECKING:
    import socket


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


@app.callback()
def options(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A file of MILEPOST_X=value lines (else MILEPOST_CONFIG_FILE); the environment wins "
            "over it. Give it before the command: milepost --config FILE serve.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Milepost: escrow-backed milestone payments."""
    from milepost.settings import CONFIG_FILE_VARIABLE, config_file_problem

    if config is not None:
        # In the environment, so that every Settings() reads it: the server processes serve starts too.
        os.environ[CONFIG_FILE_VARIABLE] = str(config.absolute())
    problem = config_file_problem()
    if problem is not None:
        raise fail(problem)


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
        str | None,
        typer.Option(
            help="At least 10 characters. When not given: asked for (hidden) on a terminal, else read "
            'from the first line of standard input (echo "$PASSWORD" | milepost users create ...).',
            show_default=False,
        ),
    ] = None,
    staff: Annotated[
        bool, typer.Option("--staff", help="Platform staff (mediates disputes).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Create a user."""
    from milepost.users.service import create_user

    if password is None:
        if sys.stdin.isatty():
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise fail("give the password with --password, or on the first line of stdin")
    with open_database(db) as database, database.unit_of_work() as session:
        user = create_user(session, email=email, name=name, password=password, is_staff=staff)
        typer.echo(f"created {'staff ' if staff else ''}user {user.id} <{user.email}>")


WorkersOption = Annotated[
    int | None,
    typer.Option(
        help="Processes that check the hashes and MACs of a large ledger (default: one per core).",
        min=1,
    ),
]


@ledger_app.command("verify")
def ledger_verify(db: DbOption = None, workers: WorkersOption = None) -> None:
    """Recompute every balance from the postings and check every invariant. Exit 1 on any problem."""
    from milepost.kit.macs import ledger_keys
    from milepost.kit.time import utcnow
    from milepost.ledger.cli import verify_progress
    from milepost.ledger.verify import record_verification, verify_ledger

    keys = ledger_keys(load_settings(db))
    started_at = utcnow()
    with open_database(db) as database:
        with database.read_only() as session, verify_progress() as progress:
            report = verify_ledger(session, keys, progress, workers=workers or os.cpu_count() or 1)
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

    keys = ledger_keys(load_settings(db))
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


PortOption = Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)]


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: PortOption = 8000,
    db: DbOption = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run background work in this process.")
    ] = False,
    workers: Annotated[
        int, typer.Option(help="Server processes (PostgreSQL: one per core).", min=1)
    ] = 1,
) -> None:
    """Run the HTTP API, with the background worker (webhooks, e-mail, reminders, late fees, automatic
    approval and release, dispute deadlines) unless --no-worker. The schema must be at the newest
    version ('milepost db upgrade'). SIGTERM stops it gracefully: requests in flight are finished, new
    connections are refused, and the background work ends its round; exit code 0."""
    import uvicorn

    from milepost.settings import MAKE_SECRET_KEY

    settings = check_before_start(db)
    refuse_unwritable_files_dir(settings)
    if workers > 1 and not settings.secret_key_is_persistent:
        raise fail(
            f"--workers {workers} needs MILEPOST_SECRET_KEY (or MILEPOST_SECRET_KEY_FILE), the same "
            "in every process, or each would refuse the others' forms; make one with: "
            f"{MAKE_SECRET_KEY}"
        )
    # Server processes build their settings from the environment (app.app_from_environment).
    os.environ["MILEPOST_DATABASE_URL"] = settings.database_url
    os.environ["MILEPOST_RUN_WORKER"] = "false" if no_worker else "true"
    sock = _listen(host, port)
    if not settings.secret_key_is_persistent:
        typer.echo(
            "note: MILEPOST_SECRET_KEY is not set, so a key is made for this run: forms open in "
            "browsers are refused after a restart",
            err=True,
        )
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"Milepost is running at http://{shown}:{port}  (API docs: http://{shown}:{port}/docs)"
    )
    from milepost.kit.metrics import prepare_for_workers

    prepare_for_workers(workers)  # /metrics sums every server process's counters (kit/metrics.py)
    config = uvicorn.Config(
        "milepost.app:app_from_environment",
        factory=True,
        workers=workers,
        log_level="warning",
        access_log=False,
        # Forwarded headers are believed from MILEPOST_TRUSTED_PROXIES only (kit/proxies.py), not from
        # uvicorn's default of 127.0.0.1.
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
        return
    # uvicorn re-raises the signal that stopped it once it has shut down; with a handler in place that
    # is a no-op, and a stop by SIGTERM or Ctrl-C ends with exit code 0.
    import signal

    for stopping in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stopping, lambda _signum, _frame: None)
    server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(code=1)  # the app did not start; uvicorn has said why


def _listen(host: str, port: int) -> socket.socket:
    """Bind and listen on host:port, so that the banner is printed only once connections are accepted;
    one line when that is not possible."""
    import errno
    import socket

    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise fail(f"cannot listen on {host!r}: no such address (--host)") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            message = (
                f"cannot listen on {host}:{port}: the port is already in use (another server?); "
                "stop it or choose another --port"
            )
        elif error.errno == errno.EACCES:
            message = (
                f"cannot listen on {host}:{port}: permission denied (ports below 1024 need "
                "privileges; listen on a higher port behind the reverse proxy)"
            )
        elif error.errno == errno.EADDRNOTAVAIL:
            message = f"cannot listen on {host}:{port}: {host} is not an address of this machine"
        else:
            message = f"cannot listen on {host}:{port}: {error.strerror}"
        raise fail(message) from None
    sock.set_inheritable(True)
    return sock


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
    settings = load_settings(db)
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
    workers may share one PostgreSQL database. It checks the settings and the schema as serve does.
    Stopped, it finishes the round it is in (whatever it has claimed is committed or rolled back, never
    left held), lets go of its process mark and exits with code 0."""
    import signal
    import threading

    from milepost.kit import liveness
    from milepost.schedule.service import TickReport
    from milepost.schedule.worker import run_until_stopped

    settings = check_before_start(db)
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
        typer.echo(
            f"worker running every {interval:g}s on {shown_url(database.url)}; Ctrl-C to stop"
        )
        try:
            run_until_stopped(database, settings, stop, interval=interval, on_report=show)
        finally:
            liveness.release_marks()
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
    """Console entry point: expected errors in one line; a database that cannot be used in one sentence
    with the fix; anything unexpected without a stack trace unless MILEPOST_DEBUG is set."""
    from sqlalchemy.exc import DBAPIError

    try:
        app()
    except MilepostError as error:
        typer.echo(f"error: {error.message}", err=True)
        sys.exit(1)
    except DBAPIError as error:
        explained = explain_failure(error, url_in_use() or DEFAULT_DATABASE_URL)
        if explained is None or os.environ.get("MILEPOST_DEBUG"):
            _unexpected(error)
        typer.echo(f"error: {explained}", err=True)
        sys.exit(1)
    except PermissionError as error:
        if os.environ.get("MILEPOST_DEBUG"):
            raise
        where = f" on {error.filename}" if error.filename else ""
        typer.echo(
            f"error: permission denied{where}: run as a user that may write there, or change its "
            "owner or mode",
            err=True,
        )
        sys.exit(1)
    except Exception as error:
        _unexpected(error)


def _unexpected(error: Exception) -> None:
    if os.environ.get("MILEPOST_DEBUG"):
        raise error
    typer.echo(
        f"internal error: {type(error).__name__}: {error} (set MILEPOST_DEBUG=1 for details)",
        err=True,
    )
    sys.exit(2)
