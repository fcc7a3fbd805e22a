"""Users: sign-up (e-mail, password rules, hashing) and signing in."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from milepost.kit.errors import AuthenticationFailed, ValidationFailed
from milepost.users.models import User
from milepost.users.service import authenticate, create_user
from tests.world import World

PASSWORD = "a long enough secret"


def sign_up(world: World, **fields: Any) -> User:
    values = {"email": "ada@example.com", "name": "Ada", "password": PASSWORD, **fields}
    with world.db.unit_of_work() as session:
        return create_user(session, **values)


def sign_in(world: World, email: str, password: str) -> User:
    with world.db.unit_of_work() as session:
        return authenticate(session, email=email, password=password)


def users(world: World) -> list[tuple[str, str]]:
    with world.db.read_only() as session:
        return [(u.email, u.password_hash) for u in session.scalars(select(User).order_by(User.id))]


def test_sign_up_normalises_the_email_and_stores_only_an_argon2_hash(world: World) -> None:
    user = sign_up(world, email="  Ada.Lovelace@Example.COM ", name=" Ada ", password="0123456789")
    assert (user.email, user.name, user.is_staff) == ("ada.lovelace@example.com", "Ada", False)
    [(email, password_hash)] = users(world)
    assert email == "ada.lovelace@example.com"
    assert password_hash.startswith("$argon2")
    assert "0123456789" not in password_hash


def test_sign_up_refusals_change_nothing(world: World) -> None:
    sign_up(world, email="ada@example.com")
    before = users(world)
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"email": "ADA@example.com"}, "email_taken"),
        ({"email": " ada@example.com"}, "email_taken"),
        ({"email": "bob@example.com", "password": "123456789"}, "password_too_short"),
        ({"email": "bob@example.com", "password": None}, "password_too_short"),
        ({"email": "not an address"}, "invalid_value"),
        ({"email": "bob@example.com", "name": ""}, "missing"),
    ]
    for fields, code in refusals:
        with pytest.raises(ValidationFailed) as refused:
            sign_up(world, **fields)
        assert (refused.value.status, refused.value.code) == (422, code), fields
        assert users(world) == before, fields
    with world.db.read_only() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_sign_in_with_the_right_password_only(world: World) -> None:
    user = sign_up(world, email="ada@example.com")
    assert sign_in(world, "ada@example.com", PASSWORD).id == user.id
    assert sign_in(world, " ADA@Example.com ", PASSWORD).id == user.id

    failures = []
    for email, password in (
        ("ada@example.com", PASSWORD + "!"),
        ("ada@example.com", ""),
        ("bob@example.com", PASSWORD),
    ):
        with pytest.raises(AuthenticationFailed) as refused:
            sign_in(world, email, password)
        failures.append((refused.value.status, refused.value.code, refused.value.message))
    # A wrong password and an unknown address look exactly the same.
    assert failures == [(401, "bad_credentials", "Wrong e-mail or password.")] * 3
