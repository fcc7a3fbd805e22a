"""Ambiguous outcomes are never run twice: a TCP proxy between the server and PostgreSQL breaks the
connection at the worst moments, for every endpoint that moves money.

- Drop after COMMIT: the transaction committed, the server never heard so. It answers 500
  ``outcome_unknown`` (never "nothing was changed"); the retry with the same Idempotency-Key replays the
  committed response, and the money moved exactly once.
- Drop mid-transaction: PostgreSQL rolls back. The server answers 503 (nothing was changed) and the retry
  with the key runs the request, once.
- Delay: every packet is slow; everything still happens exactly once.

PostgreSQL only: SQLite is a file in the server's own process, with no network hop between the two, so
there is no connection to cut. (A failure of SQLite's own COMMIT is covered in tests/kit/test_commit.py.)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from milepost.kit.db import Database
from milepost.ledger.verify import verify_ledger
from milepost.settings import Settings
from tests.api.conftest import PASSWORD, Client, LiveServer, assert_error
from tests.faults.proxy import PostgresFaultProxy

USD = "USD"
AMOUNT = 10_000
SUBMISSION = {"note": "Done", "evidence": [{"type": "link", "url": "https://staging.example/1"}]}
# The statement that stores the response for the key, in the request's own transaction: after it, the
# transaction has done everything and only COMMIT is left.
STORE_RESPONSE = "UPDATE idempotency_keys"
_people = itertools.count(1)
_keys = itertools.count(1)


@pytest.fixture
def backend() -> str:
    return "postgres"  # see the module docstring


@pytest.fixture(scope="module")
def proxy(postgres_url: str) -> Iterator[PostgresFaultProxy]:
    url = make_url(postgres_url)
    with PostgresFaultProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture(scope="module")
def server(
    postgres_url: str, proxy: PostgresFaultProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app on loopback, its database reached only through the proxy. One server for the module (each
    test still starts from empty tables: the ``db`` fixture): it must keep working after every fault."""
    through = (
        make_url(postgres_url)
        .set(host="127.0.0.1", port=proxy.port)
        .update_query_dict({"sslmode": "disable", "gssencmode": "disable"})
    )
    database = Database(through.render_as_string(hide_password=False))
    files = tmp_path_factory.mktemp("files")
    settings = Settings(fee_bps=1000, files_dir=str(files), providers="sandbox,manual")
    try:
        with LiveServer(database, settings) as url:
            yield url
    finally:
        database.dispose()


@dataclass
class Cast:
    client: Client
    freelancer: Client
    staff: Client
    project_id: str


def person(server: str, db: Database, name: str, *, staff: bool = False) -> Client:
    from milepost.users.service import create_user

    email = f"{name}{next(_people)}@example.com"
    with db.unit_of_work() as session:
        create_user(session, email=email, name=name, password=PASSWORD, is_staff=staff)
    body = Client(server).post("/v1/tokens", {"email": email, "password": PASSWORD}).json()
    return Client(server, body["token"], body["user"])


@pytest.fixture
def cast(server: str, db: Database, proxy: PostgresFaultProxy) -> Cast:
    proxy.disarm()
    proxy.delay(0)
    client, freelancer = person(server, db, "client"), person(server, db, "freelancer")
    staff = person(server, db, "staff", staff=True)
    project = client.ok(
        "POST", "/v1/projects", {"title": "Faults", "currency": USD, "freelancer_id": freelancer.id}
    )
    return Cast(client, freelancer, staff, project["id"])


def available(who: Client) -> int:
    rows = who.ok("GET", "/v1/balances")["data"]
    return sum(row["available"] for row in rows if row["currency"] == USD)


def deposit(who: Client, amount: int) -> None:
    who.ok("POST", "/v1/deposits", {"amount": amount, "currency": USD, "provider": "sandbox"})


def milestone(cast: Cast, state: str) -> str:
    """A milestone of AMOUNT in ``state``; the client's wallet holds exactly what it needs."""
    made = cast.client.ok(
        "POST", f"/v1/projects/{cast.project_id}/milestones", {"title": "M", "amount": AMOUNT}
    )
    path = f"/v1/milestones/{made['id']}"
    deposit(cast.client, AMOUNT)
    if state == "draft":
        return str(made["id"])
    cast.client.ok("POST", f"{path}/fund")
    if state == "submitted":
        cast.freelancer.ok("POST", f"{path}/submissions", SUBMISSION)
    if state == "cancellation_requested":
        cast.client.ok("POST", f"{path}/cancellation-request", {"reason": "Budget cut"})
    return str(made["id"])


