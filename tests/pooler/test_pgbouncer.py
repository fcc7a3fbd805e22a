"""The whole HTTP story through pgbouncer in transaction-pooling mode (MILEPOST_DATABASE_POOLER=transaction).

Every transaction may run on another server connection, shared with other clients. Without the setting
Milepost does not work there: pgbouncer refuses the lock timeout sent as a startup option ("unsupported
startup parameter: options"), or, told to ignore it, drops it (row locks then wait for ever); psycopg's
prepared statements collide ("prepared statement \"_pg3_0\" already exists", a 500); and a claim mark
held as a session lock stays on a shared server connection, so a duplicate whose check lands there runs
beside the live request (the deposit is made twice), and a killed process's claims stay taken.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, text

from milepost.kit import idempotency
from milepost.kit.context import Context
from milepost.kit.db import Database, pooler_from_environment
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.settings import Settings
from milepost.users.models import User
from tests.api.conftest import Client, assert_error
from tests.api.test_http_races import available, error_of, funded_milestone, race
from tests.faults.test_dead_holders import CLAIMER
from tests.pooler.conftest import POOL_SIZE, POOLER, PgBouncer
from tests.world import World

MILEPOST = Path(sys.executable).with_name("milepost")
POOLED = {**os.environ, "MILEPOST_DATABASE_POOLER": POOLER, "PYTHONUNBUFFERED": "1"}
USD = "USD"


def test_the_seed_story_over_http_through_pgbouncer(sign_up: Any, pgbouncer: PgBouncer) -> None:
    client, freelancer, staff = sign_up("dana"), sign_up("priya"), sign_up("staff", staff=True)
    deposit = {"amount": 2_000_000, "currency": USD, "provider": "sandbox"}
    key = {"Idempotency-Key": f"deposit-{uuid.uuid4()}"}
    first = client.post("/v1/deposits", deposit, headers=key)
    assert first.status_code == 201, first.text
    replay = client.post("/v1/deposits", deposit, headers=key)
    assert (replay.status_code, replay.json()) == (201, first.json())
    assert replay.headers["idempotent-replayed"] == "true"
    assert available(client) == 2_000_000  # deposited once

    project = client.ok(
        "POST", "/v1/projects", {"title": "CRM", "currency": USD, "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {"title": "Basic functionality", "amount": 1_500_000},  # $15,000.00
    )
    path = f"/v1/milestones/{milestone['id']}"
    funded = client.ok("POST", f"{path}/fund")
    assert (funded["status"], funded["escrow_balance"]) == ("funded", 1_500_000)
    submitted = freelancer.post(
        f"{path}/submissions",
        {
            "note": "Live in staging",
            "evidence": [{"type": "link", "url": "https://staging.example"}],
        },
    )
    assert submitted.status_code == 201, submitted.text
    part = client.ok("POST", f"{path}/release", {"amount": 500_000})
    assert part["escrow_balance"] == 1_000_000
    released = client.ok("POST", f"{path}/approve")
    assert (released["status"], released["fee_amount"], released["escrow_balance"]) == (
        "released",
        150_000,
        0,
    )
    assert available(client) == 500_000
    assert available(freelancer) == 1_350_000
    events = client.ok("GET", f"{path}/events")["data"]
    assert [e["action"] for e in events] == [
        "created",
        "funded",
        "submitted",
        "released_part",
        "approved",
        "released",
    ]
    receipts = freelancer.ok("GET", f"{path}/receipts")["data"]
    assert [(r["partial"], r["amount_released"]) for r in receipts] in (
        [(True, 500_000), (False, 1_000_000)],
        [(False, 1_000_000), (True, 500_000)],
    ), receipts
    assert sum(r["platform_fee"] for r in receipts) == 150_000
    receipt = freelancer.get(f"/v1/receipts/{receipts[-1]['id']}", params={"format": "json"})
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["id"] == receipts[-1]["id"]
    html = freelancer.get(f"/v1/receipts/{receipts[-1]['id']}")
    assert html.headers["content-type"].startswith("text/html")

    assert staff.ok("GET", "/v1/ledger/verify")["ok"] is True
    # And the operator's command, through the pooler as well.
    verified = subprocess.run(
        [str(MILEPOST), "ledger", "verify", "--db", pgbouncer.url],
        capture_output=True,
        text=True,
        env=POOLED,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.rstrip().endswith("ledger OK")


def test_racing_money_operations_through_pgbouncer_move_the_money_exactly_once(
    sign_up: Any,
) -> None:
    # Twelve fundings of one milestone at once, with money for all of them: exactly one wins.
    client, _freelancer, milestone_id = funded_milestone(sign_up, 5_000, fund=False)
    client.ok("POST", "/v1/deposits", {"amount": 60_000, "currency": USD})
    responses = race(client, 12, lambda http: http.post(f"/v1/milestones/{milestone_id}/fund"))
    won = [r for r in responses if r.status_code == 200]
    assert len(won) == 1, [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert (response.status_code, *error_of(response)) in {
                (409, "conflict", "invalid_state"),
                (409, "conflict", "conflict"),
            }, response.text
    assert available(client) == 65_000 - 5_000

    # Twenty partial releases from one escrow: exactly as many succeed as the escrow pays for.
    payer, payee, escrowed = funded_milestone(sign_up, 10_000)
    releases = race(
        payer,
        20,
        lambda http: http.post(f"/v1/milestones/{escrowed}/release", json={"amount": 1_000}),
    )
    succeeded = [r for r in releases if r.status_code == 200]
    assert len(succeeded) == 10, [(r.status_code, r.text) for r in releases]
    assert sorted(r.json()["escrow_balance"] for r in succeeded) == list(range(0, 10_000, 1_000))
    assert available(payee) == 9_000

    # Ten copies of one keyed funding: the money moves once, and every answer is that funding's.
    buyer, _seller, keyed = funded_milestone(sign_up, 7_000, fund=False)
    key = f"fund-{uuid.uuid4()}"
    copies = race(
        buyer,
        10,
        lambda http: http.post(f"/v1/milestones/{keyed}/fund", headers={"Idempotency-Key": key}),
    )
    answered = [r for r in copies if r.status_code == 200]
    assert answered and all(r.json() == answered[0].json() for r in answered)
    assert sum(r.headers.get("idempotent-replayed") != "true" for r in answered) == 1
    for response in copies:
        if response.status_code != 200:
            assert error_of(response) == ("conflict", "idempotency_key_in_flight"), response.text
    replay = buyer.post(f"/v1/milestones/{keyed}/fund", headers={"Idempotency-Key": key})
    assert (replay.status_code, replay.json()) == (200, answered[0].json())
    assert available(buyer) == 0


def _claimer(url: str, scope_key: str, request_hash: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, url, scope_key, request_hash],
        stdout=subprocess.PIPE,
        text=True,
        env=POOLED,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "claimed", line
    return process


def test_a_live_processs_claim_holds_and_a_killed_ones_is_free_at_once_through_pgbouncer(
    sign_up: Any, db: Database, pgbouncer: PgBouncer
) -> None:
    alice: Client = sign_up("alice")
    body = {"amount": 1_234, "currency": USD, "provider": "sandbox"}
    key = "crashed-order-1"
    scope_key = idempotency.scope(alice.id, key)
    request_hash = idempotency.fingerprint("POST", "/v1/deposits", json.dumps(body).encode())

    claimer = _claimer(pgbouncer.url, scope_key, request_hash)
    try:
        # Its process is alive: whichever server connection a duplicate's check lands on (more tries
        # than the pool has connections), it is told so, and nothing is deposited.
        for _ in range(12):
            busy = alice.post("/v1/deposits", body, headers={"Idempotency-Key": key})
            assert_error(busy, 409, "conflict", "idempotency_key_in_flight")
        # Each live process (this one's server, the claimer) holds its mark in a transaction left open,
        # which holds no snapshot: VACUUM is not held back for as long as the processes live.
        # Nor does it lock anything but the mark (no table, no catalog).
        with psycopg.connect(pgbouncer.direct_url, autocommit=True) as direct:
            marks = direct.execute(
                "SELECT a.backend_xmin, array(SELECT DISTINCT o.locktype FROM pg_locks o"
                " WHERE o.pid = a.pid AND o.locktype NOT IN ('virtualxid', 'advisory'))"
                " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"
                " AND a.state = 'idle in transaction'"
            ).fetchall()
        assert len(marks) == 2, marks
        assert all(xmin is None and not locks for xmin, locks in marks), marks
    finally:
        claimer.send_signal(signal.SIGKILL)
        claimer.wait(timeout=10)
    assert available(alice) == 0

    # Killed before it did anything: pgbouncer closes its server connection, and the retry runs at once.
    retried = alice.post("/v1/deposits", body, headers={"Idempotency-Key": key})
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    replay = alice.post("/v1/deposits", body, headers={"Idempotency-Key": key})
    assert replay.headers.get("idempotent-replayed") == "true"
    assert available(alice) == 1_234


def test_workers_in_parallel_processes_through_pgbouncer_claim_each_due_item_once(
    db: Database, pgbouncer: PgBouncer
) -> None:
    world = World(db)
    count = 16
    client, freelancer, project = world.parties(wallet=count * 10_000)
    ids: list[str] = []
    with db.unit_of_work() as session:
        as_client = Context(session, session.get(User, client.id), settings=world.settings)
        as_freelancer = Context(session, session.get(User, freelancer.id), settings=world.settings)
        for number in range(count):
            milestone = milestones.create_milestone(
                as_client, project.id, title=f"Task {number}", amount=10_000
            )
            milestones.fund(as_client, milestone.id)
            milestones.submit(as_freelancer, milestone.id, note="Done")
            ids.append(milestone.id)
    with db.read_only() as session:
        latest_due = session.scalar(select(func.max(Milestone.review_due_at)))
    assert latest_due is not None
    now = (latest_due + timedelta(seconds=1)).astimezone(UTC).isoformat()

    command = [str(MILEPOST), "tick", "--now", now, "--simulate", "--db", pgbouncer.url]
    processes = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=POOLED
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stdout + stderr
    done = Counter(
        (line.split()[0], line.split()[1].rstrip(":"))
        for stdout, _stderr in outputs
        for line in stdout.splitlines()[1:]
    )
    assert done == Counter({(mid, act): 1 for mid in ids for act in ("auto_approved", "released")})
    assert world.balance(freelancer) == count * 9_000
    report = world.verify()
    assert report.ok, report.problems


def test_every_transaction_through_pgbouncer_has_the_lock_timeout_and_leaves_no_session_state(
    db: Database, pgbouncer: PgBouncer
) -> None:
    """A writer waits at most the lock timeout for a row lock whichever server connection it lands on
    (set per transaction, never in the session: a plain SET would stay on a connection other clients
    share)."""
    if POOLER == "none":
        pytest.xfail("without the setting the lock timeout is a startup option pgbouncer drops")
    for _ in range(3 * POOL_SIZE):
        with db.unit_of_work() as session:
            assert session.execute(text("SHOW lock_timeout")).scalar() == "30s"
        with db.read_only() as session:
            assert session.execute(text("SHOW lock_timeout")).scalar() == "30s"
    with psycopg.connect(pgbouncer.url, prepare_threshold=None, autocommit=True) as other:
        for _ in range(3 * POOL_SIZE):
            assert other.execute("SHOW lock_timeout").fetchone() == ("0",)


def test_the_pooler_setting_is_read_from_the_environment_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MILEPOST_DATABASE_POOLER", raising=False)
    assert pooler_from_environment() == "none"
    assert Settings().database_pooler == "none"
    monkeypatch.setenv("MILEPOST_DATABASE_POOLER", "transaction")
    assert pooler_from_environment() == "transaction"
    assert Settings().database_pooler == "transaction"
    assert Database("sqlite://").pooler == "transaction"  # ignored by SQLite, but carried
    monkeypatch.setenv("MILEPOST_DATABASE_POOLER", "statement")
    with pytest.raises(ValueError, match="MILEPOST_DATABASE_POOLER='statement'"):
        pooler_from_environment()
    with pytest.raises(ValueError, match="database_pooler"):
        Settings()
