"""Kill the real processes at random moments and check that no acknowledged money was lost or doubled.

Two parts, each on a fresh database of its own (a SQLite file, or a PostgreSQL database created on the
test server and dropped at the end):

* **Server rounds.** ``milepost serve --no-worker`` runs as a real process on a free loopback port.
  Several clients (threads, each with its own HTTP connection and its own users and project) send money
  operations, every one with an Idempotency-Key: deposits, milestones, funding, partial releases,
  submissions, approvals, cancellations, payouts and bonuses. At a random moment the server gets SIGKILL
  and is started again on the same database; each client then retries its cut-off operation with the
  same key and body until it gets a definitive answer (bounded). Each client keeps an exact model of what
  its acknowledged operations did; after every round the database must agree with every model (nothing
  acknowledged is missing, nothing was applied twice), money is conserved per currency, and
  ``milepost ledger verify`` exits 0.
* **Worker kills.** Many submitted milestones whose review period has lapsed are made through the
  services (dated in the past); ``milepost worker`` processes are killed mid-run and restarted until
  nothing is due. Every milestone must then be auto-approved and released exactly once.

Everything is bounded: every loop has a count and a time limit, and only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
from sqlalchemy import func, select

from milepost.kit.db import Database
from milepost.kit.schema import upgrade_schema

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery"
FEE_BPS = 1000
CURRENCIES = ("USD", "EUR")
MILEPOST = str(Path(sys.executable).with_name("milepost"))

# Bounds. A cut-off operation is retried until it gets a definitive answer, but never for longer than
# OP_DEADLINE seconds nor more than MAX_ATTEMPTS times.
OP_DEADLINE = 90.0
MAX_ATTEMPTS = 400
# How long a client keeps retrying while its key answers 409 idempotency_key_in_flight. A claim left by a
# killed process should be free at once (claims carry their holder's liveness); if one is not, the
# client gives up after this long and the claim is counted. The claimed request's own transaction
# never committed (the response is stored in that same transaction), so giving up changed nothing.
IN_FLIGHT_WAIT = 3.0
SERVER_START_TIMEOUT = 60.0
REQUEST_TIMEOUT = httpx.Timeout(45.0, connect=3.0)  # the server's lock timeout is 30 s


# Figures -----------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one run on one database did and found. The counts that must be zero are named so."""

    database: str
    rounds: int = 0
    clients: int = 0
    sent: int = 0  # operations sent (each once, however often it was retried)
    acknowledged: int = 0  # got a definitive answer: a 2xx, or a refusal (4xx)
    succeeded: int = 0  # of those, 2xx
    refused: int = 0  # of those, definitive refusals (402, 409 invalid_state, ...)
    cut_off: int = 0  # operations with no answer at first (connection lost, 5xx): retried
    retries: int = 0  # re-sends with the same key and body
    replayed: int = 0  # 2xx answers marked Idempotent-Replayed: the first outcome, not a second run
    server_errors: int = 0  # 5xx answers received (a killed server answers nothing; a live one 5xx)
    in_flight_after_restart: int = 0  # operations whose retries got 409 idempotency_key_in_flight
    in_flight_answers: int = 0
    in_flight_given_up: int = 0  # of those, still in flight after IN_FLIGHT_WAIT: taken as not done
    unresolved: int = 0  # operations still without a definitive answer when their bounds ran out
    lost: int = 0  # acknowledged but missing from the database (must be 0)
    duplicated: int = 0  # applied more often than acknowledged (must be 0)
    mismatched: int = 0  # an answer or a balance that disagrees with the client's model (must be 0)
    conservation_failures: int = 0  # deposits - payouts != balances + escrow + fees (must be 0)
    ledger_verify_failures: int = 0  # `milepost ledger verify` exit codes != 0 (must be 0)
    server_kills: int = 0
    worker_kills: int = 0
    worker_kills_mid_run: int = 0  # kills while auto-approvals were still due
    auto_approvals_due: int = 0
    auto_approvals_once: int = 0  # released exactly once, with one release entry and one event
    auto_approval_failures: int = 0  # (must be 0)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"{self.database}: {self.rounds} rounds, {self.server_kills} server kills, "
            f"{self.clients} concurrent clients, {self.seconds:.0f} s",
            f"  operations sent {self.sent}, acknowledged {self.acknowledged} "
            f"({self.succeeded} succeeded, {self.refused} refused), unresolved {self.unresolved}",
            f"  cut off by a kill {self.cut_off}, retries {self.retries}, replayed {self.replayed}, "
            f"5xx answers {self.server_errors}",
            f"  in flight after restart {self.in_flight_after_restart} operations "
            f"({self.in_flight_answers} answers 409 idempotency_key_in_flight, "
            f"{self.in_flight_given_up} given up after {IN_FLIGHT_WAIT:.0f} s)",
            f"  lost {self.lost}, duplicated {self.duplicated}, mismatched {self.mismatched}, "
            f"conservation failures {self.conservation_failures}, "
            f"ledger verify failures {self.ledger_verify_failures}",
            f"  worker: {self.worker_kills} kills ({self.worker_kills_mid_run} mid-run), "
            f"{self.auto_approvals_once} of {self.auto_approvals_due} auto-approvals done exactly once, "
            f"failures {self.auto_approval_failures}",
        ]

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:  # enough to debug; a broken run must not flood the report
            self.problems.append(text)


