"""Storage that says when it is broken: ``ledger verify`` runs SQLite's ``quick_check``, and the server
refuses to start on a damaged file or on a database it cannot write."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from milepost.cli import app
from milepost.kit.db import Database
from milepost.kit.storage import startup_problems
from milepost.ledger.models import Posting
from milepost.ledger.verify import verify_ledger
from tests.world import World

MILEPOST = Path(sys.executable).with_name("milepost")


def fill(world: World, deposits: int = 400) -> None:
    """Enough rows that the postings' indexes span many pages."""
    user = world.user()
    for _ in range(deposits):
        world.deposit(user, 1_000)


def damage_an_index_page(path: Path, index: str = "ix_ledger_postings_entry_id") -> int:
    """Overwrite one leaf page of ``index`` with garbage, as a failing disk or a torn write would, and
    return its page number. The page is found with SQLite's ``dbstat`` table; the write-ahead log is
    checkpointed into the file first, so the page on disk is the live one."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        pages = [
            row[0]
            for row in connection.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
                (index,),
            )
        ]
    connection.close()
    assert len(pages) >= 3, pages  # a middle leaf, not the root
    page = pages[len(pages) // 2]
    with path.open("r+b") as file:
        file.seek((page - 1) * page_size)
        file.write(bytes([0x0D, 0xFF, 0xFF, 0x7F]) + b"\xa5" * (page_size - 4))
    return int(page)


def sqlite_file(db: Database) -> Path:
    return Path(db.engine.url.database or "")


@pytest.mark.tampers
@pytest.mark.parametrize(
    "backend", ["sqlite"]
)  # quick_check is SQLite's; PostgreSQL has no such file
def test_verify_reports_a_damaged_sqlite_file(world: World, db: Database, db_url: str) -> None:
    fill(world)
    with db.read_only() as session:
        assert verify_ledger(session).ok
        postings_before = session.scalar(select(func.count()).select_from(Posting))
    db.dispose()
    page = damage_an_index_page(sqlite_file(db))

    with db.read_only() as session:
        report = verify_ledger(session)
    assert not report.ok
    assert any(problem.startswith("SQLite quick_check: ") for problem in report.problems), (
        report.problems
    )
    assert any(f"age {page}" in problem for problem in report.problems), report.problems
    assert postings_before == 800

    result = CliRunner().invoke(app, ["ledger", "verify", "--db", db_url])
    assert result.exit_code == 1, result.output
    assert "ledger OK" not in result.output
    assert "SQLite quick_check" in result.stderr
    assert "Traceback" not in result.output


@pytest.fixture
def served_file(tmp_path: Path, sqlite_template: Path) -> Iterator[Path]:
    """A migrated SQLite file of the test's own, with a little money in it."""
    path = tmp_path / "served.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    try:
        fill(World(database))
    finally:
        database.dispose()
    yield path


def serve(url: str) -> subprocess.CompletedProcess[str]:
    """``milepost serve`` as an operator runs it; a server that does start is stopped by the timeout."""
    with socket.socket() as probe:  # a free port (0 is not a port an operator can give)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return subprocess.run(
        [str(MILEPOST), "serve", "--db", url, "--port", str(port), "--no-worker"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one clear line
    assert lines[0].startswith("error: not starting on sqlite:///"), lines
    for word in words:
        assert word in lines[0], lines
    assert "Traceback" not in result.stderr + result.stdout
    assert "is running at" not in result.stdout


def test_serve_refuses_a_damaged_file(served_file: Path) -> None:
    damage_an_index_page(served_file)
    assert_refused(serve(f"sqlite:///{served_file}"), "SQLite quick_check")


def test_serve_refuses_a_file_opened_read_only(served_file: Path) -> None:
    # The URL opens the file read-only (SQLite's mode=ro), which stops writes for root too.
    url = f"sqlite:///file:{served_file}?mode=ro&uri=true"
    problems = startup_problems(Database(url))
    assert problems and "cannot be written" in problems[-1], problems
    assert_refused(serve(url), "cannot be written", "readonly")


def test_serve_refuses_an_immutable_file(served_file: Path) -> None:
    """A file the kernel will not let anyone write, root included. Tests run as root, where chmod 0444
    stops nothing; ``chattr +i`` (the immutable attribute) does, on the file systems that have it."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed")
    made = subprocess.run([chattr, "+i", str(served_file)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"this file system has no immutable files: {made.stderr.decode().strip()}")
    try:
        assert_refused(serve(f"sqlite:///{served_file}"))
    finally:
        subprocess.run([chattr, "-i", str(served_file)], check=True)


def test_a_sound_writable_file_passes_the_start_up_check(served_file: Path) -> None:
    database = Database(f"sqlite:///{served_file}")
    try:
        assert startup_problems(database) == []
        # The probe leaves nothing behind.
        with database.read_only() as session:
            tables = session.connection().exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE name = 'milepost_write_probe'"
            )
            assert tables.all() == []
    finally:
        database.dispose()


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_writable_postgres_database_passes_the_start_up_check(db: Database) -> None:
    assert startup_problems(db) == []
