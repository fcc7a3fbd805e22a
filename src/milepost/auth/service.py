"""Signing in: bearer tokens (random, stored hashed, revocable) and the login rate limit."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select

from milepost.auth.models import ApiToken, LoginFailure
from milepost.kit.context import Context
from milepost.kit.db import insert_ignoring_conflicts
from milepost.kit.errors import AuthenticationFailed, RateLimited
from milepost.kit.ids import new_id
from milepost.users.models import User
from milepost.users.service import authenticate

TOKEN_PREFIX = "mp_"
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _subjects(email: object, address: str | None) -> list[tuple[str, int]]:
    subjects = [(f"email:{str(email).strip().lower()[:320]}", MAX_FAILURES_PER_EMAIL)]
    if address:
        subjects.append((f"ip:{address}", MAX_FAILURES_PER_ADDRESS))
    return subjects


def sign_in(
    ctx: Context, *, email: object, password: object, address: str | None
) -> tuple[str, User]:
    """Check the password and issue a token; return (token, user). The token is not stored anywhere.

    After too many failures for the e-mail or the client address within the window, refuse with 429
    without even checking the password. A failure is recorded (and kept) before the 401 goes out.
    """
    subjects = _subjects(email, address)
    for subject, limit in subjects:
        record = ctx.session.get(LoginFailure, subject)
        if (
            record is not None
            and ctx.now - record.window_start < FAILURE_WINDOW
            and record.failures >= limit
        ):
            raise RateLimited("Too many failed sign-ins; try again in a few minutes.")
    try:
        user = authenticate(
            ctx.session,
            email=email if isinstance(email, str) else "",
            password=password if isinstance(password, str) else "",
        )
    except AuthenticationFailed as error:
        for subject, _limit in subjects:
            _count_failure(ctx, subject)
        error.keep_changes = True
        raise
    failures = ctx.session.get(LoginFailure, subjects[0][0])
    if failures is not None:
        ctx.session.delete(failures)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ctx.session.add(
        ApiToken(
            id=new_id("tok"), user_id=user.id, token_hash=hash_token(token), created_at=ctx.now
        )
    )
    ctx.session.flush()
    return token, user


def _count_failure(ctx: Context, subject: str) -> None:
    insert_ignoring_conflicts(
        ctx.session, LoginFailure, [{"subject": subject, "window_start": ctx.now, "failures": 0}]
    )
    record = ctx.session.scalar(
        select(LoginFailure)
        .where(LoginFailure.subject == subject)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert record is not None
    if ctx.now - record.window_start >= FAILURE_WINDOW:
        record.window_start = ctx.now
        record.failures = 0
    record.failures += 1


def user_for_token(ctx: Context, token: str) -> User:
    """The user a live token belongs to, or AuthenticationFailed (401) for a revoked or unknown token."""
    row = ctx.session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if row is None or row[0].revoked_at is not None:
        raise AuthenticationFailed("The token is unknown or revoked.", code="invalid_token")
    return row[1]


def revoke_token(ctx: Context, token: str) -> None:
    token_row = ctx.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if token_row is not None and token_row.revoked_at is None:
        token_row.revoked_at = ctx.now