# Databases and processes -------------------------------------------------------------------------------


def postgres_admin_url() -> tuple[str | None, str]:
    """(url, reason): the PostgreSQL server to create databases on, or None and why it cannot be used."""
    url = os.environ.get("MILEPOST_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url, ""
    except psycopg.OperationalError as error:
        return None, f"PostgreSQL at {url} does not answer: {str(error).strip().splitlines()[0]}"


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """A freshly migrated, empty database of this run's own; a PostgreSQL one is dropped at the end."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'crash-{uuid.uuid4().hex[:8]}.db'}"
        upgrade_schema(url)
        yield url
        return
    admin_url, reason = postgres_admin_url()
    if admin_url is None:
        raise RuntimeError(reason)
    name = f"milepost_crash_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    base = admin_url.rpartition("/")[0]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{base}/{name}"
        upgrade_schema(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MILEPOST_DATABASE_URL=url,
        MILEPOST_PROVIDERS="sandbox,manual",
        MILEPOST_FEE_BPS=str(FEE_BPS),
    )
    return env


class Process:
    """One ``milepost`` command as a real process in a process group of its own, so that SIGKILL takes
    it and anything it started, and nothing else."""

    def __init__(self, args: list[str], url: str, log: IO[bytes]) -> None:
        self.args = [MILEPOST, *args]
        self.url = url
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.write(f"--- start {' '.join(self.args[1:])}\n".encode())
        self.log.flush()
        self.popen = subprocess.Popen(
            self.args,
            env=process_env(self.url),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, open transactions are cut off."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        self.log.write(b"--- SIGKILL\n")
        self.popen = None

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=30)
        self.popen = None


class Server(Process):
    def __init__(self, url: str, port: int, log: IO[bytes]) -> None:
        super().__init__(
            ["serve", "--db", url, "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
            url,
            log,
        )
        self.base_url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        """Start and wait until it answers HTTP (any answer will do); the port may take a moment to be
        free again after a kill, so a start that dies at once is tried again (bounded)."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        for _attempt in range(20):
            super().start()
            while time.monotonic() < deadline and self.alive():
                try:
                    httpx.get(f"{self.base_url}/v1/me", timeout=2.0)
                    return
                except httpx.TransportError:
                    time.sleep(0.05)
            if time.monotonic() >= deadline:
                break
            self.popen = None  # it exited (the port was still taken): try again
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"milepost serve did not start within {SERVER_START_TIMEOUT:.0f} s")


def ledger_verifies(url: str, log: IO[bytes]) -> bool:
    result = subprocess.run(
        [MILEPOST, "ledger", "verify", "--db", url],
        env=process_env(url),
        stdout=log,
        stderr=subprocess.STDOUT,
        timeout=300,
        check=False,
    )
    return result.returncode == 0


# One client's model of what it did ---------------------------------------------------------------------


@dataclass
class Party:
    id: str
    token: str


@dataclass
class MilestoneModel:
    id: str
    amount: int
    status: str = "draft"
    escrow: int = 0
    released: int = 0
    refunded: int = 0
    fee: int = 0


@dataclass
class Operation:
    name: str
    who: str  # "client" or "freelancer"
    method: str
    path: str
    body: dict[str, Any] | None
    # What the model expects: a 2xx, or this (status, code) refusal.
    refusal: tuple[int, str] | None = None
    milestone: MilestoneModel | None = None
    amount: int = 0
    key: str = field(default_factory=lambda: f"crash-{uuid.uuid4()}")


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