@dataclass
class Call:
    who: Client
    path: str
    body: Any
    # (client's available, freelancer's available) once the call has happened exactly once
    expected: tuple[int, int]


def dispute(cast: Cast) -> tuple[str, str]:
    mid = milestone(cast, "funded")
    opened = cast.client.ok("POST", f"/v1/milestones/{mid}/disputes", {"reason": "Late"})
    return mid, str(opened["id"])


FEE = AMOUNT // 10


def _deposit(cast: Cast) -> Call:
    body = {"amount": 2_500, "currency": USD, "provider": "sandbox"}
    return Call(cast.client, "/v1/deposits", body, (2_500, 0))


def _deposit_confirm(cast: Cast) -> Call:
    pending = cast.client.ok(
        "POST", "/v1/deposits", {"amount": 2_500, "currency": USD, "provider": "manual"}
    )
    return Call(cast.staff, f"/v1/deposits/{pending['id']}/confirm", None, (2_500, 0))


def _payout(cast: Cast) -> Call:
    deposit(cast.freelancer, 5_000)
    body = {"amount": 3_000, "currency": USD, "provider": "sandbox"}
    return Call(cast.freelancer, "/v1/payouts", body, (0, 2_000))


def _payout_mark_paid(cast: Cast) -> Call:
    deposit(cast.freelancer, 5_000)
    account = cast.freelancer.ok(
        "POST",
        "/v1/payout-destinations",
        {"holder_name": "Fred Example", "iban": "DE89 3704 0044 0532 0130 00"},
    )
    payout = cast.freelancer.ok(
        "POST",
        "/v1/payouts",
        {"amount": 3_000, "currency": USD, "provider": "manual", "destination_id": account["id"]},
    )
    return Call(cast.staff, f"/v1/payouts/{payout['id']}/mark-paid", None, (0, 2_000))


def _fund(cast: Cast) -> Call:
    mid = milestone(cast, "draft")
    return Call(cast.client, f"/v1/milestones/{mid}/fund", None, (0, 0))


def _release_partial(cast: Cast) -> Call:
    mid = milestone(cast, "funded")
    return Call(cast.client, f"/v1/milestones/{mid}/release", {"amount": 1_000}, (0, 900))


def _approve(cast: Cast) -> Call:
    mid = milestone(cast, "submitted")
    return Call(cast.client, f"/v1/milestones/{mid}/approve", None, (0, AMOUNT - FEE))


def _cancel(cast: Cast) -> Call:
    mid = milestone(cast, "funded")
    return Call(cast.freelancer, f"/v1/milestones/{mid}/cancel", None, (AMOUNT, 0))


def _cancellation_accept(cast: Cast) -> Call:
    mid = milestone(cast, "cancellation_requested")
    path = f"/v1/milestones/{mid}/cancellation-request/accept"
    return Call(cast.freelancer, path, None, (AMOUNT, 0))


def _bonus(cast: Cast) -> Call:
    deposit(cast.client, 1_000)
    path = f"/v1/projects/{cast.project_id}/bonuses"
    return Call(cast.client, path, {"amount": 1_000, "note": "Thanks"}, (0, 900))


def _offer_accept(cast: Cast) -> Call:
    _mid, did = dispute(cast)
    offer = cast.freelancer.ok("POST", f"/v1/disputes/{did}/offers", {"to_freelancer": 6_000})
    path = f"/v1/disputes/{did}/offers/{offer['id']}/accept"
    return Call(cast.client, path, None, (4_000, 5_400))


def _resolve(cast: Cast) -> Call:
    _mid, did = dispute(cast)
    body = {"to_freelancer": 5_000, "to_client": 5_000, "note": "Half each"}
    return Call(cast.staff, f"/v1/disputes/{did}/resolve", body, (5_000, 4_500))


ENDPOINTS: dict[str, Callable[[Cast], Call]] = {
    "deposit": _deposit,
    "deposit confirm": _deposit_confirm,
    "payout": _payout,
    "payout mark-paid": _payout_mark_paid,
    "fund": _fund,
    "release partial": _release_partial,
    "approve": _approve,
    "cancel": _cancel,
    "cancellation accept": _cancellation_accept,
    "bonus": _bonus,
    "dispute offer accept": _offer_accept,
    "dispute resolve": _resolve,
}


