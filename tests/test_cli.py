"""The ``milepost`` command line, as an operator would use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from typer.testing import CliRunner, Result

from milepost.cli import app
from milepost.demo import DEMO_PASSWORD, PEOPLE
from milepost.kit.db import Database
from milepost.ledger.models import JournalEntry
from milepost.milestones.models import Milestone
from milepost.milestones.state import MilestoneStatus
from milepost.models import Base
from milepost.projects.models import Project
from milepost.users.models import User
from milepost.wallets.models import Deposit, Payout, PayoutStatus

MILEPOST = Path(sys.executable).with_name("milepost")
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _no_stray_default_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory without MILEPOST_DATABASE_URL, so that a command that wrongly falls
    back to the default database cannot touch anything real."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MILEPOST_DATABASE_URL", raising=False)


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def milepost(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, exactly as a shell runs it."""
    return subprocess.run(
        [str(MILEPOST), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def users(url: str) -> dict[str, bool]:
    """E-mail -> is_staff of every user in the database."""
    database = Database(url)
    try:
        with database.read_only() as session:
            return dict(session.execute(select(User.email, User.is_staff)).all())
    finally:
        database.dispose()


def sqlite_url(tmp_path: Path, name: str = "x.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def test_db_upgrade_creates_the_schema_and_can_run_again(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)

    first = cli("db", "upgrade", "--db", url)
    assert first.exit_code == 0, first.output
    assert "schema is up to date" in first.output
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
        assert {"users", "milestones", "ledger_accounts", "ledger_postings"} <= tables
    finally:
        engine.dispose()

    created = cli(
        "users", "create", "--email", "a@example.com", "--name", "A", "--password", PASSWORD,
        "--db", url,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    again = cli("db", "upgrade", "--db", url)
    assert again.exit_code == 0, again.output
    assert users(url) == {"a@example.com": False}
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()


def test_users_create_makes_a_user_and_a_staff_user(db_url: str) -> None:
    plain = cli(
        "users", "create", "--email", "Ann@Example.com", "--name", "Ann", "--password", PASSWORD,
        "--db", db_url,
    )  # fmt: skip
    staff = cli(
        "users", "create", "--email", "sam@example.com", "--name", "Sam", "--password", PASSWORD,
        "--staff", "--db", db_url,
    )  # fmt: skip

    assert plain.exit_code == 0, plain.output
    assert plain.output.startswith("created user usr_")
    assert "<ann@example.com>" in plain.output
    assert staff.exit_code == 0, staff.output
    assert staff.output.startswith("created staff user usr_")
    assert users(db_url) == {"ann@example.com": False, "sam@example.com": True}


def test_refused_user_is_one_line_error_without_traceback(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    assert cli("db", "upgrade", "--db", url).exit_code == 0

    short = milepost(
        "users", "create", "--email", "b@example.com", "--name", "B", "--password", "short",
        "--db", url,
    )  # fmt: skip
    assert short.returncode == 1
    assert short.stderr == "error: Password must be at least 10 characters.\n"
    assert short.stdout == ""

    ok = ["users", "create", "--email", "b@example.com", "--name", "B", "--password", PASSWORD]
    assert cli(*ok, "--db", url).exit_code == 0
    taken = milepost(*ok, "--db", url)
    assert taken.returncode == 1
    assert taken.stderr == "error: An account with this e-mail address exists already.\n"
    assert users(url) == {"b@example.com": False}


@pytest.mark.parametrize(
    "command",
    [
        ["users", "create", "--email", "c@example.com", "--name", "C", "--password", PASSWORD],
        ["ledger", "verify"],
        ["ledger", "summary"],
    ],
)
def test_command_on_a_database_without_schema_says_to_upgrade(
    tmp_path: Path, command: list[str]
) -> None:
    url = sqlite_url(tmp_path, "empty.db")

    result = cli(*command, "--db", url)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert f"run 'milepost db upgrade --db {url}' first" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


def test_installed_command_without_schema_exits_1_without_traceback(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path, "empty.db")
    result = milepost("ledger", "verify", "--db", url)

    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.strip().endswith(f"run 'milepost db upgrade --db {url}' first")
    assert not (tmp_path / "empty.db").exists()  # looked for, not created
    assert "Traceback" not in result.stderr + result.stdout


def test_database_url_comes_from_the_environment_when_db_is_absent(tmp_path: Path) -> None:
    from_env, given = sqlite_url(tmp_path, "env.db"), sqlite_url(tmp_path, "given.db")
    env = {"MILEPOST_DATABASE_URL": from_env}
    new_user = ["users", "create", "--name", "D", "--password", PASSWORD]

    assert cli("db", "upgrade", env=env).exit_code == 0
    assert cli("db", "upgrade", "--db", given).exit_code == 0
    via_env = cli(*new_user, "--email", "env@example.com", env=env)
    via_option = cli(*new_user, "--email", "given@example.com", "--db", given, env=env)

    assert via_env.exit_code == 0, via_env.output
    assert via_option.exit_code == 0, via_option.output
    assert users(from_env) == {"env@example.com": False}
    assert users(given) == {"given@example.com": False}
    assert not (tmp_path / "milepost.db").exists()


def test_serve_refuses_to_start_on_a_bad_providers_setting(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    for value, says in (
        ("sandbox,paypal", "unknown provider(s) paypal"),
        ("manual,manual", "names a provider twice"),
        (",", "name at least one provider"),
    ):
        env = {**os.environ, "MILEPOST_PROVIDERS": value}
        result = milepost("serve", "--db", url, "--port", "1", env=env)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("error: bad setting: MILEPOST_PROVIDERS")
        assert says in result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        assert "running" not in result.stdout  # refused before it says it listens
    assert not (tmp_path / "x.db").exists()  # nor did it touch the database


def test_demo_fills_every_status_verifies_and_can_run_twice(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The production default (manual only): the demo brings its own sandbox money all the same.
    monkeypatch.delenv("MILEPOST_PROVIDERS", raising=False)
    result = cli("demo", "--db", db_url)

    assert result.exit_code == 0, result.output
    assert DEMO_PASSWORD in result.output
    for email, _name, _staff, role in PEOPLE:
        assert any(email in line and role in line for line in result.output.splitlines())
    database = Database(db_url)
    try:

        def counts() -> dict[str, object]:
            with database.read_only() as session:
                return {
                    "statuses": set(session.scalars(select(Milestone.status).distinct())),
                    "users": session.scalar(select(func.count()).select_from(User)),
                    "projects": session.scalar(select(func.count()).select_from(Project)),
                    "milestones": session.scalar(select(func.count()).select_from(Milestone)),
                    "entries": session.scalar(select(func.count()).select_from(JournalEntry)),
                }

        loaded = counts()
        assert loaded["statuses"] == set(MilestoneStatus)
        assert loaded["users"] == len(PEOPLE)
        with database.read_only() as session:
            zones = {
                email: zone for email, zone in session.execute(select(User.email, User.time_zone))
            }
        assert zones["yuki@kobe-apps.example"] == "Asia/Tokyo"  # her pages show Japan's clock
        assert zones["staff@milepost.example"] == "UTC"
        with database.read_only() as session:
            providers = set(session.scalars(select(Deposit.provider).distinct()))
            waiting = session.scalars(
                select(Payout).where(Payout.status == PayoutStatus.PENDING)
            ).all()
            assert providers == {"sandbox", "manual"}
            # The bank transfer out waiting for staff says where to send it.
            assert waiting and all(p.destination is not None for p in waiting)

        verified = cli("ledger", "verify", "--db", db_url)
        assert verified.exit_code == 0, verified.output
        assert "ledger OK" in verified.output

        second = cli("demo", "--db", db_url)
        assert second.exit_code == 0, second.output
        assert counts() == loaded
    finally:
        database.dispose()
