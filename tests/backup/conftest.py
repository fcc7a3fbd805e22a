"""Backups are taken of a real server's database and files (tests/api/conftest.py), and restored into a
fresh place: a new SQLite file, or a new PostgreSQL database on the same server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import psycopg
import pytest

from tests.api.conftest import base_url, settings, sign_up

__all__ = ["base_url", "settings", "sign_up"]

MILEPOST = Path(sys.executable).with_name("milepost")
_numbers = count(1)


def milepost(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``milepost`` command as an operator would, in its own process."""
    return subprocess.run(
        [str(MILEPOST), *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def fresh_url(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> Iterator[Callable[[], str]]:
    """fresh_url() -> the URL of a database that does not exist yet (SQLite) or is empty (PostgreSQL)."""
    made: list[str] = []
    server = request.getfixturevalue("postgres_url") if backend == "postgres" else ""

    def make() -> str:
        number = next(_numbers)
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'restored-{number}' / 'milepost.db'}"
        name = f"milepost_restore_{os.getpid()}_{number}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{server.rpartition('/')[0]}/{name}"

    yield make
    if made:
        with psycopg.connect(server, autocommit=True) as admin:
            for name in made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
