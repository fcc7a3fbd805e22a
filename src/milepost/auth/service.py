"""Signing in: bearer tokens (random, stored hashed, expiring, revocable) and the login rate limit.

A token works until its ``expires_at`` (``MILEPOST_TOKEN_LIFETIME_DAYS`` after sign-in for API tokens,
``MILEPOST_WEB_SESSION_HOURS`` for browser sessions) or until it is revoked; users list their live
tokens and revoke any of them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select

from milepost.auth.models import ApiToken, LoginFailure, TokenKind
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.db import insert_ignoring_conflicts
from milepost.kit.errors import AuthenticationFailed, NotFound, RateLimited
from milepost.kit.ids import new_id
from milepost.kit.pagination import MAX_LIMIT
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


def lifetime(ctx: Context, kind: TokenKind) -> timedelta:
    if kind is TokenKind.WEB:
        return timedelta(hours=ctx.settings.web_session_hours)
    return timedelta(days=ctx.settings.token_lifetime_days)


def sign_in(
    ctx: Context,
    *,
    email: object,
    password: object,
    address: str | None,
    kind: TokenKind = TokenKind.API,
    label: object = None,
) -> tuple[str, User]:
    """Check the password and issue a token of ``kind``; return (token, user). The token is not stored
    anywhere (``token_record`` finds its row).

    After too many failures for the e-mail or the client address within the window, refuse with 429
    without even checking the password. A failure is recorded (and kept) before the 401 goes out.
    """
    name = validate.text(label, "label", max_length=100, required=False) or None
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
            id=new_id("tok"),
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=ctx.now,
            expires_at=ctx.now + lifetime(ctx, kind),
            kind=kind,
            label=name,
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


# Built once: every authenticated request runs it, and building it cost more CPU than executing it.
_TOKEN_AND_USER = (
    select(User, ApiToken.revoked_at, ApiToken.expires_at)
    .join(ApiToken, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def user_for_token(ctx: Context, token: str) -> User:
    """The user a live token belongs to, or AuthenticationFailed (401): ``invalid_token`` for a revoked
    or unknown token, ``token_expired`` for one past its ``expires_at``."""
    row = ctx.session.execute(_TOKEN_AND_USER, {"token_hash": hash_token(token)}).first()
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed("The token is unknown or revoked.", code="invalid_token")
    if row.expires_at <= ctx.now:
        raise AuthenticationFailed(
            "The token has expired; sign in again for a new one (POST /v1/tokens).",
            code="token_expired",
        )
    return row[0]


def token_record(ctx: Context, token: str) -> ApiToken | None:
    return ctx.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))


def revoke_token(ctx: Context, token: str) -> None:
    token_row = token_record(ctx, token)
    if token_row is not None and token_row.revoked_at is None:
        token_row.revoked_at = ctx.now


@dataclass(frozen=True)
class TokenView:
    """A token as its user sees it in the list: never the secret (which is not stored anyway)."""

    id: str
    kind: TokenKind
    label: str | None
    created_at: datetime
    expires_at: datetime
    current: bool  # the token (or session) this request came with


def list_tokens(ctx: Context, current_token: str | None) -> tuple[list[TokenView], bool]:
    """The actor's live tokens and web sessions (not revoked, not expired), newest first; at most
    100, and whether there are more."""
    user = ctx.require_actor()
    current_hash = None if current_token is None else hash_token(current_token)
    rows = list(
        ctx.session.scalars(
            select(ApiToken)
            .where(
                ApiToken.user_id == user.id,
                ApiToken.revoked_at.is_(None),
                ApiToken.expires_at > ctx.now,
            )
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
            .limit(MAX_LIMIT + 1)
        )
    )
    views = [
        TokenView(
            id=row.id,
            kind=row.kind,
            label=row.label,
            created_at=row.created_at,
            expires_at=row.expires_at,
            current=row.token_hash == current_hash,
        )
        for row in rows[:MAX_LIMIT]
    ]
    return views, len(rows) > MAX_LIMIT


def revoke_token_by_id(ctx: Context, token_id: str) -> None:
    """Revoke one of the actor's tokens (or sessions). Someone else's id, or none at all, is 404;
    revoking one that is already revoked changes nothing."""
    user = ctx.require_actor()
    row = ctx.session.get(ApiToken, token_id) if isinstance(token_id, str) else None
    if row is None or row.user_id != user.id:
        raise NotFound("No such token.", param="token_id")
    if row.revoked_at is None:
        row.revoked_at = ctx.now
