"""How the project page, the staff page and a statement grow with the data behind them.

One client with one project grows it to 1k, 10k and 100k milestones (bulk-inserted with SQL, the way a
COPY would: these timings are not about writing). Alongside, one dispute per ten milestones (one in ten of
those still open), a pending manual deposit and payout per hundred milestones (and ten times as many
settled ones), and one deposit entry per milestone in the client's ledger history, spread over the two
years before today. Today's postings stay the same twenty at every size, so a statement of today has the
same lines each time: only the history behind it grows. PostgreSQL is analysed after loading (autovacuum
would do it on its own schedule); SQLite is not (the app runs no ANALYZE).

Each page is requested through the app in-process (Starlette's test client, the web pages signed in with
a session cookie, the statement with an API token), a few times to warm up, then ``--requests`` times;
p50 and p95 are printed per page and size.

    .venv/bin/python bench/paged_reads.py                              # SQLite, 1k/10k/100k
    .venv/bin/python bench/paged_reads.py --backend postgres --sizes 1000,10000,100000
    .venv/bin/python bench/paged_reads.py --sizes 1000,10000 --requests 10   # a quick look

On PostgreSQL it makes a database of its own (``milepost_paged_<pid>_<random>``) and drops only that one.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ledger_rows import fill_project_totals

PASSWORD = "benchmark-password"
DEFAULT_PG = os.environ.get(
    "MILEPOST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextmanager
def own_database(backend: str, pg_url: str) -> Iterator[str]:
    """A fresh, migrated database of this run's own; removed afterwards."""
    from milepost.kit.schema import upgrade_schema

    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'paged.db'}"
            upgrade_schema(url)
            yield url
        return
    name = f"milepost_paged_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{pg_url.rpartition('/')[0]}/{name}"
    try:
        upgrade_schema(url)
        yield url
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Data:
    """The people, the project and the rows made so far; ``grow_to`` adds rows up to a size."""

    def __init__(self, database: Any, settings: Any) -> None:
        from milepost.kit.context import Context
        from milepost.milestones import service as milestones
        from milepost.projects import service as projects
        from milepost.users.service import create_user
        from milepost.wallets import destinations
        from milepost.wallets import service as wallets

        self.db = database
        self.settings = settings

        def act(user: Any, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            from milepost.users.models import User

            with database.unit_of_work() as session:
                actor = None if user is None else session.get(User, user.id)
                return action(Context(session, actor, settings=settings), *args, **kwargs)

        with database.unit_of_work() as session:
            self.client = create_user(
                session, email="client@example.com", name="Client", password=PASSWORD
            )
            self.freelancer = create_user(
                session, email="freelancer@example.com", name="Freelancer", password=PASSWORD
            )
            self.staff = create_user(
                session, email="staff@example.com", name="Staff", password=PASSWORD, is_staff=True
            )
        self.project = act(
            self.client,
            projects.create_project,
            title="Big project",
            currency="USD",
            freelancer_id=self.freelancer.id,
        )
        self.destination = act(
            self.client,
            destinations.add_destination,
            holder_name="Client",
            iban="DE89 3704 0044 0532 0130 00",
        )
        # Today's activity, the same at every size: ten deposits, and five milestones funded.
        for _ in range(10):
            act(self.client, wallets.create_deposit, amount=100_000, currency="USD")
        for _ in range(5):
            made = act(
                self.client,
                milestones.create_milestone,
                self.project.id,
                title="Today",
                amount=10_000,
                acceptance_criteria=["Works"],
            )
            act(self.client, milestones.fund, made.id)
        self.milestones = 5
        self.disputes = 0
        self.transfers = 0
        self.history = 0
        with database.read_only() as session:
            self.template = self._row(session)

    def _row(self, session: Any) -> dict[str, Any]:
        from milepost.milestones.models import Milestone

        table = Milestone.__table__
        row = session.execute(select(table).where(table.c.project_id == self.project.id)).first()
        return dict(row._mapping)

    def grow_to(self, size: int) -> None:
        from milepost.disputes.models import Dispute
        from milepost.kit.ids import new_id
        from milepost.ledger.models import Account, JournalEntry, Posting
        from milepost.milestones.models import Milestone
        from milepost.wallets.models import Deposit, Payout

        now = datetime.now(UTC)
        start = self.milestones
        rows, disputes, deposits, payouts, entries, postings = [], [], [], [], [], []
        for n in range(start + 1, size + 1):
            created = now - timedelta(days=2 + (n * 7919) % 728, seconds=n % 86_400)
            kind = n % 10
            amount = 10_000 + (n % 50) * 100
            funded = amount if kind in (0, 1, 2, 3, 4, 5) else 0
            released = amount if kind in (0, 1, 2) else 0
            status = {
                0: "released",
                1: "released",
                2: "released",
                3: "funded",
                4: "submitted",
                5: "disputed",
                6: "draft",
                7: "draft",
                8: "draft",
                9: "cancelled",
            }[kind]
            milestone_id = new_id("ms")
            rows.append(
                {
                    **self.template,
                    "id": milestone_id,
                    "position": n,
                    "title": f"Milestone {n}",
                    "status": status,
                    "amount": amount,
                    "funded_amount": funded,
                    "released_amount": released,
                    "fee_amount": released // 10,
                    "fee_rate_bps": 1000 if funded else None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            if kind == 5:  # one dispute per ten milestones; one in ten of those still open
                is_open = (n // 10) % 10 == 0
                disputes.append(
                    {
                        "id": new_id("dsp"),
                        "milestone_id": milestone_id,
                        "opened_by": self.client.id,
                        "opener_role": "client",
                        "reason": "Not what was agreed",
                        "status": "open" if is_open else "resolved",
                        "status_before": "submitted",
                        "respond_by": created + timedelta(days=7),
                        "mediation_due_at": created + timedelta(days=14),
                        "created_at": created,
                        "ended_at": None if is_open else created + timedelta(days=3),
                    }
                )
            if n % 10 == 0:  # settled transfers, and one pending of each per hundred milestones
                pending = n % 100 == 0
                common = {
                    "user_id": self.client.id,
                    "amount": amount,
                    "currency": "USD",
                    "provider": "manual",
                    "reference": f"MP-{n}",
                    "created_at": created,
                }
                deposits.append(
                    {
                        **common,
                        "id": new_id("dep"),
                        "status": "pending" if pending else "succeeded",
                        "succeeded_at": None if pending else created,
                    }
                )
                payouts.append(
                    {
                        **common,
                        "id": new_id("po"),
                        "status": "pending" if pending else "paid",
                        "paid_at": None if pending else created,
                        "destination_id": self.destination.id,
                    }
                )
            entry_id = new_id("je")
            entries.append(
                {
                    "id": entry_id,
                    "kind": "deposit",
                    "memo": "Deposit (history)",
                    "milestone_id": None,
                    "actor_id": self.client.id,
                    "created_at": created,
                    "hash": "0" * 64,
                }
            )
            postings.append((entry_id, amount))
        with self.db.unit_of_work() as session:
            accounts = dict(
                session.execute(
                    select(Account.key, Account.id).where(
                        Account.key.in_([f"user:{self.client.id}:USD", "external:sandbox:USD"])
                    )
                ).all()
            )
            user_account = accounts[f"user:{self.client.id}:USD"]
            outside = accounts["external:sandbox:USD"]
            posting_rows = []
            for entry_id, amount in postings:
                posting_rows.append(
                    {
                        "id": new_id("pst"),
                        "entry_id": entry_id,
                        "account_id": user_account,
                        "amount": amount,
                        "currency": "USD",
                    }
                )
                posting_rows.append(
                    {
                        "id": new_id("pst"),
                        "entry_id": entry_id,
                        "account_id": outside,
                        "amount": -amount,
                        "currency": "USD",
                    }
                )
            for table, batch in (
                (Milestone.__table__, rows),
                (Dispute.__table__, disputes),
                (Deposit.__table__, deposits),
                (Payout.__table__, payouts),
                (JournalEntry.__table__, entries),
                (Posting.__table__, posting_rows),
            ):
                for first in range(0, len(batch), 5_000):
                    if batch[first : first + 5_000]:
                        session.execute(insert(table), batch[first : first + 5_000])
            added = sum(amount for _, amount in postings)
            session.execute(
                update(Account)
                .where(Account.id == user_account)
                .values(balance=Account.balance + added)
            )
            session.execute(
                update(Account).where(Account.id == outside).values(balance=Account.balance - added)
            )
            fill_project_totals(session.connection())
        if (
            self.db.engine.dialect.name == "postgresql"
        ):  # as autovacuum would; the app runs no ANALYZE
            with self.db.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        self.milestones = size


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def signed_in(app: Any, email: str) -> Any:
    from fastapi.testclient import TestClient

    browser = TestClient(app)
    token = _csrf(browser.get("/login").text)
    answer = browser.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return browser


def api_client(app: Any, email: str) -> Any:
    from fastapi.testclient import TestClient

    client = TestClient(app)
    answer = client.post("/v1/tokens", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return client


def timed(get: Callable[[], Any], requests: int) -> tuple[float, float]:
    for _ in range(3):
        answer = get()
        assert answer.status_code == 200, (answer.status_code, answer.text[:500])
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        answer = get()
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    from milepost import subscribers
    from milepost.app import create_app
    from milepost.kit.db import Database
    from milepost.settings import Settings

    subscribers.install()

    settings = Settings(
        fee_bps=1000,
        providers="sandbox,manual",
        secret_key=secrets.token_urlsafe(32),
        files_dir=tempfile.mkdtemp(prefix="milepost-paged-files-"),
    )
    with own_database(args.backend, args.pg_url) as url:
        database = Database(url)
        data = Data(database, settings)
        app = create_app(settings, database=database)
        client_pages = signed_in(app, "client@example.com")
        staff_pages = signed_in(app, "staff@example.com")
        client_api = api_client(app, "client@example.com")
        today = datetime.now(UTC).date().isoformat()
        pages: dict[str, Callable[[], Any]] = {
            "project page": lambda: client_pages.get(f"/projects/{data.project.id}"),
            "staff page": lambda: staff_pages.get("/staff"),
            "statement (today)": lambda: client_api.get(
                "/v1/ledger/statement.csv", params={"from": today}
            ),
        }
        print(f"{args.backend}, {args.requests} requests per page and size (ms)")
        print(f"{'page':<22}" + "".join(f"{f'{size:,}':>24}" for size in sizes))
        results: dict[str, list[str]] = {name: [] for name in pages}
        for size in sizes:
            began = time.perf_counter()
            data.grow_to(size)
            print(
                f"  ({size:,} milestones loaded in {time.perf_counter() - began:.1f} s)",
                file=sys.stderr,
            )
            for name, get in pages.items():
                p50, p95 = timed(get, args.requests)
                results[name].append(f"p50 {p50:7.1f} p95 {p95:7.1f}")
        for name, cells in results.items():
            print(f"{name:<22}" + "".join(f"{cell:>24}" for cell in cells))
        database.dispose()


if __name__ == "__main__":
    main()