class Client:
    """One API integration: a client and a freelancer on one project in one currency, sending one
    operation at a time. Its model says exactly what every acknowledged operation did."""

    def __init__(
        self,
        index: int,
        base_url: str,
        currency: str,
        client: Party,
        freelancer: Party,
        project_id: str,
        seed: int,
    ) -> None:
        self.index = index
        self.currency = currency
        self.client = client
        self.freelancer = freelancer
        self.project_id = project_id
        self.rng = random.Random(seed)
        self.http = httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT)
        # The model.
        self.client_available = 0
        self.freelancer_available = 0
        self.deposits: dict[str, int] = {}
        self.payouts: dict[str, int] = {}
        self.bonuses: dict[str, int] = {}
        self.milestones: dict[str, MilestoneModel] = {}
        self.figures = Figures(database="")
        self.crashed: BaseException | None = None

    # Choosing --------------------------------------------------------------------------------------------

    def choose(self) -> Operation:
        """A random next operation that the model can predict the outcome of (sometimes a refusal)."""
        rng = self.rng
        open_ = [m for m in self.milestones.values() if m.status not in ("released", "cancelled")]
        drafts = [m for m in open_ if m.status == "draft"]
        held = [m for m in open_ if m.status in ("funded", "submitted")]
        funded = [m for m in open_ if m.status == "funded"]
        submitted = [m for m in open_ if m.status == "submitted"]
        choices: list[tuple[float, str]] = [(3 if self.client_available < 60_000 else 1, "deposit")]
        if len(open_) < 4:
            choices.append((2, "milestone"))
        if drafts:
            choices.append((3, "fund"))
        if held:
            choices += [(3, "release"), (1, "cancel")]
        if funded:
            choices.append((2, "submit"))
        if submitted:
            choices.append((2, "approve"))
        if self.freelancer_available > 0:
            choices.append((2, "payout"))
        if self.client_available > 0:
            choices.append((1, "bonus"))
        name = rng.choices([c[1] for c in choices], weights=[c[0] for c in choices])[0]
        ms = f"/v1/milestones/{{}}/{name}"
        if name == "deposit":
            amount = rng.randint(1_000, 50_000)
            body = {"amount": amount, "currency": self.currency, "provider": "sandbox"}
            return Operation(name, "client", "POST", "/v1/deposits", body, amount=amount)
        if name == "milestone":
            amount = rng.randint(500, 30_000)
            body = {"title": f"Part {len(self.milestones) + 1}", "amount": amount}
            path = f"/v1/projects/{self.project_id}/milestones"
            return Operation(name, "client", "POST", path, body, amount=amount)
        if name == "fund":
            m = rng.choice(drafts)
            refusal = None if m.amount <= self.client_available else (402, "insufficient_funds")
            return Operation(name, "client", "POST", ms.format(m.id), None, refusal, m, m.amount)
        if name == "release":
            m = rng.choice(held)
            if rng.random() < 0.1:  # more than the escrow holds: refused, nothing moves
                amount, refusal = m.escrow + 1, (402, "insufficient_funds")
            else:
                amount, refusal = rng.randint(1, m.escrow), None
            body = {"amount": amount}
            return Operation(name, "client", "POST", ms.format(m.id), body, refusal, m, amount)
        if name == "cancel":
            # Money is in escrow: the freelancer may cancel (the escrow goes back to the client).
            m = rng.choice(held)
            body = {"reason": "crash test"}
            return Operation(name, "freelancer", "POST", ms.format(m.id), body, None, m, m.escrow)
        if name == "submit":
            m = rng.choice(funded)
            body = {"note": "Done", "evidence": [{"type": "link", "url": "https://example.com/pr"}]}
            path = f"/v1/milestones/{m.id}/submissions"
            return Operation(name, "freelancer", "POST", path, body, None, m)
        if name == "approve":
            m = rng.choice(submitted)
            return Operation(name, "client", "POST", ms.format(m.id), None, None, m, m.escrow)
        if name == "payout":
            if rng.random() < 0.1:
                amount, refusal = self.freelancer_available + 1, (402, "insufficient_funds")
            else:
                amount, refusal = rng.randint(1, self.freelancer_available), None
            body = {"amount": amount, "currency": self.currency, "provider": "sandbox"}
            return Operation(
                name, "freelancer", "POST", "/v1/payouts", body, refusal, amount=amount
            )
        amount = rng.randint(1, min(self.client_available, 5_000))
        path = f"/v1/projects/{self.project_id}/bonuses"
        return Operation("bonus", "client", "POST", path, {"amount": amount}, amount=amount)

    # Sending ---------------------------------------------------------------------------------------------

    def send(self, op: Operation, stop_by: float) -> httpx.Response | None:
        """Send until a definitive answer: a 2xx or a refusal. Connection errors, 5xx, transient
        conflicts and a claim still in flight are retried with the same key and body, with backoff,
        within the bounds. None: no definitive answer."""
        figures = self.figures
        figures.sent += 1
        party = self.client if op.who == "client" else self.freelancer
        headers = {"Authorization": f"Bearer {party.token}", "Idempotency-Key": op.key}
        started = time.monotonic()
        in_flight_since: float | None = None
        cut_off = False
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if attempt > 1:
                figures.retries += 1
            try:
                response: httpx.Response | None = self.http.request(
                    op.method, op.path, json=op.body, headers=headers
                )
            except httpx.TransportError:
                response = None
            if response is not None:
                code = error_code(response) if response.status_code >= 400 else ""
                if response.status_code >= 500:
                    figures.server_errors += 1
                elif code == "idempotency_key_in_flight":
                    figures.in_flight_answers += 1
                    if in_flight_since is None:
                        in_flight_since = time.monotonic()
                        figures.in_flight_after_restart += 1
                    elif time.monotonic() - in_flight_since > IN_FLIGHT_WAIT:
                        figures.in_flight_given_up += 1
                        return None
                elif not (response.status_code == 409 and code == "conflict") and (
                    response.status_code != 429
                ):
                    figures.acknowledged += 1
                    if response.status_code < 300:
                        figures.succeeded += 1
                        if response.headers.get("idempotent-replayed") == "true":
                            figures.replayed += 1
                    else:
                        figures.refused += 1
                    return response
            if not cut_off:
                cut_off = True
                figures.cut_off += 1
            now = time.monotonic()
            if now - started > OP_DEADLINE or now > stop_by + OP_DEADLINE:
                break
            time.sleep(min(0.02 * 2**attempt, 0.5) * (0.5 + self.rng.random()))
        figures.unresolved += 1
        return None

    # Applying answers to the model ----------------------------------------------------------------------

    def mismatch(self, op: Operation, text: str) -> None:
        self.figures.mismatched += 1
        self.figures.problem(f"client {self.index}: {op.name} ({op.key}): {text}")

    def apply(self, op: Operation, response: httpx.Response | None) -> None:
        if response is None:
            return  # no definitive answer: the operation is taken as not done (see IN_FLIGHT_WAIT)
        status = response.status_code
        if status >= 300:
            if op.refusal != (status, error_code(response)):
                self.mismatch(op, f"answered {status} {response.text[:200]}, expected {op.refusal}")
            return
        if op.refusal is not None:
            self.mismatch(op, f"answered {status}, expected the refusal {op.refusal}")
            return
        body = response.json()
        m = op.milestone
        if op.name == "deposit":
            if body["id"] in self.deposits or body["status"] != "succeeded":
                self.mismatch(op, f"deposit answer {body}")
            self.deposits[body["id"]] = op.amount
            self.client_available += op.amount
        elif op.name == "milestone":
            self.milestones[body["id"]] = MilestoneModel(body["id"], op.amount)
        elif op.name == "fund" and m is not None:
            m.status, m.escrow = "funded", m.amount
            self.client_available -= m.amount
        elif op.name in ("release", "approve") and m is not None:
            fee = body["fee_amount"] - m.fee
            m.released += op.amount
            m.escrow -= op.amount
            m.fee = body["fee_amount"]
            m.status = "released" if m.escrow == 0 else m.status
            self.freelancer_available += op.amount - fee
        elif op.name == "cancel" and m is not None:
            self.client_available += m.escrow
            m.refunded += m.escrow
            m.escrow, m.status = 0, "cancelled"
        elif op.name == "submit" and m is not None:
            m.status = "submitted"
        elif op.name == "payout":
            if body["id"] in self.payouts or body["status"] != "paid":
                self.mismatch(op, f"payout answer {body}")
            self.payouts[body["id"]] = op.amount
            self.freelancer_available -= op.amount
        elif op.name == "bonus":
            self.bonuses[body["id"]] = op.amount
            self.client_available -= op.amount
            self.freelancer_available += op.amount - body["fee_amount"]
        if m is not None and op.name != "submit":
            seen = (body["status"], body["escrow_balance"], body["released_amount"])
            if seen != (m.status, m.escrow, m.released):
                self.mismatch(
                    op, f"milestone answer {seen}, model {(m.status, m.escrow, m.released)}"
                )

    def run(self, stop: threading.Event, stop_by: float, max_ops: int) -> None:
        try:
            for _ in range(max_ops):
                if stop.is_set() or time.monotonic() > stop_by:
                    return
                op = self.choose()
                self.apply(op, self.send(op, stop_by))
        except BaseException as error:  # reported by the round, never lost in a thread
            self.crashed = error


