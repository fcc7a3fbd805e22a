"""A claim whose process is gone is free at once (kit/liveness.py); a live process's claim still holds.

A real subprocess claims an idempotency key, as a server process does before running the request, and is
then killed with SIGKILL: the retry of the same request runs straight away, never 409 "in flight" for
minutes. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

from milepost.kit import idempotency
from milepost.kit.db import Database
from tests.api.conftest import assert_error

CLAIMER = textwrap.dedent(
    """
    import sys, time
    from milepost.kit import idempotency
    from milepost.kit.db import Database
    from milepost.kit.time import utcnow

    url, scope_key, request_hash = sys.argv[1:4]
    db = Database(url)
    with idempotency.running(db, scope_key):
        assert idempotency.claim(db, scope_key, request_hash, utcnow()) is None
        print("claimed", flush=True)
        time.sleep(600)  # "running the request" until it is killed
    """
)


def start_claimer(db: Database, scope_key: str, request_hash: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, db.url, scope_key, request_hash],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "claimed", line
    return process


def test_a_killed_processs_claim_is_free_at_once_and_a_live_ones_holds(
    sign_up: Any, db: Database
) -> None:
    alice = sign_up("alice")
    body = {"amount": 1_234, "currency": "USD", "provider": "sandbox"}
    key = "crashed-order-1"
    scope_key = idempotency.scope(alice.id, key)
    request_hash = idempotency.fingerprint("POST", "/v1/deposits", json.dumps(body).encode())

    claimer = start_claimer(db, scope_key, request_hash)
    try:
        # Its process is alive (it is "running the request"): a duplicate is told so.
        busy = alice.post("/v1/deposits", body, headers={"Idempotency-Key": key})
        assert_error(busy, 409, "conflict", "idempotency_key_in_flight")
    finally:
        claimer.send_signal(signal.SIGKILL)
        claimer.wait(timeout=10)

    # Killed before it did anything: the retry runs, at once.
    retried = alice.post("/v1/deposits", body, headers={"Idempotency-Key": key})
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    replay = alice.post("/v1/deposits", body, headers={"Idempotency-Key": key})
    assert replay.headers.get("idempotent-replayed") == "true"
    rows = alice.ok("GET", "/v1/balances")["data"]
    assert [row["available"] for row in rows] == [1_234]


def test_claims_of_this_process_no_longer_running_or_of_unknown_processes_are_free(
    sign_up: Any, db: Database
) -> None:
    """A claim naming this process whose request is over (its release could not reach the database), or
    naming a process that holds no mark, is free; one naming no holder at all (written before holders
    were recorded) waits for the old time limit."""
    from secrets import token_hex

    from milepost.kit import liveness
    from milepost.kit.idempotency_models import IdempotencyKey
    from milepost.kit.time import utcnow

    alice = sign_up("alice")
    body = {"amount": 500, "currency": "USD", "provider": "sandbox"}
    request_hash = idempotency.fingerprint("POST", "/v1/deposits", json.dumps(body).encode())
    holders = {"ours": liveness.boot_id(), "unknown": token_hex(16), "none": None}
    with db.unit_of_work() as session:
        for name, holder in holders.items():
            session.add(
                IdempotencyKey(
                    scope_key=idempotency.scope(alice.id, f"left-{name}"),
                    request_hash=request_hash,
                    created_at=utcnow(),
                    holder=holder,
                )
            )

    for name in ("ours", "unknown"):
        retried = alice.post("/v1/deposits", body, headers={"Idempotency-Key": f"left-{name}"})
        assert retried.status_code == 201, (name, retried.text)
    waiting = alice.post("/v1/deposits", body, headers={"Idempotency-Key": "left-none"})
    assert_error(waiting, 409, "conflict", "idempotency_key_in_flight")
    rows = alice.ok("GET", "/v1/balances")["data"]
    assert [row["available"] for row in rows] == [1_000]
