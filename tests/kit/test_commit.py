"""A failure of COMMIT itself: refused (rolled back, say so) versus unanswered (outcome unknown).

The unanswered kind needs a network hop between the server and the database, so it is tested against
PostgreSQL through a fault-injecting proxy (tests/faults). SQLite has no such hop; what it does have is a
COMMIT that refuses: a deferred foreign key checked only at COMMIT. That refusal is definite, so it must
not be reported as an unknown outcome, and nothing may be left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from milepost.kit.errors import OutcomeUnknown
from tests.conftest import make_database


def test_a_commit_that_sqlite_refuses_is_a_definite_failure_not_an_unknown_outcome(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from milepost.projects.models import Project

    db = make_database(request, "sqlite", tmp_path)
    try:
        with pytest.raises(IntegrityError) as raised, db.unit_of_work() as session:
            session.execute(text("PRAGMA defer_foreign_keys = ON"))
            session.execute(
                text(
                    "INSERT INTO projects (id, client_id, title, description, currency, status,"
                    " paused, created_at, updated_at) VALUES ('prj_x', 'usr_missing', 't', '',"
                    " 'USD', 'open', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        assert not isinstance(raised.value, OutcomeUnknown)
        assert "FOREIGN KEY" in str(raised.value)
        with db.read_only() as session:
            assert session.scalar(select(func.count()).select_from(Project)) == 0
        # The database is still usable afterwards.
        with db.unit_of_work() as session:
            session.execute(text("SELECT 1"))
    finally:
        db.dispose()