# Preparing over the API --------------------------------------------------------------------------------


@contextmanager
def cheap_password_hashing() -> Iterator[None]:
    """Real argon2 with its cheapest parameters while users are made here, as the other tests do: the
    default costs ~0.5 s per hash (seconds on a busy machine). The server verifies a password with the
    parameters stored in its hash, so signing these users in is cheap too."""
    from argon2 import PasswordHasher

    from milepost.users import service as users

    saved = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    try:
        yield
    finally:
        users._hasher = saved


def new_party(database: Database, name: str) -> Party:
    """A user and an API token, made as the CLI and ``POST /v1/tokens`` make them (in this process,
    where hashing is cheap: the server would rehash the password with its full costs on sign-in)."""
    from milepost.auth.service import sign_in
    from milepost.kit.context import Context
    from milepost.users.service import create_user

    email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
    with cheap_password_hashing(), database.unit_of_work() as session:
        create_user(session, email=email, name=name, password=PASSWORD)
        token, user = sign_in(
            Context(session, None), email=email, password=PASSWORD, address="127.0.0.1"
        )
        return Party(user.id, token)


def prepare_clients(database: Database, base_url: str, count: int, seed: int) -> list[Client]:
    """Per client: a client and a freelancer with API tokens, and a project between them (over the
    API)."""
    parties = [new_party(database, f"{who}{i}") for i in range(count) for who in ("client", "free")]
    clients = []
    for index in range(count):
        currency = CURRENCIES[index % len(CURRENCIES)]
        client, freelancer = parties[2 * index], parties[2 * index + 1]
        project = httpx.post(
            f"{base_url}/v1/projects",
            json={"title": f"Crash {index}", "currency": currency, "freelancer_id": freelancer.id},
            headers={"Authorization": f"Bearer {client.token}"},
            timeout=REQUEST_TIMEOUT,
        )
        assert project.status_code == 201, project.text
        clients.append(
            Client(
                index, base_url, currency, client, freelancer, project.json()["id"], seed + index
            )
        )
    return clients