def money(cast: Cast) -> tuple[int, int]:
    return available(cast.client), available(cast.freelancer)


def journal_entries(db: Database) -> int:
    from milepost.ledger.models import JournalEntry

    with db.read_only() as session:
        return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


def assert_ledger_verifies(db: Database) -> None:
    with db.read_only() as session:
        report = verify_ledger(session)
    assert report.ok, report.problems


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_a_commit_whose_answer_is_lost_is_replayed_not_run_again(
    endpoint: str, cast: Cast, proxy: PostgresFaultProxy, db: Database
) -> None:
    call = ENDPOINTS[endpoint](cast)
    key = f"ambiguous-{next(_keys)}"
    headers = {"Idempotency-Key": key}
    entries_before = journal_entries(db)

    fired = proxy.drop_after_commit(STORE_RESPONSE)
    first = call.who.post(call.path, call.body, headers=headers)
    assert fired.is_set(), "the proxy never saw the request's COMMIT"
    error = assert_error(first, 500, "api_error", "outcome_unknown")
    assert "nothing was changed" not in error["message"]
    assert "unknown" in error["message"] and "same Idempotency-Key" in error["message"]
    # It did commit: the money moved, once.
    assert money(cast) == call.expected
    moved = journal_entries(db) - entries_before
    assert moved >= 1

    retried = call.who.post(call.path, call.body, headers=headers)
    assert retried.status_code in (200, 201), retried.text
    assert retried.headers.get("idempotent-replayed") == "true"
    again = call.who.post(call.path, call.body, headers=headers)
    assert (again.status_code, again.json()) == (retried.status_code, retried.json())

    assert money(cast) == call.expected
    assert journal_entries(db) - entries_before == moved
    assert_ledger_verifies(db)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_a_connection_lost_mid_transaction_changes_nothing_and_the_retry_runs_once(
    endpoint: str, cast: Cast, proxy: PostgresFaultProxy, db: Database
) -> None:
    call = ENDPOINTS[endpoint](cast)
    key = f"mid-{next(_keys)}"
    headers = {"Idempotency-Key": key}
    before = money(cast)
    entries_before = journal_entries(db)

    fired = proxy.drop_mid_transaction(STORE_RESPONSE)
    first = call.who.post(call.path, call.body, headers=headers)
    assert fired.is_set()
    error = assert_error(first, 503, "service_unavailable", "service_unavailable")
    assert "nothing was changed" in error["message"]
    assert first.headers["retry-after"].isdigit()
    assert money(cast) == before
    assert journal_entries(db) == entries_before

    retried = call.who.post(call.path, call.body, headers=headers)
    assert retried.status_code in (200, 201), retried.text
    assert "idempotent-replayed" not in retried.headers
    replayed = call.who.post(call.path, call.body, headers=headers)
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json() == retried.json()
    assert money(cast) == call.expected
    assert_ledger_verifies(db)


def test_without_a_key_the_message_says_to_check_before_retrying(
    cast: Cast, proxy: PostgresFaultProxy, db: Database
) -> None:
    fired = proxy.drop_after_commit("INSERT INTO deposits")
    first = cast.client.post(
        "/v1/deposits", {"amount": 700, "currency": USD, "provider": "sandbox"}
    )
    assert fired.is_set()
    error = assert_error(first, 500, "api_error", "outcome_unknown")
    assert "unknown" in error["message"] and "Check" in error["message"]
    assert "nothing was changed" not in error["message"]
    # It committed; and the server goes on working on the connections it has left.
    assert available(cast.client) == 700
    deposit(cast.client, 300)
    assert available(cast.client) == 1_000


def test_a_slow_network_still_moves_money_exactly_once(
    cast: Cast, proxy: PostgresFaultProxy, db: Database
) -> None:
    proxy.delay(0.02)
    try:
        call = _release_partial(cast)
        headers = {"Idempotency-Key": f"slow-{next(_keys)}"}
        first = call.who.post(call.path, call.body, headers=headers)
        assert first.status_code == 200, first.text
        replay = call.who.post(call.path, call.body, headers=headers)
        assert replay.headers.get("idempotent-replayed") == "true"
        assert money(cast) == call.expected
    finally:
        proxy.delay(0)
    assert_ledger_verifies(db)
