"""The API's user carries the time zone the web app shows times in; sign-up may set it."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from milepost.kit.db import Database
from milepost.users.models import User
from tests.api.conftest import (  # noqa: F401 (fixtures)
    PASSWORD,
    Client,
    assert_error,
    base_url,
    settings,
)

_emails = itertools.count(1)


def _email() -> str:
    return f"zone{next(_emails)}@example.com"


def test_sign_up_with_a_time_zone_stores_it_and_shows_it(base_url: str, db: Database) -> None:  # noqa: F811
    anonymous = Client(base_url)
    email = _email()
    user = anonymous.ok(
        "POST",
        "/v1/users",
        {"email": email, "name": "Kenji", "password": PASSWORD, "time_zone": "Asia/Tokyo"},
        status=201,
    )
    assert user["time_zone"] == "Asia/Tokyo"
    token = anonymous.ok("POST", "/v1/tokens", {"email": email, "password": PASSWORD})["token"]
    assert Client(base_url, token).ok("GET", "/v1/me")["time_zone"] == "Asia/Tokyo"
    with db.read_only() as session:
        assert session.scalar(select(User.time_zone).where(User.email == email)) == "Asia/Tokyo"


def test_without_a_time_zone_it_is_utc(base_url: str) -> None:  # noqa: F811
    user = Client(base_url).ok(
        "POST", "/v1/users", {"email": _email(), "name": "U", "password": PASSWORD}, status=201
    )
    assert user["time_zone"] == "UTC"


def test_an_unknown_time_zone_is_refused_and_no_user_is_made(base_url: str, db: Database) -> None:  # noqa: F811
    email = _email()
    for zone in ("Mars/Olympus_Mons", "asia/tokyo", 9):
        response = Client(base_url).post(
            "/v1/users", {"email": email, "name": "M", "password": PASSWORD, "time_zone": zone}
        )
        assert_error(response, 422, "validation", param="time_zone")
    with db.read_only() as session:
        assert session.scalar(select(User.id).where(User.email == email)) is None


def test_a_user_changes_their_time_zone_and_a_bad_one_changes_nothing(
    base_url: str,  # noqa: F811
    db: Database,
) -> None:
    anonymous = Client(base_url)
    email = _email()
    anonymous.ok("POST", "/v1/users", {"email": email, "name": "Ines", "password": PASSWORD}, 201)
    token = anonymous.ok("POST", "/v1/tokens", {"email": email, "password": PASSWORD})["token"]
    me = Client(base_url, token)

    assert me.ok("PATCH", "/v1/me", {"time_zone": "Europe/Lisbon"})["time_zone"] == "Europe/Lisbon"
    for body in ({"time_zone": "Lisbon"}, {"time_zone": None}, {"name": "Other"}, {}):
        assert_error(me.patch("/v1/me", body), 422, "validation")
    assert me.ok("GET", "/v1/me")["time_zone"] == "Europe/Lisbon"
    with db.read_only() as session:
        assert session.scalar(select(User.time_zone).where(User.email == email)) == "Europe/Lisbon"
    assert_error(anonymous.patch("/v1/me", {"time_zone": "UTC"}), 401, "authentication")