# Checking the database against the models --------------------------------------------------------------


def check_round(database: Database, clients: list[Client], figures: Figures) -> None:
    """Compare every client's model with the database; then money conservation per currency."""
    from milepost.ledger.models import Account, AccountKind
    from milepost.milestones.models import Milestone
    from milepost.projects.models import Bonus
    from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutStatus

    with database.read_only() as session:
        for c in clients:
            who = f"client {c.index}"
            deposits = dict(
                session.execute(
                    select(Deposit.id, Deposit.status).where(Deposit.user_id == c.client.id)
                ).all()
            )
            payouts = dict(
                session.execute(
                    select(Payout.id, Payout.status).where(Payout.user_id == c.freelancer.id)
                ).all()
            )
            bonuses = set(session.scalars(select(Bonus.id).where(Bonus.project_id == c.project_id)))
            for kind, known, found, done in (
                ("deposit", c.deposits, deposits, DepositStatus.SUCCEEDED),
                ("payout", c.payouts, payouts, PayoutStatus.PAID),
                ("bonus", c.bonuses, dict.fromkeys(bonuses), None),
            ):
                for missing in set(known) - set(found):
                    figures.lost += 1
                    figures.problem(f"{who}: acknowledged {kind} {missing} is missing")
                for extra in set(found) - set(known):
                    figures.duplicated += 1
                    figures.problem(f"{who}: {kind} {extra} was never acknowledged")
                for key in set(known) & set(found):
                    if done is not None and found[key] != done:
                        figures.lost += 1
                        figures.problem(f"{who}: acknowledged {kind} {key} is {found[key]}")
            rows = {
                m.id: m
                for m in session.scalars(
                    select(Milestone).where(Milestone.project_id == c.project_id)
                )
            }
            for missing in set(c.milestones) - set(rows):
                figures.lost += 1
                figures.problem(f"{who}: acknowledged milestone {missing} is missing")
            for extra in set(rows) - set(c.milestones):
                figures.duplicated += 1
                figures.problem(f"{who}: milestone {extra} was never acknowledged")
            for mid in set(rows) & set(c.milestones):
                row, model = rows[mid], c.milestones[mid]
                moved = (row.released_amount, row.refunded_amount, row.funded_amount)
                expected = (
                    model.released,
                    model.refunded,
                    model.escrow + model.released + model.refunded,
                )
                if any(a > b for a, b in zip(moved, expected, strict=True)):
                    figures.duplicated += 1
                    figures.problem(
                        f"{who}: milestone {mid} moved {moved}, acknowledged {expected}"
                    )
                elif moved != expected:
                    figures.lost += 1
                    figures.problem(
                        f"{who}: milestone {mid} moved {moved}, acknowledged {expected}"
                    )
                elif (str(row.status), row.fee_amount) != (model.status, model.fee):
                    figures.mismatched += 1
                    figures.problem(f"{who}: milestone {mid} is {row.status}, model {model}")
            balances = dict(
                session.execute(
                    select(Account.user_id, Account.balance).where(
                        Account.kind == AccountKind.USER,
                        Account.currency == c.currency,
                        Account.user_id.in_([c.client.id, c.freelancer.id]),
                    )
                ).all()
            )
            for party, expected_balance in (
                (c.client, c.client_available),
                (c.freelancer, c.freelancer_available),
            ):
                balance = int(balances.get(party.id, 0))
                if balance > expected_balance:
                    figures.duplicated += 1
                elif balance < expected_balance:
                    figures.lost += 1
                if balance != expected_balance:
                    figures.problem(
                        f"{who}: {party.id} holds {balance}, acknowledged {expected_balance}"
                    )

        # Money conservation: what came in minus what went out is exactly what the platform holds.
        for currency in CURRENCIES:
            deposited = session.scalar(
                select(func.coalesce(func.sum(Deposit.amount), 0)).where(
                    Deposit.currency == currency, Deposit.status == DepositStatus.SUCCEEDED
                )
            )
            paid_out = session.scalar(
                select(func.coalesce(func.sum(Payout.amount), 0)).where(
                    Payout.currency == currency, Payout.status == PayoutStatus.PAID
                )
            )
            held = dict(
                session.execute(
                    select(Account.kind, func.sum(Account.balance))
                    .where(Account.currency == currency)
                    .group_by(Account.kind)
                ).all()
            )
            inside = sum(
                int(held.get(kind) or 0)
                for kind in (
                    AccountKind.USER,
                    AccountKind.ESCROW,
                    AccountKind.PLATFORM_FEE,
                    AccountKind.PAYOUT_CLEARING,
                )
            )
            outside = -int(held.get(AccountKind.EXTERNAL) or 0)
            if not (int(deposited or 0) - int(paid_out or 0) == inside == outside):
                figures.conservation_failures += 1
                figures.problem(
                    f"{currency}: deposits {deposited} - payouts {paid_out} != held {inside} "
                    f"(outside world {outside})"
                )


