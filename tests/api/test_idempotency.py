"""Idempotency keys over HTTP (API.md, Idempotency): a retried POST is answered, not done again."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.http import ApiDep
from milepost.kit.idempotency_models import IdempotencyKey
from milepost.settings import Settings
from milepost.wallets import service as wallets
from milepost.wallets.schemas import DepositOut
from tests.api.conftest import PASSWORD, Client, LiveServer

_keys = itertools.count(1)


def new_key() -> str:
    return f"key-{next(_keys)}"


def balance(client: Client, currency: str = "USD") -> int:
    rows = client.ok("GET", "/v1/balances")["data"]
    return sum(row["available"] for row in rows if row["currency"] == currency)


def deposits_of(db: Database, user_id: str) -> int:
    from milepost.wallets.models import Deposit

    with db.read_only() as session:
        return len(session.scalars(select(Deposit).where(Deposit.user_id == user_id)).all())


def assert_error(response: httpx.Response, status: int, type_: str, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["type"], error["code"]) == (type_, code), error
    return error


def assert_replay(original: httpx.Response, replay: httpx.Response) -> None:
    assert replay.status_code == original.status_code, replay.text
    assert replay.json() == original.json()
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.headers["x-request-id"] != original.headers["x-request-id"]


def test_the_same_key_and_body_replays_the_first_response(sign_up: Any, db: Database) -> None:
    alice = sign_up("alice")
    key = new_key()
    body = {"amount": 2_500, "currency": "USD"}
    first = alice.post("/v1/deposits", body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    for _ in range(3):
        assert_replay(first, alice.post("/v1/deposits", body, headers={"Idempotency-Key": key}))
    # The same JSON with its keys in another order and other spacing is the same request.
    reordered = b'{ "currency" : "USD",\n "amount": 2500 }'
    again = alice.post(
        "/v1/deposits",
        content=reordered,
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )
    assert_replay(first, again)

    assert balance(alice) == 2_500
    assert deposits_of(db, alice.id) == 1
    # Without a key, the same body is a new deposit.
    assert alice.post("/v1/deposits", body).status_code == 201
    assert balance(alice) == 5_000


def test_the_same_key_with_another_body_is_refused(sign_up: Any) -> None:
    alice = sign_up("alice")
    key = new_key()
    first = alice.post(
        "/v1/deposits", {"amount": 1_000, "currency": "USD"}, headers={"Idempotency-Key": key}
    )
    assert first.status_code == 201
    for other in (
        {"amount": 1_001, "currency": "USD"},
        {"amount": 1_000, "currency": "EUR"},
        {"amount": 1_000, "currency": "USD", "provider": "manual"},
    ):
        response = alice.post("/v1/deposits", other, headers={"Idempotency-Key": key})
        error = assert_error(response, 422, "validation", "idempotency_key_reused")
        assert error["param"] == "Idempotency-Key"
    # The same key on another endpoint is another request too.
    payout = alice.post(
        "/v1/payouts", {"amount": 1_000, "currency": "USD"}, headers={"Idempotency-Key": key}
    )
    assert_error(payout, 422, "validation", "idempotency_key_reused")

    assert balance(alice) == 1_000
    assert balance(alice, "EUR") == 0
    # The first response is still what the key answers.
    assert_replay(
        first,
        alice.post(
            "/v1/deposits", {"amount": 1_000, "currency": "USD"}, headers={"Idempotency-Key": key}
        ),
    )


def test_a_refused_request_replays_its_refusal_and_still_moves_nothing(
    sign_up: Any, db: Database
) -> None:
    alice = sign_up("alice")
    alice.ok("POST", "/v1/deposits", {"amount": 500, "currency": "USD"})
    key = new_key()
    body = {"amount": 800, "currency": "USD"}
    refused = alice.post("/v1/payouts", body, headers={"Idempotency-Key": key})
    assert_error(refused, 402, "insufficient_funds", "insufficient_funds")

    assert_replay(refused, alice.post("/v1/payouts", body, headers={"Idempotency-Key": key}))
    assert balance(alice) == 500

    # Even once the money is there, that key keeps answering what it answered: nothing is paid out.
    alice.ok("POST", "/v1/deposits", {"amount": 500, "currency": "USD"})
    assert_replay(refused, alice.post("/v1/payouts", body, headers={"Idempotency-Key": key}))
    assert balance(alice) == 1_000
    # A new key does the payout, once.
    fresh = new_key()
    paid = alice.post("/v1/payouts", body, headers={"Idempotency-Key": fresh})
    assert paid.status_code == 201
    assert_replay(paid, alice.post("/v1/payouts", body, headers={"Idempotency-Key": fresh}))
    assert balance(alice) == 200


def test_two_users_sending_the_same_key_are_two_keys(sign_up: Any) -> None:
    alice = sign_up("alice")
    bob = sign_up("bob")
    key = "order-1"
    first = alice.post(
        "/v1/deposits", {"amount": 300, "currency": "USD"}, headers={"Idempotency-Key": key}
    )
    second = bob.post(
        "/v1/deposits", {"amount": 300, "currency": "USD"}, headers={"Idempotency-Key": key}
    )
    third = bob.post(
        "/v1/deposits", {"amount": 999, "currency": "USD"}, headers={"Idempotency-Key": "order-2"}
    )
    different = alice.post(
        "/v1/deposits", {"amount": 999, "currency": "USD"}, headers={"Idempotency-Key": "order-2"}
    )
    for response in (first, second, third, different):
        assert response.status_code == 201, response.text
        assert "idempotent-replayed" not in response.headers
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["user_id"] == alice.id and second.json()["user_id"] == bob.id
    assert balance(alice) == 1_299
    assert balance(bob) == 1_299


def test_sign_up_can_be_retried_with_a_key(base_url: str) -> None:
    anonymous = Client(base_url)
    body = {"email": "retry@example.com", "name": "Retry", "password": PASSWORD}
    first = anonymous.post("/v1/users", body, headers={"Idempotency-Key": "signup-1"})
    assert first.status_code == 201, first.text
    assert_replay(first, anonymous.post("/v1/users", body, headers={"Idempotency-Key": "signup-1"}))
    # Without the key, it is a second sign-up: refused.
    taken = anonymous.post("/v1/users", body)
    assert_error(taken, 422, "validation", "email_taken")


def test_keys_longer_than_255_characters_are_refused(sign_up: Any) -> None:
    alice = sign_up("alice")
    body = {"amount": 100, "currency": "USD"}
    for key in ("k" * 256, "k" * 5000):
        response = alice.post("/v1/deposits", body, headers={"Idempotency-Key": key})
        error = assert_error(response, 422, "validation", "invalid_value")
        assert error["param"] == "Idempotency-Key"
    assert_error(
        alice.post("/v1/deposits", body, headers={"Idempotency-Key": ""}),
        422,
        "validation",
        "invalid_value",
    )
    assert alice.ok("GET", "/v1/balances")["data"] == []

    longest = "k" * 255
    first = alice.post("/v1/deposits", body, headers={"Idempotency-Key": longest})
    assert first.status_code == 201, first.text
    assert_replay(first, alice.post("/v1/deposits", body, headers={"Idempotency-Key": longest}))
    assert balance(alice) == 100


def test_concurrent_duplicates_move_the_money_once(
    base_url: str, sign_up: Any, db: Database
) -> None:
    alice = sign_up("alice")
    assert alice.token is not None
    key = new_key()
    body = {"amount": 4_200, "currency": "USD"}
    headers = {"Idempotency-Key": key, "Authorization": f"Bearer {alice.token}"}
    count = 10
    barrier = threading.Barrier(count)
    responses: list[httpx.Response | BaseException] = [RuntimeError("not run")] * count

    def send(index: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            http.get("/v1/me", headers=headers)  # connect first, so that the POSTs start together
            barrier.wait(timeout=30)
            try:
                responses[index] = http.post("/v1/deposits", json=body, headers=headers)
            except BaseException as error:  # reported below
                responses[index] = error

    threads = [threading.Thread(target=send, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    answers = [response for response in responses if isinstance(response, httpx.Response)]
    assert len(answers) == count, responses
    created = [response for response in answers if response.status_code == 201]
    originals = [r for r in created if r.headers.get("idempotent-replayed") != "true"]
    assert len(originals) == 1, [(r.status_code, r.headers, r.text) for r in answers]
    original = originals[0]
    for response in answers:
        if response.status_code == 201:
            assert response.json() == original.json()
        else:
            assert_error(response, 409, "conflict", "idempotency_key_in_flight")

    assert balance(alice) == 4_200
    assert deposits_of(db, alice.id) == 1
    # Once it is over, a retry replays the deposit.
    assert_replay(original, alice.post("/v1/deposits", body, headers={"Idempotency-Key": key}))
    assert balance(alice) == 4_200


def test_a_key_can_be_reused_after_24_hours(sign_up: Any, db: Database) -> None:
    alice = sign_up("alice")
    key = new_key()
    first = alice.post(
        "/v1/deposits", {"amount": 100, "currency": "USD"}, headers={"Idempotency-Key": key}
    )
    assert first.status_code == 201

    def age_key(hours: int) -> None:
        with db.unit_of_work() as session:
            row = session.scalar(
                select(IdempotencyKey).where(IdempotencyKey.scope_key.endswith(f":{key}"))
            )
            assert row is not None
            row.created_at = row.created_at - timedelta(hours=hours)

    # 23 hours on, the key still holds.
    age_key(23)
    stale = alice.post(
        "/v1/deposits", {"amount": 200, "currency": "USD"}, headers={"Idempotency-Key": key}
    )
    assert_error(stale, 422, "validation", "idempotency_key_reused")

    # Past 24 hours, the same key with a new body is a new request.
    age_key(2)
    second = alice.post(
        "/v1/deposits", {"amount": 200, "currency": "USD"}, headers={"Idempotency-Key": key}
    )
    assert second.status_code == 201, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert balance(alice) == 300
    # And that new request is what the key answers now.
    assert_replay(
        second,
        alice.post(
            "/v1/deposits", {"amount": 200, "currency": "USD"}, headers={"Idempotency-Key": key}
        ),
    )
    assert balance(alice) == 300


@pytest.fixture
def flaky_server(db: Database, settings: Settings) -> Iterator[str]:
    """The real app plus a test-only deposit route whose first attempt crashes after moving the money."""
    live = LiveServer(db, settings)
    app = live.server.config.app
    assert isinstance(app, FastAPI)
    attempts = itertools.count(1)

    @app.post("/v1/test-only/flaky-deposits", status_code=201)
    async def flaky_deposit(api: ApiDep) -> Any:
        def action(ctx: Context) -> Any:
            deposit = wallets.create_deposit(ctx, amount=700, currency="USD")
            if next(attempts) == 1:
                raise RuntimeError("the process fell over after the deposit")
            return deposit

        return await api.write(action, DepositOut.of, status=201)

    with live as url:
        yield url


def test_a_crash_releases_the_key_and_changes_nothing(flaky_server: str, db: Database) -> None:
    from milepost.users.service import create_user

    with db.unit_of_work() as session:
        create_user(session, email="flaky@example.com", name="Flaky", password=PASSWORD)
    token = Client(flaky_server).post(
        "/v1/tokens", {"email": "flaky@example.com", "password": PASSWORD}
    )
    alice = Client(flaky_server, token.json()["token"], token.json()["user"])
    key = new_key()

    crashed = alice.post("/v1/test-only/flaky-deposits", {}, headers={"Idempotency-Key": key})
    assert_error(crashed, 500, "api_error", "internal_error")
    assert alice.ok("GET", "/v1/balances")["data"] == []

    # Not replayed as a 500, not stuck "in flight": the retry runs.
    retried = alice.post("/v1/test-only/flaky-deposits", {}, headers={"Idempotency-Key": key})
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert_replay(
        retried, alice.post("/v1/test-only/flaky-deposits", {}, headers={"Idempotency-Key": key})
    )
    assert balance(alice) == 700


# A key keeps its first answer (every refusal but a transient one) ------------------------------------


def funded_milestone(sign_up: Any, amount: int = 5_000) -> tuple[Client, Client, str]:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    client.ok("POST", "/v1/deposits", {"amount": amount, "currency": "USD"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Keys", "currency": "USD", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "All", "amount": amount}
    )
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    return client, freelancer, str(milestone["id"])


def test_an_invalid_state_refusal_is_kept_for_its_key(sign_up: Any) -> None:
    client, freelancer, milestone_id = funded_milestone(sign_up)
    key = new_key()
    path = f"/v1/milestones/{milestone_id}/approve"
    # Nothing has been submitted: approving is refused.
    refused = client.post(path, None, headers={"Idempotency-Key": key})
    assert_error(refused, 409, "conflict", "invalid_state")

    freelancer.ok(
        "POST",
        f"/v1/milestones/{milestone_id}/submissions",
        {"note": "Done", "evidence": [{"type": "link", "url": "https://example.com/x"}]},
    )
    # The same key and body keep answering the refusal: the money is not released by a retry.
    assert_replay(refused, client.post(path, None, headers={"Idempotency-Key": key}))
    assert client.ok("GET", f"/v1/milestones/{milestone_id}")["status"] == "submitted"
    assert balance(freelancer) == 0
    # A new key is a new request: it approves, once.
    approved = client.post(path, None, headers={"Idempotency-Key": new_key()})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "released"
    assert balance(freelancer) == 4_500


@pytest.fixture
def busy_server(db: Database, settings: Settings) -> Iterator[str]:
    """The real app plus a test-only deposit route whose first attempt finds the database busy (the driver's
    own "database is locked" error, through the real unit of work)."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    live = LiveServer(db, settings)
    app = live.server.config.app
    assert isinstance(app, FastAPI)
    attempts = itertools.count(1)

    @app.post("/v1/test-only/busy-deposits", status_code=201)
    async def busy_deposit(api: ApiDep) -> Any:
        def action(ctx: Context) -> Any:
            deposit = wallets.create_deposit(ctx, amount=300, currency="USD")
            if next(attempts) == 1:
                raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))
            return deposit

        return await api.write(action, DepositOut.of, status=201)

    with live as url:
        yield url


