"""Tokens expire (MILEPOST_TOKEN_LIFETIME_DAYS, web sessions MILEPOST_WEB_SESSION_HOURS), and users list
and revoke their own."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import update

from milepost.auth import service as auth
from milepost.auth.models import ApiToken, TokenKind
from milepost.kit.context import Context
from milepost.kit.db import Database, UTCDateTime, normalise_url
from milepost.kit.errors import AuthenticationFailed
from milepost.kit.schema import upgrade_schema
from milepost.settings import Settings
from milepost.users.service import create_user
from tests.api.conftest import PASSWORD, Client, LiveServer, assert_error


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_a_token_shows_when_it_expires_and_the_list_shows_it_without_the_secret(
    sign_up: Any, base_url: str
) -> None:
    alice = sign_up("alice")
    before = datetime.now(UTC)
    response = Client(base_url).post(
        "/v1/tokens",
        {"email": alice.user["email"], "password": PASSWORD, "label": "CI deploy"},
    )
    assert response.status_code == 201, response.text
    issued = response.json()
    assert issued["object"] == "token" and issued["label"] == "CI deploy"
    lifetime = _when(issued["expires_at"]) - _when(issued["created_at"])
    assert lifetime == timedelta(days=90)
    assert _when(issued["created_at"]) >= before - timedelta(seconds=5)

    listed = alice.ok("GET", "/v1/tokens")
    assert listed["object"] == "list" and listed["has_more"] is False
    by_id = {row["id"]: row for row in listed["data"]}
    assert len(by_id) == 2  # the fixture's sign-in, and the labelled one
    assert by_id[issued["id"]] == {
        "id": issued["id"],
        "object": "token",
        "kind": "api",
        "label": "CI deploy",
        "created_at": issued["created_at"],
        "expires_at": issued["expires_at"],
        "current": False,
    }
    assert [row["current"] for row in listed["data"] if row["id"] != issued["id"]] == [True]
    assert issued["token"] not in str(listed) and alice.token not in str(listed)
    # Seen from the new token, it is the current one.
    mine = Client(base_url, issued["token"]).ok("GET", "/v1/tokens")["data"]
    assert {row["id"]: row["current"] for row in mine}[issued["id"]] is True
    # Labels are text of at most 100 characters.
    for label in ("x" * 101, 5):
        refused = Client(base_url).post(
            "/v1/tokens", {"email": alice.user["email"], "password": PASSWORD, "label": label}
        )
        assert_error(refused, 422, "validation", param="label")


def test_an_expired_token_is_401_token_expired(sign_up: Any, db: Database) -> None:
    alice = sign_up("alice")
    assert alice.get("/v1/me").status_code == 200
    with db.unit_of_work() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == alice.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    for method, path in (("GET", "/v1/me"), ("POST", "/v1/deposits"), ("GET", "/v1/tokens")):
        response = alice.request(method, path, json={"amount": 100, "currency": "USD"})
        assert_error(response, 401, "authentication", "token_expired")
        assert response.headers["www-authenticate"] == "Bearer"
    assert alice.get("/v1/balances").status_code == 401


def test_tokens_expire_after_the_configured_lifetime(db: Database) -> None:
    settings = Settings(token_lifetime_days=2, web_session_hours=3)
    with db.unit_of_work() as session:
        create_user(session, email="ada@example.com", name="Ada", password=PASSWORD)
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    issued: dict[TokenKind, str] = {}
    for kind in TokenKind:
        with db.unit_of_work() as session:
            ctx = Context(session, None, now=now, settings=settings)
            issued[kind], _user = auth.sign_in(
                ctx, email="ada@example.com", password=PASSWORD, address=None, kind=kind
            )
    lifetimes = {TokenKind.API: timedelta(days=2), TokenKind.WEB: timedelta(hours=3)}
    for kind, token in issued.items():
        with db.read_only() as session:
            just_before = Context(session, None, now=now + lifetimes[kind] - timedelta(seconds=1))
            assert auth.user_for_token(just_before, token).email == "ada@example.com"
            at_expiry = Context(session, None, now=now + lifetimes[kind])
            with pytest.raises(AuthenticationFailed) as refused:
                auth.user_for_token(at_expiry, token)
            assert refused.value.code == "token_expired"


def test_users_revoke_their_own_tokens_and_get_404_for_others(sign_up: Any, base_url: str) -> None:
    alice, bob = sign_up("alice"), sign_up("bob")
    spare = Client(base_url).post(
        "/v1/tokens", {"email": alice.user["email"], "password": PASSWORD}
    )
    spare_token, spare_id = spare.json()["token"], spare.json()["id"]
    bob_id = bob.ok("GET", "/v1/tokens")["data"][0]["id"]

    for token_id in (bob_id, "tok_nothing"):
        assert_error(alice.delete(f"/v1/tokens/{token_id}"), 404, "not_found")
    assert bob.get("/v1/me").status_code == 200  # untouched

    assert alice.delete(f"/v1/tokens/{spare_id}").status_code == 204
    assert_error(
        Client(base_url, spare_token).get("/v1/me"), 401, "authentication", "invalid_token"
    )
    assert spare_id not in [row["id"] for row in alice.ok("GET", "/v1/tokens")["data"]]
    assert alice.delete(f"/v1/tokens/{spare_id}").status_code == 204  # again: nothing changes
    assert alice.get("/v1/me").status_code == 200
    # Revoking the token the request came with signs the caller out.
    own = alice.ok("GET", "/v1/tokens")["data"][0]
    assert own["current"] is True
    assert alice.delete(f"/v1/tokens/{own['id']}").status_code == 204
    assert_error(alice.get("/v1/me"), 401, "authentication", "invalid_token")
    assert_error(httpx.get(f"{base_url}/v1/tokens"), 401, "authentication", "missing_token")


def test_the_configured_lifetime_applies_over_http(db: Database, tmp_path: Path) -> None:
    settings = Settings(files_dir=str(tmp_path / "files"), token_lifetime_days=7)
    with db.unit_of_work() as session:
        create_user(session, email="ada@example.com", name="Ada", password=PASSWORD)
    with LiveServer(db, settings) as url:
        issued = Client(url).post("/v1/tokens", {"email": "ada@example.com", "password": PASSWORD})
    body = issued.json()
    assert _when(body["expires_at"]) - _when(body["created_at"]) == timedelta(days=7)


# The migration ------------------------------------------------------------------------------------------


def _migrate_with_old_tokens(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parents[2] / "src" / "milepost" / "migrations")
    )
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    command.upgrade(config, "0008")
    # The tables as 0008 left them, written through the app's column type (as the app wrote them).
    users = sa.table(
        "users",
        *(sa.column(name) for name in ("id", "email", "name", "password_hash", "is_staff")),
        sa.column("time_zone"),
        sa.column("created_at", UTCDateTime()),
    )
    tokens = sa.table(
        "api_tokens",
        *(sa.column(name) for name in ("id", "user_id", "token_hash")),
        sa.column("created_at", UTCDateTime()),
    )
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(
                users.insert().values(
                    id="usr_old",
                    email="old@example.com",
                    name="Old",
                    password_hash="x",
                    is_staff=False,
                    time_zone="UTC",
                    created_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
            connection.execute(
                tokens.insert(),
                [
                    {
                        "id": "tok_1",
                        "user_id": "usr_old",
                        "token_hash": "1" * 64,
                        "created_at": datetime(2026, 1, 1, 9, 30, tzinfo=UTC),
                    },
                    {
                        "id": "tok_2",
                        "user_id": "usr_old",
                        "token_hash": "2" * 64,
                        "created_at": datetime(2026, 11, 30, 23, 0, tzinfo=UTC),
                    },
                ],
            )
    finally:
        engine.dispose()
    upgrade_schema(url)


def _check_migrated(url: str) -> None:
    database = Database(url)
    try:
        with database.read_only() as session:
            tokens = {row.id: row for row in session.scalars(sa.select(ApiToken))}
    finally:
        database.dispose()
    assert {token_id: (row.expires_at, row.kind) for token_id, row in tokens.items()} == {
        "tok_1": (datetime(2026, 4, 1, 9, 30, tzinfo=UTC), TokenKind.API),
        "tok_2": (datetime(2027, 2, 28, 23, 0, tzinfo=UTC), TokenKind.API),
    }


def test_the_migration_gives_existing_tokens_90_days_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _migrate_with_old_tokens(url)
    _check_migrated(url)


def test_the_migration_gives_existing_tokens_90_days_on_postgres(postgres_url: str) -> None:
    admin_url = postgres_url.rpartition("/")[0] + "/postgres"
    name = f"milepost_token_migration_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = postgres_url.rpartition("/")[0] + "/" + name
        _migrate_with_old_tokens(url)
        _check_migrated(url)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
