"""Milepost behind Debian's pgbouncer in transaction-pooling mode, on loopback, as an operator scales out.

The set-up starts pgbouncer like PostgreSQL: a fresh database of its own (migrated directly, as the
production guide says), a pgbouncer.ini with ``pool_mode = transaction`` listening on a free loopback port,
a small pool (so that clients share server connections, and a statement prepared on one is missing on the
next), and pgbouncer stopped at the end. When /usr/sbin/pgbouncer is missing, the set-up installs Debian's
package with apt-get (as root); if it still cannot be had, these tests are skipped with the reason, except
in CI (CI=true), where that is a failure. pgbouncer refuses to run as root: as root it is started with
``-u`` (the postgres user, else nobody).

``MILEPOST_TEST_POOLER=none`` runs these tests as Milepost runs without ``MILEPOST_DATABASE_POOLER``, to
see them fail (prepared statements that do not exist, claims that stay taken or look free).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from milepost.kit.db import Database, Pooler
from milepost.kit.schema import upgrade_schema
from milepost.ledger.verify import verify_ledger
from tests.api.conftest import base_url, settings, sign_up  # noqa: F401 (fixtures)
from tests.conftest import _postgres_admin_url, _with_database, empty_tables
from tests.system import require_program

PGBOUNCER = "/usr/sbin/pgbouncer"
# How Milepost is told about the pooler in these tests: "transaction", unless shown what happens without.
POOLER: Pooler = "none" if os.environ.get("MILEPOST_TEST_POOLER") == "none" else "transaction"
# Server connections per database and user: few, so that transactions of different clients share them.
# Each Milepost process keeps one of them for its claim mark (kit/liveness.py), the rest are shared.
POOL_SIZE = 6


@dataclass(frozen=True)
class PgBouncer:
    url: str  # through pgbouncer (transaction pooling)
    direct_url: str  # the same database, straight to PostgreSQL
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as() -> list[str]:
    """pgbouncer will not run as root: then it is told to switch to an unprivileged user."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["-u", name]
    return []


def _config(folder: Path, port: int, host: str, server_port: int, database: str, user: str) -> Path:
    (folder / "userlist.txt").write_text(f'"{user}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        "\n".join(
            [
                "[databases]",
                f"milepost = host={host} port={server_port} dbname={database} user={user}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {folder / 'userlist.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {POOL_SIZE}",
                "max_client_conn = 500",
                # A client that cannot get a server connection fails in seconds rather than hanging.
                "query_wait_timeout = 20",
                # As many operators have it (drivers send these); Milepost itself sends neither.
                "ignore_startup_parameters = extra_float_digits, options",
                "",
            ]
        )
    )
    for path in (folder, folder / "userlist.txt", ini):
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable by the user pgbouncer switches to
    return ini


@pytest.fixture(scope="session")
def pgbouncer() -> Iterator[PgBouncer]:
    admin_url, reason = _postgres_admin_url()
    if admin_url is None:
        pytest.skip(reason)
    binary = require_program(PGBOUNCER, "pgbouncer", "the pooler tests")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"milepost_bouncer_{worker}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    direct_url = _with_database(admin_url, name)
    upgrade_schema(direct_url)  # migrations run straight to PostgreSQL, never through the pooler

    server = psycopg.conninfo.conninfo_to_dict(admin_url)
    folder = Path(tempfile.mkdtemp(prefix="milepost-pgbouncer-"))
    port = _free_port()
    user = str(server.get("user") or "postgres")
    ini = _config(
        folder,
        port,
        str(server.get("host") or "127.0.0.1"),
        int(server.get("port") or 5432),
        name,
        user,
    )
    log = folder / "pgbouncer.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [binary, *_run_as(), str(ini)], stdout=output, stderr=subprocess.STDOUT
        )
    url = f"postgresql://{user}@127.0.0.1:{port}/milepost"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2, prepare_threshold=None) as probe:
                    probe.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("pgbouncer did not start:\n" + log.read_text()) from None
                time.sleep(0.05)
        yield PgBouncer(url=url, direct_url=direct_url, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def db(pgbouncer: PgBouncer) -> Iterator[Database]:
    """The pgbouncer database, empty, through pgbouncer in transaction mode; the ledger must verify when
    the test ends."""
    database = Database(pgbouncer.url, POOLER)
    empty_tables(database)
    yield database
    try:
        with database.read_only() as session:
            report = verify_ledger(session)
        assert report.ok, "ledger does not verify after the test:\n" + "\n".join(report.problems)
    finally:
        database.dispose()
