"""A migration that copies a table on SQLite (a batch migration: 0024 drops a foreign key of
``webhook_deliveries``, which ``webhook_attempts`` points at) keeps every row and every key, and one that
would leave a key dangling changes nothing, its revision included."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command

from milepost.kit.schema import _alembic_config

AT = "2026-01-01 00:00:00"
ROWS = [
    "INSERT INTO users (id, email, name, password_hash, is_staff, created_at) "
    "VALUES ('usr_1', 'a@example.com', 'A', 'x', 0, :at)",
    "INSERT INTO webhook_endpoints (id, owner_id, url, events, secret, created_at) "
    "VALUES ('whe_1', 'usr_1', 'https://example.com/hook', '[]', 's', :at)",
    "INSERT INTO projects (id, client_id, title, description, currency, status, paused, created_at, "
    "updated_at) VALUES ('prj_1', 'usr_1', 'P', '', 'USD', 'open', 0, :at, :at)",
    "INSERT INTO milestones (id, project_id, client_id, position, status, title, description, amount, "
    "currency, acceptance_criteria, required_evidence, exclusions, dependencies, review_period_days, "
    "release_delay_days, funded_amount, released_amount, refunded_amount, fee_amount, "
    "late_fee_amount, cancellation_requested, created_at, updated_at) VALUES ('ms_1', 'prj_1', "
    "'usr_1', 1, 'draft', 'M', '', 100, 'USD', '[]', '[]', '[]', '[]', 7, 0, 0, 0, 0, 0, 0, 0, :at, :at)",
    "INSERT INTO milestone_events (id, milestone_id, seq, actor_role, action, data, created_at, "
    "prev_hash, hash) VALUES ('evt_1', 'ms_1', 1, 'client', 'created', '{}', :at, '0', 'h')",
    "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, event_seq, payload, "
    "status, attempts, created_at) VALUES ('whd_1', 'whe_1', 'evt_1', 'milestone.created', 1, '{}', "
    "'pending', 0, :at)",
    "INSERT INTO webhook_attempts (id, delivery_id, number, attempted_at, duration_ms) "
    "VALUES ('wha_1', 'whd_1', 1, :at, 1)",
]


def _at_0023(path: Path, rows: list[str]) -> str:
    url = f"sqlite:///{path}"
    command.upgrade(_alembic_config(url), "0023")
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA foreign_keys=OFF")
        for row in rows:
            connection.execute(row, {"at": AT})
    return url


def _read(path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(query).fetchall()


def test_a_copied_table_keeps_its_rows_and_the_rows_pointing_at_it(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    url = _at_0023(path, ROWS)
    command.upgrade(_alembic_config(url), "head")
    assert _read(path, "SELECT id, event_id FROM webhook_deliveries") == [("whd_1", "evt_1")]
    assert _read(path, "SELECT id, delivery_id FROM webhook_attempts") == [("wha_1", "whd_1")]
    assert _read(path, "PRAGMA foreign_key_check") == []
    assert _read(path, "SELECT event_count, last_event_hash FROM projects") == [(0, "0" * 64)]
    command.downgrade(_alembic_config(url), "0023")
    assert _read(path, "SELECT version_num FROM alembic_version") == [("0023",)]
    assert _read(path, "SELECT id FROM webhook_attempts") == [("wha_1",)]
    command.upgrade(_alembic_config(url), "head")
    assert _read(path, "SELECT count(*) FROM project_events") == [(0,)]


def test_a_migration_that_would_leave_a_key_dangling_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    url = _at_0023(path, ROWS[-2:])  # a delivery and an attempt with no endpoint behind them
    with pytest.raises(RuntimeError, match="foreign keys pointing nowhere"):
        command.upgrade(_alembic_config(url), "head")
    assert _read(path, "SELECT version_num FROM alembic_version") == [("0023",)]
    assert _read(path, "SELECT count(*) FROM sqlite_master WHERE name = 'project_events'") == [(0,)]
    assert _read(path, "SELECT id FROM webhook_deliveries") == [("whd_1",)]
