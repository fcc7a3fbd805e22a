"""A backup taken while the server takes money and uploads restores into a fresh place, the ledger
verifies there, and every write acknowledged before the backup started is in it, files included."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from milepost.files.models import StoredFile
from milepost.files.service import blob_path
from milepost.kit.db import Database
from milepost.settings import Settings
from milepost.wallets.models import Deposit, DepositStatus
from tests.api.conftest import Client, LiveServer
from tests.backup.conftest import milepost

WORKERS = 3
DEPOSIT = 10_000
MILESTONE = 4_000


@dataclass
class Acknowledged:
    """What the server answered with success, and when the answer arrived (time.time(): the backup's
    manifest says when it started on the same clock)."""

    deposits: list[tuple[float, str]] = field(default_factory=list)
    milestones: list[tuple[float, str]] = field(default_factory=list)
    files: list[tuple[float, str, bytes]] = field(default_factory=list)
    # Every write's (sent, answered) times: a write in flight while the backup ran proves it ran under load.
    spans: list[tuple[float, float]] = field(default_factory=list)


def _work(
    client: Client, project_id: str, done: Acknowledged, lock: threading.Lock, stop: threading.Event
) -> None:
    """Deposit, create and fund a milestone, upload a file; again and again until told to stop."""
    round_ = 0
    while not stop.is_set():
        round_ += 1
        sent = time.time()
        deposit = client.request(
            "POST",
            "/v1/deposits",
            json={"amount": DEPOSIT, "currency": "USD", "provider": "sandbox"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert deposit.status_code == 201, deposit.text
        with lock:
            done.deposits.append((time.time(), deposit.json()["id"]))
            done.spans.append((sent, time.time()))
        sent = time.time()
        milestone = client.ok(
            "POST",
            f"/v1/projects/{project_id}/milestones",
            {"title": f"Part {round_}", "amount": MILESTONE},
        )
        client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
        with lock:
            done.milestones.append((time.time(), milestone["id"]))
            done.spans.append((sent, time.time()))
        data = f"delivery notes {client.id} round {round_} {uuid.uuid4()}\n".encode()
        sent = time.time()
        upload = client.request(
            "POST", "/v1/files", files={"file": (f"notes-{round_}.txt", data, "text/plain")}
        )
        assert upload.status_code == 201, upload.text
        with lock:
            done.files.append((time.time(), upload.json()["id"], data))
            done.spans.append((sent, time.time()))


def test_backup_under_load_restores_every_acknowledged_write(
    sign_up: Any,
    db: Database,
    settings: Settings,
    fresh_url: Callable[[], str],
    tmp_path: Path,
) -> None:
    clients: list[tuple[Client, str]] = []
    for number in range(WORKERS):
        client, freelancer = sign_up(f"client{number}"), sign_up(f"freelancer{number}")
        project = client.ok(
            "POST",
            "/v1/projects",
            {"title": f"Site {number}", "currency": "USD", "freelancer_id": freelancer.id},
        )
        clients.append((client, project["id"]))

    done, lock, stop = Acknowledged(), threading.Lock(), threading.Event()
    failures: list[BaseException] = []

    def run(client: Client, project_id: str) -> None:
        try:
            _work(client, project_id, done, lock, stop)
        except BaseException as error:  # reported by the test below
            failures.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in clients]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(done.files) < 2 * WORKERS and not failures and time.monotonic() < deadline:
            time.sleep(0.05)
        backup = tmp_path / "backup"
        taken = milepost("backup", str(backup), "--db", db.url, "--files-dir", settings.files_dir)
        finished = time.time()
        time.sleep(0.3)  # the load goes on after the backup too
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not failures, failures
    assert taken.returncode == 0, taken.stderr
    assert "backup written to" in taken.stdout
    # The moment the backup began, just before its snapshot: whatever was acknowledged before it must be
    # in the backup (a copy of the database file alone, without its write-ahead log, would miss some).
    manifest = json.loads((backup / "manifest.json").read_text())
    started = datetime.fromisoformat(manifest["created_at"]).timestamp()

    with lock:
        before = Acknowledged(
            deposits=[item for item in done.deposits if item[0] < started],
            milestones=[item for item in done.milestones if item[0] < started],
            files=[item for item in done.files if item[0] < started],
        )
        during = [span for span in done.spans if span[0] <= finished and span[1] >= started]
    assert len(before.files) >= 2 * WORKERS
    assert during, "no write was in flight while the backup ran: it was not taken under load"

    restored_url = fresh_url()
    restored_files = tmp_path / "restored-files"
    restore = milepost(
        "restore", str(backup), "--db", restored_url, "--files-dir", str(restored_files)
    )
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert "restore OK" in restore.stdout
    verify = milepost("ledger", "verify", "--db", restored_url)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "ledger OK" in verify.stdout

    restored = Database(restored_url)
    try:
        with restored.read_only() as session:
            deposits = {row.id: row for row in session.scalars(select(Deposit))}
            stored = list(session.scalars(select(StoredFile)))
        for _, deposit_id in before.deposits:
            assert deposit_id in deposits, (
                f"acknowledged deposit {deposit_id} is not in the restore"
            )
            assert deposits[deposit_id].status == DepositStatus.SUCCEEDED
            assert deposits[deposit_id].amount == DEPOSIT
        # Every file the restored database knows (also those written during the backup) is there, intact.
        for row in stored:
            path = blob_path(restored_files, row.sha256)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256

        # Through the restored server, as the same people with the same tokens.
        restored_settings = Settings(
            fee_bps=1000, providers="sandbox,manual", files_dir=str(restored_files)
        )
        with LiveServer(restored, restored_settings) as url:
            people = [Client(url, client.token, client.user) for client, _ in clients]
            readers = {person.id: person for person in people}
            for _, milestone_id in before.milestones:
                found = [
                    response
                    for person in people
                    if (response := person.get(f"/v1/milestones/{milestone_id}")).status_code == 200
                ]
                assert found, f"acknowledged milestone {milestone_id} is not in the restore"
                assert found[0].json()["status"] == "funded"
                assert found[0].json()["escrow_balance"] == MILESTONE
            for _, file_id, data in before.files:
                owner = next(
                    row.owner_id for row in stored if row.id == file_id
                )  # StopIteration: the acknowledged upload is missing
                download = readers[owner].get(f"/v1/files/{file_id}")
                assert download.status_code == 200, download.text
                assert hashlib.sha256(download.content).digest() == hashlib.sha256(data).digest()
    finally:
        restored.dispose()
