"""Users: sign-up and password checks. Client and freelancer are roles per project; staff is a flag."""

from __future__ import annotations

import functools
import zoneinfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from milepost.kit import validate
from milepost.kit.db import flush_now
from milepost.kit.errors import AuthenticationFailed, NotFound, ValidationFailed
from milepost.kit.ids import new_id
from milepost.kit.time import utcnow
from milepost.users.models import User

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so that a wrong address costs the same time as a wrong
# password and does not reveal which addresses have accounts.
_DUMMY_HASH = _hasher.hash("milepost-dummy-password")


def check_time_zone(value: object) -> str:
    """An IANA time zone name as the tz database spells it ("Europe/Berlin", "UTC")."""
    if isinstance(value, str) and value in _zones():
        return value
    raise ValidationFailed(
        "Time zone must be a name from the tz database, such as Europe/Berlin or UTC.",
        code="invalid_time_zone",
        param="time_zone",
    )


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def time_zones() -> list[str]:
    """Every zone a user may choose, sorted, for a form's list."""
    return sorted(_zones())


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    is_staff: bool = False,
    time_zone: str = "UTC",
) -> User:
    address = validate.email(email)
    zone = check_time_zone(time_zone)
    display_name = validate.text(name, "name", max_length=200)
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"Password must be at least {MIN_PASSWORD_LENGTH} characters.",
            code="password_too_short",
            param="password",
        )
    if len(password) > 1024:
        raise ValidationFailed("Password must be at most 1024 characters.", param="password")
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise ValidationFailed(
            "An account with this e-mail address exists already.", code="email_taken", param="email"
        )
    user = User(
        id=new_id("usr"),
        email=address,
        name=display_name,
        password_hash=_hasher.hash(password),
        is_staff=is_staff,
        time_zone=zone,
        created_at=utcnow(),
    )
    session.add(user)
    try:
        flush_now(session)
    except IntegrityError:
        # A concurrent sign-up with the same address committed between the check above and this insert
        # (PostgreSQL; SQLite's write lock serialises sign-ups). The unit of work rolls back.
        raise ValidationFailed(
            "An account with this e-mail address exists already.", code="email_taken", param="email"
        ) from None
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    """Return the user whose e-mail and password these are, or raise AuthenticationFailed."""
    address = email.strip().lower() if isinstance(email, str) else ""
    user = session.scalar(select(User).where(User.email == address))
    candidate_hash = user.password_hash if user is not None else _DUMMY_HASH
    try:
        _hasher.verify(candidate_hash, password if isinstance(password, str) else "")
    except (VerificationError, InvalidHashError):
        raise AuthenticationFailed("Wrong e-mail or password.", code="bad_credentials") from None
    if user is None:
        raise AuthenticationFailed("Wrong e-mail or password.", code="bad_credentials")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", param="id")
    return user


def get_user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound("No user with that e-mail address.", param="email")
    return user


def set_time_zone(session: Session, user: User, time_zone: object) -> User:
    user.time_zone = check_time_zone(time_zone)
    session.flush()
    return user