def resync(database: Database, clients: list[Client]) -> None:
    """After a round that found a difference (already counted), take the database's word, so that one
    difference is not counted again in every later round."""
    from milepost.ledger.models import Account, AccountKind
    from milepost.milestones.models import Milestone
    from milepost.projects.models import Bonus
    from milepost.wallets.models import Deposit, Payout

    with database.read_only() as session:
        for c in clients:
            c.deposits = dict(
                session.execute(
                    select(Deposit.id, Deposit.amount).where(Deposit.user_id == c.client.id)
                ).all()
            )
            c.payouts = dict(
                session.execute(
                    select(Payout.id, Payout.amount).where(Payout.user_id == c.freelancer.id)
                ).all()
            )
            c.bonuses = dict(
                session.execute(
                    select(Bonus.id, Bonus.amount).where(Bonus.project_id == c.project_id)
                ).all()
            )
            c.milestones = {
                m.id: MilestoneModel(
                    m.id,
                    m.amount,
                    str(m.status),
                    m.escrow_balance,
                    m.released_amount,
                    m.refunded_amount,
                    m.fee_amount,
                )
                for m in session.scalars(
                    select(Milestone).where(Milestone.project_id == c.project_id)
                )
            }
            balances = dict(
                session.execute(
                    select(Account.user_id, Account.balance).where(
                        Account.kind == AccountKind.USER, Account.currency == c.currency
                    )
                ).all()
            )
            c.client_available = int(balances.get(c.client.id, 0))
            c.freelancer_available = int(balances.get(c.freelancer.id, 0))


def totals(figures: Figures, parts: list[Figures]) -> None:
    for name in (
        "sent",
        "acknowledged",
        "succeeded",
        "refused",
        "cut_off",
        "retries",
        "replayed",
        "server_errors",
        "in_flight_after_restart",
        "in_flight_answers",
        "in_flight_given_up",
        "unresolved",
        "mismatched",
    ):
        setattr(figures, name, getattr(figures, name) + sum(getattr(p, name) for p in parts))
        for p in parts:
            setattr(p, name, 0)
    for p in parts:
        for text in p.problems:
            figures.problem(text)
        p.problems.clear()


# The server rounds -------------------------------------------------------------------------------------


