"""Signing up, signing in, tokens and the login rate limit, as an API client sees them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from milepost.kit.db import Database
from tests.api.conftest import PASSWORD, Client, assert_error, capture_logs

_numbers = itertools.count(1)


def fresh_email(name: str = "person") -> str:
    return f"{name}.auth{next(_numbers)}@example.com"


def register(base_url: str, email: str, password: str = PASSWORD, name: str = "Ada") -> Any:
    response = Client(base_url).post(
        "/v1/users", {"email": email, "name": name, "password": password}
    )
    assert response.status_code == 201, response.text
    return response.json()


def sign_in(base_url: str, email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
    return Client(base_url).post("/v1/tokens", {"email": email, "password": password}, **kwargs)


def everything_in(db: Database) -> str:
    """Every row of every table, as one string: for "this secret is stored nowhere" checks."""
    from milepost.models import Base

    rows: list[str] = []
    with db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                rows.append(repr(tuple(row)))
    return "\n".join(rows)


@pytest.fixture
def captured_logs() -> Iterator[list[str]]:
    """Every record logged under ``milepost`` (requests included) while the test runs, as JSON lines."""
    with capture_logs("milepost") as lines:
        yield lines


# --- sign-up -------------------------------------------------------------------------------------


def test_sign_up_returns_the_user_without_any_password(base_url: str) -> None:
    email = fresh_email("Ada")
    response = Client(base_url).post(
        "/v1/users", {"email": email, "name": "Ada Lovelace", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["object"] == "user"
    assert user["id"].startswith("usr_")
    assert user["email"] == email.lower()
    assert user["name"] == "Ada Lovelace"
    assert user["is_staff"] is False
    assert user["created_at"]
    assert PASSWORD not in response.text
    assert not any("password" in key or "hash" in key for key in user)
    assert "argon2" not in response.text


def test_sign_up_with_a_taken_email_or_a_short_password_is_refused(base_url: str) -> None:
    email = fresh_email()
    register(base_url, email)
    again = Client(base_url).post(
        "/v1/users", {"email": email, "name": "Someone else", "password": "another password"}
    )
    assert_error(again, 422, "validation", "email_taken", "email")
    # The address is compared case-insensitively.
    shouted = Client(base_url).post(
        "/v1/users", {"email": email.upper(), "name": "Shouty", "password": "another password"}
    )
    assert_error(shouted, 422, "validation", "email_taken", "email")

    other = fresh_email()
    for short in ("short", "123456789", ""):
        response = Client(base_url).post(
            "/v1/users", {"email": other, "name": "Bo", "password": short}
        )
        assert_error(response, 422, "validation", param="password")
    # Nothing was created: the address is still free.
    register(base_url, other)


def test_sign_up_with_missing_unknown_or_mistyped_fields_is_refused(base_url: str) -> None:
    anonymous = Client(base_url)
    valid = {"email": fresh_email(), "name": "Cy", "password": PASSWORD}
    for missing in ("email", "name", "password"):
        body = {key: value for key, value in valid.items() if key != missing}
        assert_error(anonymous.post("/v1/users", body), 422, "validation", "missing", missing)

    extra = anonymous.post("/v1/users", {**valid, "is_staff": True})
    assert_error(extra, 422, "validation", "unknown_field", "is_staff")

    mistyped: list[tuple[str, Any]] = [
        ("email", 42),
        ("name", ["Ed"]),
        ("password", 12345678901),
        ("password", None),
        ("email", "not-an-address"),
    ]
    for field, value in mistyped:
        response = anonymous.post("/v1/users", {**valid, field: value})
        assert_error(response, 422, "validation", param=field)

    # None of those created anybody: the address is still free.
    register(base_url, valid["email"])


# --- sign-in -------------------------------------------------------------------------------------


def test_sign_in_returns_a_token_and_the_user(base_url: str) -> None:
    email = fresh_email()
    user = register(base_url, email)
    response = sign_in(base_url, email)
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    assert body["user"] == user
    assert PASSWORD not in response.text
    # The token works.
    me = Client(base_url, body["token"]).get("/v1/me")
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    assert set(me.json()) >= {"id", "email", "name", "is_staff"}


def test_wrong_password_and_unknown_email_are_indistinguishable(base_url: str) -> None:
    email = fresh_email()
    register(base_url, email)
    wrong_password = assert_error(
        sign_in(base_url, email, "not the password"), 401, "authentication"
    )
    unknown_email = assert_error(sign_in(base_url, fresh_email("nobody")), 401, "authentication")
    assert wrong_password == unknown_email


def test_tokens_are_stored_hashed(base_url: str, db: Database) -> None:
    email = fresh_email()
    register(base_url, email)
    tokens = [sign_in(base_url, email).json()["token"] for _ in range(2)]
    # A client retrying a sign-in with an Idempotency-Key must not leave the token stored either.
    retried = sign_in(base_url, email, headers={"Idempotency-Key": "sign-in-1"})
    assert retried.status_code == 201, retried.text
    tokens.append(retried.json()["token"])
    assert len(set(tokens)) == 3

    with db.engine.connect() as connection:
        stored = [row[0] for row in connection.execute(text("SELECT token_hash FROM api_tokens"))]
    assert len(stored) == 3
    dump = everything_in(db)
    for token in tokens:
        assert token not in stored
        assert token not in dump
        # Not even the random part without its prefix.
        assert token.partition("_")[2] not in dump
    assert PASSWORD not in dump


# --- GET /v1/me and tokens --------------------------------------------------------------------------


def test_me_without_a_valid_token_is_401(base_url: str, sign_up: Any) -> None:
    response = Client(base_url).get("/v1/me")
    assert_error(response, 401, "authentication", "missing_token")
    assert response.headers["www-authenticate"] == "Bearer"
    for header in ("Token abc", "Bearer", "Basic dXNlcjpwYXNz", "mp_abc", ""):
        response = httpx.get(f"{base_url}/v1/me", headers={"Authorization": header})
        assert_error(response, 401, "authentication", "missing_token")
        assert response.headers["www-authenticate"] == "Bearer"

    alice = sign_up("alice")
    assert alice.token is not None
    for token in ("mp_" + "x" * 43, alice.token + "x", alice.token[:-1], "' OR 1=1 --"):
        response = Client(base_url, token).get("/v1/me")
        assert_error(response, 401, "authentication", "invalid_token")
        assert response.headers["www-authenticate"] == "Bearer"
    # The real one still works, also with the scheme in lower case.
    assert alice.ok("GET", "/v1/me")["id"] == alice.id
    lower = httpx.get(f"{base_url}/v1/me", headers={"Authorization": f"bearer {alice.token}"})
    assert lower.status_code == 200


def test_signing_out_revokes_only_that_token(base_url: str, sign_up: Any) -> None:
    alice = sign_up("alice")
    other = sign_in(base_url, alice.user["email"]).json()["token"]

    response = alice.delete("/v1/tokens/current")
    assert response.status_code == 204
    assert response.content == b""

    assert_error(alice.get("/v1/me"), 401, "authentication", "invalid_token")
    assert_error(alice.get("/v1/balances"), 401, "authentication", "invalid_token")
    deposit = alice.post("/v1/deposits", {"amount": 100, "currency": "USD"})
    assert_error(deposit, 401, "authentication", "invalid_token")
    # Signing out again with the revoked token is refused too.
    assert_error(alice.delete("/v1/tokens/current"), 401, "authentication")

    still = Client(base_url, other)
    assert still.ok("GET", "/v1/me")["id"] == alice.id
    assert still.ok("GET", "/v1/balances")["data"] == []
    assert_error(Client(base_url).delete("/v1/tokens/current"), 401, "authentication")


# --- the login rate limit -------------------------------------------------------------------------


def test_five_failures_for_an_email_block_it_even_with_the_right_password(
    base_url: str, db: Database
) -> None:
    victim = fresh_email("victim")
    bystander = fresh_email("bystander")
    register(base_url, victim)
    register(base_url, bystander)

    for attempt in range(5):
        assert_error(sign_in(base_url, victim, f"guess number {attempt}"), 401, "authentication")
    # The failures were committed although every one of those requests failed.
    with db.engine.connect() as connection:
        counts: dict[str, int] = dict(
            connection.execute(text("SELECT subject, failures FROM login_failures")).all()
        )
    assert counts[f"email:{victim}"] == 5

    blocked = sign_in(base_url, victim)
    assert_error(blocked, 429, "rate_limited")
    assert "token" not in blocked.json()
    # Still blocked: the refused attempts did not reset the count.
    assert_error(sign_in(base_url, victim), 429, "rate_limited")
    assert_error(sign_in(base_url, victim.upper()), 429, "rate_limited")

    # Another e-mail from the same address is not blocked.
    assert sign_in(base_url, bystander).status_code == 201


def test_the_address_is_blocked_after_twenty_failures(base_url: str) -> None:
    accounts = [fresh_email("acct") for _ in range(5)]
    for email in accounts:
        register(base_url, email)
    last = accounts.pop()

    # 4 e-mails x 5 failures = 20 failures from this address; no e-mail went over its own limit.
    for email in accounts:
        for attempt in range(5):
            failure = sign_in(base_url, email, f"wrong {attempt}")
            assert_error(failure, 401, "authentication")
        # Signing in still works for a fresh e-mail until the address limit is reached.
        if email != accounts[-1]:
            assert sign_in(base_url, last).status_code == 201

    # Now even an untouched e-mail with the right password is refused from this address.
    assert_error(sign_in(base_url, last), 429, "rate_limited")
    assert_error(sign_in(base_url, fresh_email("unknown")), 429, "rate_limited")


def test_passwords_never_reach_the_logs(
    base_url: str, sign_up: Any, captured_logs: list[str]
) -> None:
    email = fresh_email()
    secret = "s3cret-password-that-must-not-leak"
    wrong = "wrong-password-that-must-not-leak"
    register(base_url, email, secret)
    token = sign_in(base_url, email, secret).json()["token"]
    assert sign_in(base_url, email, wrong).status_code == 401
    assert sign_in(base_url, fresh_email(), wrong).status_code == 401
    malformed = Client(base_url).post(
        "/v1/tokens", {"email": email, "password": secret, "extra": secret}
    )
    assert malformed.status_code == 422
    assert Client(base_url, token).get("/v1/me").status_code == 200

    requests = [json.loads(line) for line in captured_logs if '"message": "request"' in line]
    paths = [entry["path"] for entry in requests]
    assert paths.count("/v1/tokens") == 4
    assert "/v1/users" in paths and "/v1/me" in paths
    everything = "\n".join(captured_logs)
    for leak in (secret, wrong, token):
        assert leak not in everything
