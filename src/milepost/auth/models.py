from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, UTCDateTime, str_enum


class TokenKind(StrEnum):
    API = "api"  # from POST /v1/tokens: MILEPOST_TOKEN_LIFETIME_DAYS
    WEB = "web"  # a browser session's cookie: MILEPOST_WEB_SESSION_HOURS


class ApiToken(Base):
    """A bearer token (or a browser session, which is the same thing in a cookie). Only its SHA-256 is
    stored; the token itself is shown once, at sign-in. It works until ``expires_at`` or until revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[TokenKind] = mapped_column(str_enum(TokenKind), default=TokenKind.API)
    # The user's name for it ("CI deploy key"), to tell tokens apart when revoking one.
    label: Mapped[str | None] = mapped_column(String(100))


class LoginFailure(Base):
    """Failed sign-ins counted per e-mail and per client address, in fixed windows."""

    __tablename__ = "login_failures"

    # "email:<address>" or "ip:<address>"
    subject: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
