"""``milepost tick`` as an operator runs it, and several workers at once over the same due work."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from milepost.audit.models import MilestoneEvent
from milepost.cli import app
from milepost.kit.context import Context
from milepost.kit.time import utcnow
from milepost.ledger.models import EntryKind, JournalEntry
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.milestones.state import MilestoneStatus
from milepost.notifications.models import OutgoingEmail
from milepost.users.models import User
from milepost.webhooks import service as webhooks
from milepost.webhooks.models import WebhookDelivery
from tests.schedule.helpers import at, events
from tests.schedule.test_dry_run import every_row
from tests.world import World

MILEPOST = Path(sys.executable).with_name("milepost")


@pytest.fixture(autouse=True)
def _in_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MILEPOST_DATABASE_URL", raising=False)


def test_tick_simulating_the_future_says_so_then_does_it_and_a_second_run_does_nothing(
    world: World, db_url: str
) -> None:
    client, _freelancer, submitted = world.submitted(100_000)
    overdue = world.milestone(
        client, world.project(client), 50_000, fund_by="2030-03-01", now=at(date(2030, 1, 1))
    )
    assert submitted.review_due_at is not None
    now = max(submitted.review_due_at, at(date(2030, 3, 1))) + timedelta(hours=1)
    command = ["tick", "--now", now.isoformat(), "--simulate", "--db", db_url]

    first = CliRunner().invoke(app, command)

    assert first.exit_code == 0, first.output
    summary = f"{now.isoformat()}: 1 funding_reminder, 1 auto_approved, 1 released"
    # First what it is about to do, on stderr: the future's work, for real, on this database.
    warning = first.stderr.splitlines()
    assert warning[0].startswith(f"simulating {now.isoformat()}, "), first.stderr
    assert "ahead of the real clock: doing the future's work for real on " in warning[0]
    assert warning[1] == (
        f"  {now.isoformat()}: dry run, nothing changed: "
        "due 1 funding_reminder, 1 auto_approved, 1 released"
    )
    lines = first.stdout.splitlines()
    assert lines[0] == summary, first.stdout
    assert any(
        overdue.id in line and "funding_reminder" in line and "$500.00 due" in line
        for line in lines
    )
    assert any(
        submitted.id in line and "auto_approved: $1,000.00 approved" in line for line in lines
    )
    assert any(
        submitted.id in line and "released" in line and "$1,000.00 released (fee $100.00)" in line
        for line in lines
    )
    assert len(lines) == 4
    assert world.get(submitted.id).status is MilestoneStatus.RELEASED

    second = CliRunner().invoke(app, command)
    assert second.exit_code == 0, second.output
    assert second.stdout == f"{now.isoformat()}: nothing due\n"


def test_tick_refuses_a_future_moment_without_simulate_and_changes_nothing(
    world: World, db_url: str
) -> None:
    client, _freelancer, submitted = world.submitted(100_000)
    world.milestone(
        client, world.project(client), 50_000, fund_by="2030-03-01", now=at(date(2030, 1, 1))
    )
    assert submitted.review_due_at is not None
    before = every_row(world)
    for ahead in (timedelta(days=400), submitted.review_due_at - utcnow(), timedelta(minutes=5)):
        now = utcnow() + ahead
        result = CliRunner().invoke(app, ["tick", "--now", now.isoformat(), "--db", db_url])

        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        message = result.stderr
        assert message.startswith(f"error: --now {now.isoformat()} is "), message
        assert "ahead of the real clock" in message
        assert "would do the future's work for real on this database" in message
        assert "--dry-run" in message and "--simulate on a copy" in message
        assert every_row(world) == before  # no row of any table: ledger, events, outboxes
    assert world.get(submitted.id).status is MilestoneStatus.SUBMITTED


def test_tick_dry_run_lists_an_auto_approval_with_its_amount_and_changes_nothing(
    world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With SMTP configured the approval would queue e-mail; a webhook endpoint, deliveries.
    monkeypatch.setenv("MILEPOST_SMTP_HOST", "mail.invalid")
    client, freelancer, project = world.parties("EUR")
    world.act(client, webhooks.create_endpoint, url="https://hooks.example.com/milepost")
    milestone = world.milestone(client, project, 123_450)
    world.act(client, milestones.fund, milestone.id)
    world.act(freelancer, milestones.submit, milestone.id, note="Done")
    submitted = world.get(milestone.id)
    assert submitted.review_due_at is not None
    now = submitted.review_due_at + timedelta(minutes=1)
    before = every_row(world)

    for extra in ([], ["--simulate"]):  # --simulate changes nothing about a dry run
        result = CliRunner().invoke(
            app, ["tick", "--now", now.isoformat(), "--dry-run", *extra, "--db", db_url]
        )

        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            f"{now.isoformat()}: dry run, nothing changed: due 1 auto_approved, 1 released, "
            "3 queued webhooks to send",  # created, funded, submitted: queued, and left so
            f"  {milestone.id}  auto_approved: €1,234.50 approved, review period ended "
            f"{submitted.review_due_at.isoformat()}",
            f"  {milestone.id}  released: €1,234.50 released (fee €123.45)",
        ]
        assert every_row(world) == before
        with world.db.read_only() as session:
            queued = set(session.scalars(select(WebhookDelivery.event_type)))
            emails = session.scalar(select(func.count()).select_from(OutgoingEmail))
        assert queued == {"milestone.created", "milestone.funded", "milestone.submitted"}
        assert emails == 0
    assert world.get(milestone.id).status is MilestoneStatus.SUBMITTED
    assert world.balance(freelancer, "EUR") == 0

    present = CliRunner().invoke(app, ["tick", "--dry-run", "--db", db_url])
    assert present.exit_code == 0, present.output
    assert present.stdout.endswith(": dry run, nothing changed: 3 queued webhooks to send\n")
    assert every_row(world) == before


def test_tick_at_a_past_moment_runs_as_before(world: World, db_url: str) -> None:
    client, _freelancer, project = world.parties()
    overdue = world.milestone(
        client,
        project,
        50_000,
        fund_by=(utcnow() - timedelta(days=1)).date().isoformat(),
        now=utcnow() - timedelta(days=30),
    )
    now = utcnow() - timedelta(seconds=5)
    result = CliRunner().invoke(app, ["tick", "--now", now.isoformat(), "--db", db_url])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.splitlines()[0] == f"{now.isoformat()}: 1 funding_reminder"
    assert [event.action for event in events(world, overdue.id)][-1] == "funding_reminder"


def test_tick_refuses_a_bad_moment_in_one_line(db_url: str) -> None:
    result = CliRunner().invoke(app, ["tick", "--now", "next tuesday", "--db", db_url])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --now must be an ISO 8601")


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite serialises writers: nothing to race
def test_workers_in_parallel_processes_do_each_due_item_exactly_once(
    world: World, db_url: str
) -> None:
    count = 150
    client, freelancer, project = world.parties(wallet=count * 10_000)
    ids: list[str] = []
    for batch in range(0, count, 50):  # through the services, 50 milestones per transaction
        with world.db.unit_of_work() as session:
            as_client = Context(session, session.get(User, client.id), settings=world.settings)
            as_freelancer = Context(
                session, session.get(User, freelancer.id), settings=world.settings
            )
            for number in range(batch, batch + 50):
                milestone = milestones.create_milestone(
                    as_client, project.id, title=f"Task {number}", amount=10_000
                )
                milestones.fund(as_client, milestone.id)
                milestones.submit(as_freelancer, milestone.id, note="Done")
                ids.append(milestone.id)
    with world.db.read_only() as session:
        latest_due = session.scalar(select(func.max(Milestone.review_due_at)))
    assert latest_due is not None
    now = (latest_due + timedelta(seconds=1)).astimezone(UTC)

    command = [str(MILEPOST), "tick", "--now", now.isoformat(), "--simulate", "--db", db_url]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for _stdout, stderr in outputs:
        assert stderr.startswith(f"simulating {now.isoformat()}, "), stderr
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stdout + stderr

    # One line per thing done, across all workers: each milestone approved and released once.
    done = Counter(
        (line.split()[0], line.split()[1].rstrip(":"))
        for stdout, _stderr in outputs
        for line in stdout.splitlines()[1:]
    )
    assert done == Counter(
        {(mid, action): 1 for mid in ids for action in ("auto_approved", "released")}
    )
    with world.db.read_only() as session:
        actions = Counter(
            session.scalars(
                select(MilestoneEvent.action).where(MilestoneEvent.milestone_id.in_(ids))
            )
        )
        releases = session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.kind == EntryKind.RELEASE)
        )
        statuses = set(session.scalars(select(Milestone.status).where(Milestone.id.in_(ids))))
    assert actions == Counter(
        {
            "created": count,
            "funded": count,
            "submitted": count,
            "auto_approved": count,
            "released": count,
        }
    )
    assert releases == count
    assert statuses == {MilestoneStatus.RELEASED}
    assert world.balance(freelancer) == count * 9_000
    report = world.verify()
    assert report.ok, report.problems
    # And a worker that comes after them finds nothing left to do.
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"{now.isoformat()}: nothing due\n"


def test_worker_runs_until_terminated(db_url: str) -> None:
    import os
    import signal

    process = subprocess.Popen(
        [str(MILEPOST), "worker", "--db", db_url, "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()  # printed once the signal handlers are in place
        assert first_line.startswith("worker running every 0.2s"), first_line
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert stdout.splitlines()[-1] == "worker stopped"