def test_a_transient_conflict_releases_the_key_and_the_retry_runs(
    busy_server: str, db: Database
) -> None:
    from milepost.users.service import create_user

    with db.unit_of_work() as session:
        create_user(session, email="busy@example.com", name="Busy", password=PASSWORD)
    token = Client(busy_server).post(
        "/v1/tokens", {"email": "busy@example.com", "password": PASSWORD}
    )
    alice = Client(busy_server, token.json()["token"], token.json()["user"])
    key = new_key()

    busy = alice.post("/v1/test-only/busy-deposits", {}, headers={"Idempotency-Key": key})
    assert_error(busy, 409, "conflict", "conflict")
    assert alice.ok("GET", "/v1/balances")["data"] == []

    retried = alice.post("/v1/test-only/busy-deposits", {}, headers={"Idempotency-Key": key})
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert_replay(
        retried, alice.post("/v1/test-only/busy-deposits", {}, headers={"Idempotency-Key": key})
    )
    assert balance(alice) == 300


# Uploads are the same request when they carry the same file, whatever the multipart boundary ---------


def multipart(
    boundary: str, filename: str, data: bytes, extra: dict[str, str] | None = None
) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (extra or {}).items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def upload(client: Client, key: str, boundary: str, filename: str, data: bytes) -> httpx.Response:
    return client.post(
        "/v1/files",
        content=multipart(boundary, filename, data),
        headers={
            "Idempotency-Key": key,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )


def test_the_same_file_sent_again_with_its_key_replays_whatever_the_boundary(
    sign_up: Any, db: Database
) -> None:
    from milepost.files.models import StoredFile

    alice = sign_up("alice")
    key = new_key()
    data = b"the delivered report\n" * 50
    first = upload(alice, key, "boundary-one-1111", "report.txt", data)
    assert first.status_code == 201, first.text
    again = upload(alice, key, "another-boundary-2222", "report.txt", data)
    assert_replay(first, again)
    with db.read_only() as session:
        assert len(session.scalars(select(StoredFile)).all()) == 1

    # Another file, or the same bytes under another name, is another request for that key.
    other_bytes = upload(alice, key, "boundary-3333", "report.txt", data + b"!")
    assert_error(other_bytes, 422, "validation", "idempotency_key_reused")
    other_name = upload(alice, key, "boundary-4444", "summary.txt", data)
    assert_error(other_name, 422, "validation", "idempotency_key_reused")


def test_a_tick_removes_expired_keys_and_keeps_live_ones(
    sign_up: Any, db: Database, settings: Settings
) -> None:
    from milepost.kit.time import utcnow
    from milepost.schedule.service import run_due

    alice = sign_up("alice")
    body = {"amount": 100, "currency": "USD"}
    expired_key, live_key = new_key(), new_key()
    expired = alice.post("/v1/deposits", body, headers={"Idempotency-Key": expired_key})
    assert expired.status_code == 201, expired.text
    live = alice.post("/v1/deposits", body, headers={"Idempotency-Key": live_key})
    assert live.status_code == 201, live.text

    def key_row(key: str) -> IdempotencyKey | None:
        with db.read_only() as session:
            return session.scalar(
                select(IdempotencyKey).where(IdempotencyKey.scope_key.endswith(f":{key}"))
            )

    with db.unit_of_work() as session:
        row = session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.scope_key.endswith(f":{expired_key}"))
        )
        assert row is not None
        row.created_at = row.created_at - timedelta(hours=25)
    # The live one is old, but not past its 24 hours.
    with db.unit_of_work() as session:
        row = session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.scope_key.endswith(f":{live_key}"))
        )
        assert row is not None
        row.created_at = row.created_at - timedelta(hours=23)

    run_due(db, settings, utcnow(), deliver_emails=False, deliver_webhooks=False)

    assert key_row(expired_key) is None
    assert key_row(live_key) is not None
    assert_replay(live, alice.post("/v1/deposits", body, headers={"Idempotency-Key": live_key}))
    assert balance(alice) == 200


def test_a_tick_in_the_future_keeps_keys_that_are_live_now(
    sign_up: Any, db: Database, settings: Settings
) -> None:
    from milepost.kit.time import utcnow
    from milepost.schedule.service import run_due

    alice = sign_up("alice")
    body = {"amount": 100, "currency": "USD"}
    key = new_key()
    first = alice.post("/v1/deposits", body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text

    run_due(
        db, settings, utcnow() + timedelta(days=3), deliver_emails=False, deliver_webhooks=False
    )

    assert_replay(first, alice.post("/v1/deposits", body, headers={"Idempotency-Key": key}))
    assert balance(alice) == 100