def server_rounds(
    url: str,
    figures: Figures,
    *,
    rounds: int,
    clients: int,
    rng: random.Random,
    log: IO[bytes],
    say: Any,
) -> None:
    database = Database(url)
    server = Server(url, free_port(), log)
    server.start()
    try:
        actors = prepare_clients(database, server.base_url, clients, rng.randrange(1 << 30))
        figures.clients = clients
        for number in range(1, rounds + 1):
            stop = threading.Event()
            stop_by = time.monotonic() + 60  # no round's traffic lasts longer than this
            threads = [
                threading.Thread(target=a.run, args=(stop, stop_by, 5_000), daemon=True)
                for a in actors
            ]
            for thread in threads:
                thread.start()
            # The kill comes at a random moment once the traffic is under way (every client has had
            # an answer: on a busy machine the first ones can take seconds).
            under_way = time.monotonic()
            while time.monotonic() - under_way < 30 and not all(
                a.figures.acknowledged or a.crashed for a in actors
            ):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 2.0))
            server.kill()
            figures.server_kills += 1
            time.sleep(rng.uniform(0.0, 0.5))
            server.start()
            time.sleep(
                rng.uniform(0.3, 1.0)
            )  # traffic, and the cut-off operations' retries, after it
            stop.set()
            for thread in threads:
                thread.join(timeout=OP_DEADLINE + 60)
            for actor, thread in zip(actors, threads, strict=True):
                if thread.is_alive() or actor.crashed is not None:
                    raise RuntimeError(f"client {actor.index} failed: {actor.crashed!r}")
            before = (figures.lost, figures.duplicated, figures.mismatched)
            parts = [a.figures for a in actors]
            totals(figures, parts)
            check_round(database, actors, figures)
            if not ledger_verifies(url, log):
                figures.ledger_verify_failures += 1
                figures.problem(f"round {number}: milepost ledger verify failed (see the log)")
            figures.rounds = number
            if (figures.lost, figures.duplicated, figures.mismatched) != before:
                resync(database, actors)
            say(
                f"{figures.database} round {number}/{rounds}: sent {figures.sent}, "
                f"acknowledged {figures.acknowledged}, lost {figures.lost}, "
                f"duplicated {figures.duplicated}, in flight {figures.in_flight_after_restart}"
            )
        for actor in actors:
            actor.http.close()
    finally:
        server.stop()
        database.dispose()


# The worker kills --------------------------------------------------------------------------------------


