"""/readyz: ready only with the database reachable, the schema at this release's head and a scheduler's
heartbeat fresh; otherwise 503 naming the check that failed. /healthz only says the process answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
from alembic import command
from alembic.config import Config
from sqlalchemy import update

from milepost.kit.db import Database
from milepost.kit.schema import head_revision, migration_scripts
from milepost.kit.time import utcnow
from milepost.schedule.heartbeat import Heartbeat
from milepost.schedule.models import WorkerHeartbeat
from milepost.settings import Settings
from tests.api.conftest import LiveServer


def _alembic(db: Database) -> Config:
    import milepost

    config = Config()
    config.set_main_option("script_location", str(Path(milepost.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def test_ready_with_a_fresh_heartbeat(base_url: str, db: Database) -> None:
    Heartbeat(db, role="worker", interval=5).beat()
    ready = httpx.get(f"{base_url}/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["schema"] == {
        "ok": True,
        "revision": head_revision(),
        "head": head_revision(),
    }
    worker = body["checks"]["worker"]
    assert worker["ok"] is True and 0 <= worker["heartbeat_age_seconds"] < 5
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}


def test_no_scheduler_anywhere_is_not_ready_and_says_so(base_url: str) -> None:
    # The server runs with run_worker off and no `milepost worker` has ever reported.
    ready = httpx.get(f"{base_url}/readyz")
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"
    body = ready.json()
    assert (body["status"], body["failed"]) == ("unavailable", "worker")
    assert "no scheduler has reported" in body["reason"] and "milepost worker" in body["reason"]
    assert body["checks"]["database"]["ok"] and body["checks"]["schema"]["ok"]
    assert body["checks"]["worker"]["ok"] is False
    assert httpx.get(f"{base_url}/healthz").status_code == 200  # alive all the same


def test_a_stale_heartbeat_is_not_ready(base_url: str, db: Database, settings: Settings) -> None:
    Heartbeat(db, role="worker", interval=5).beat()
    assert httpx.get(f"{base_url}/readyz").status_code == 200
    with db.unit_of_work() as session:
        session.execute(update(WorkerHeartbeat).values(beat_at=utcnow() - timedelta(minutes=5)))
    ready = httpx.get(f"{base_url}/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["failed"] == "worker"
    assert "last reported 300 seconds ago" in body["reason"], body
    assert body["checks"]["worker"]["max_age_seconds"] == settings.heartbeat_max_age_seconds


def test_a_schema_behind_the_migrations_is_not_ready(base_url: str, db: Database) -> None:
    Heartbeat(db, role="worker", interval=5).beat()
    config = _alembic(db)
    command.downgrade(config, "-1")  # a real downgrade: the schema of the release before
    try:
        ready = httpx.get(f"{base_url}/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["failed"] == "schema"
        assert body["checks"]["schema"] == {
            "ok": False,
            "reason": body["reason"],
            "revision": migration_scripts().get_revision(head_revision()).down_revision,
            "head": head_revision(),
        }
        assert "run 'milepost db upgrade'" in body["reason"]
        assert "worker" not in body["checks"]  # not asked of a schema without its table
    finally:
        command.upgrade(config, "head")
    Heartbeat(db, role="worker", interval=5).beat()  # the downgrade took the heartbeats with it
    assert httpx.get(f"{base_url}/readyz").status_code == 200


def test_the_scheduler_inside_serve_keeps_the_server_ready(db: Database, tmp_path: Path) -> None:
    settings = Settings(
        providers="sandbox,manual",
        files_dir=str(tmp_path / "files"),
        run_worker=True,
        schedule_interval_seconds=0.2,
        heartbeat_max_age_seconds=5,
    )
    with LiveServer(db, settings, lifespan=True) as url:
        deadline = time.monotonic() + 20
        while (ready := httpx.get(f"{url}/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.1)
    with db.read_only() as session:
        beats = session.query(WorkerHeartbeat).all()
    assert [(beat.role, beat.pid) for beat in beats] == [("serve", os.getpid())]


def test_a_standalone_worker_makes_a_server_without_one_ready(
    base_url: str, db: Database, db_url: str
) -> None:
    assert httpx.get(f"{base_url}/readyz").status_code == 503
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "milepost"),
            "worker",
            "--db",
            db_url,
            "--interval",
            "0.2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "MILEPOST_PROVIDERS": "sandbox,manual"},
    )
    try:
        deadline = time.monotonic() + 30
        while (ready := httpx.get(f"{base_url}/readyz")).status_code != 200:
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.1)
        with db.read_only() as session:
            beats = session.query(WorkerHeartbeat).all()
        assert [(beat.role, beat.pid) for beat in beats] == [("worker", worker.pid)]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