def worker_kills(
    url: str,
    figures: Figures,
    *,
    count: int,
    kills: int,
    workers: int,
    rng: random.Random,
    log: IO[bytes],
    say: Any,
) -> None:
    """Make ``count`` milestones whose review period lapsed, kill the worker(s) mid-run until nothing is
    due, then check that each was auto-approved and released exactly once."""
    from milepost import subscribers
    from milepost.audit.models import MilestoneEvent
    from milepost.kit.context import Context
    from milepost.kit.time import utcnow
    from milepost.ledger.models import Account, AccountKind, EntryKind, JournalEntry
    from milepost.milestones import service as milestones
    from milepost.milestones.models import Milestone
    from milepost.milestones.terms import DEFAULT_REVIEW_PERIOD_DAYS
    from milepost.money import fee_on
    from milepost.projects import service as projects
    from milepost.settings import Settings
    from milepost.users.models import User
    from milepost.users.service import create_user
    from milepost.wallets import service as wallets

    subscribers.install()  # this process writes milestones itself (also outside pytest: make crash)
    database = Database(url)
    settings = Settings(fee_bps=FEE_BPS, providers="sandbox,manual")
    # Submitted long enough ago that the review period has lapsed: due at the real clock's now.
    past = utcnow() - timedelta(days=DEFAULT_REVIEW_PERIOD_DAYS + 2)
    amounts = [1_000 + 37 * i for i in range(count)]
    try:
        with cheap_password_hashing(), database.unit_of_work() as session:
            client = create_user(
                session, email=f"wc-{uuid.uuid4().hex[:8]}@example.com", name="C", password=PASSWORD
            )
            freelancer = create_user(
                session, email=f"wf-{uuid.uuid4().hex[:8]}@example.com", name="F", password=PASSWORD
            )
            client_id, freelancer_id = client.id, freelancer.id
            ctx = Context(session, client, now=past, settings=settings)
            wallets.create_deposit(ctx, amount=sum(amounts), currency="USD", provider="sandbox")
            project_id = projects.create_project(
                ctx, title="Due", currency="USD", freelancer_id=freelancer_id
            ).id
        for start in range(0, count, 50):
            with database.unit_of_work() as session:
                as_client = Context(
                    session, session.get(User, client_id), now=past, settings=settings
                )
                as_freelancer = Context(
                    session, session.get(User, freelancer_id), now=past, settings=settings
                )
                for amount in amounts[start : start + 50]:
                    milestone = milestones.create_milestone(
                        as_client,
                        project_id,
                        title=f"Due {amount}",
                        amount=amount,
                        acceptance_criteria=["It works"],
                    )
                    milestones.fund(as_client, milestone.id)
                    milestones.submit(as_freelancer, milestone.id, note="Done")
        figures.auto_approvals_due = count

        def due() -> int:
            with database.read_only() as session:
                return int(
                    session.scalar(
                        select(func.count()).where(
                            Milestone.project_id == project_id, Milestone.status == "submitted"
                        )
                    )
                    or 0
                )

        started = time.monotonic()
        left = due()
        left_at_kills: list[int] = []
        while left > 0 and figures.worker_kills < kills and time.monotonic() - started < 600:
            procs = [
                Process(["worker", "--db", url, "--interval", "0.2"], url, log)
                for _ in range(workers)
            ]
            for proc in procs:
                proc.start()
            # Wait until the work is under way (bounded), then kill at a random moment of it. Both
            # waits are short: on a fast disk a worker clears a few dozen milestones in a fraction
            # of a second, and a kill that lands after the last one tests no crash at all.
            waited = time.monotonic()
            while (
                due() >= left and time.monotonic() - waited < 60 and all(p.alive() for p in procs)
            ):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.04))
            for proc in procs:
                proc.kill()
            figures.worker_kills += 1
            now_left = due()
            left_at_kills.append(now_left)
            if now_left > 0:
                figures.worker_kills_mid_run += 1
            left = now_left
        if left > 0:  # the kill budget is spent: one last worker finishes the work (bounded)
            proc = Process(["worker", "--db", url, "--interval", "0.2"], url, log)
            proc.start()
            waited = time.monotonic()
            while due() > 0 and time.monotonic() - waited < 300:
                time.sleep(0.2)
            proc.stop()
        say(
            f"{figures.database} worker: {figures.worker_kills} kills "
            f"(still due at each: {left_at_kills}), {due()} still due"
        )

        with database.read_only() as session:
            rows = list(
                session.scalars(select(Milestone).where(Milestone.project_id == project_id))
            )
            releases = dict(
                session.execute(
                    select(JournalEntry.milestone_id, func.count())
                    .where(JournalEntry.kind == EntryKind.RELEASE)
                    .group_by(JournalEntry.milestone_id)
                ).all()
            )
            approvals = dict(
                session.execute(
                    select(MilestoneEvent.milestone_id, func.count())
                    .where(MilestoneEvent.action == "auto_approved")
                    .group_by(MilestoneEvent.milestone_id)
                ).all()
            )
            earned = session.scalar(
                select(Account.balance).where(
                    Account.kind == AccountKind.USER, Account.user_id == freelancer_id
                )
            )
        expected_earned = 0
        for row in rows:
            fee = fee_on(row.amount, FEE_BPS)
            expected_earned += row.amount - fee
            once = (
                str(row.status) == "released"
                and row.released_amount == row.amount
                and row.fee_amount == fee
                and releases.get(row.id) == 1
                and approvals.get(row.id) == 1
            )
            if once:
                figures.auto_approvals_once += 1
            else:
                figures.auto_approval_failures += 1
                figures.problem(
                    f"worker: milestone {row.id} is {row.status}, released {row.released_amount} of "
                    f"{row.amount}, {releases.get(row.id, 0)} release entries, "
                    f"{approvals.get(row.id, 0)} auto_approved events"
                )
        if int(earned or 0) != expected_earned:
            figures.auto_approval_failures += 1
            figures.problem(f"worker: the freelancer holds {earned}, expected {expected_earned}")
        if not ledger_verifies(url, log):
            figures.ledger_verify_failures += 1
            figures.problem("worker: milepost ledger verify failed (see the log)")
    finally:
        database.dispose()


# One run -----------------------------------------------------------------------------------------------


def run(
    kind: str,
    workdir: Path,
    *,
    rounds: int,
    clients: int = 8,
    worker_milestones: int | None = None,
    worker_kill_count: int | None = None,
    seed: int | None = None,
    say: Any = print,
) -> Figures:
    """The whole suite on one kind of database ("sqlite" or "postgres"); returns the figures. The
    server's and the workers' output goes to a log file in ``workdir``."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    figures = Figures(database="PostgreSQL" if kind == "postgres" else "SQLite")
    began = time.monotonic()
    log_path = workdir / f"crash-{kind}.log"
    say(f"{figures.database}: seed {seed}, log {log_path}")
    with log_path.open("ab") as log:
        with fresh_database(kind, workdir) as url:
            server_rounds(url, figures, rounds=rounds, clients=clients, rng=rng, log=log, say=say)
        with fresh_database(kind, workdir) as url:
            worker_kills(
                url,
                figures,
                count=worker_milestones or (300 if kind == "postgres" else 150),
                kills=worker_kill_count or rounds,
                workers=2 if kind == "postgres" else 1,
                rng=rng,
                log=log,
                say=say,
            )
    figures.seconds = time.monotonic() - began
    return figures
