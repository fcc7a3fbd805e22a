from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictStr

from milepost.auth.service import TokenView
from milepost.kit.schemas import Body
from milepost.users.models import User


class SignUp(Body):
    email: StrictStr
    name: StrictStr
    password: StrictStr = Field(
        description="At least 10 characters (at most 1024).",
        json_schema_extra={"minLength": 10, "maxLength": 1024},
    )
    time_zone: StrictStr = Field(
        "UTC", description="An IANA time zone name (Europe/Berlin); the web app shows times in it."
    )


class MeUpdate(Body):
    time_zone: StrictStr = Field(
        description="An IANA time zone name (Europe/Berlin); the web app shows times in it."
    )


class SignIn(Body):
    email: StrictStr
    password: StrictStr
    label: StrictStr | None = Field(
        None, description="Your name for the token (up to 100 characters), shown in GET /v1/tokens."
    )


class UserOut(BaseModel):
    id: str
    object: Literal["user"] = "user"
    email: str
    name: str
    is_staff: bool
    time_zone: str = "UTC"
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            is_staff=user.is_staff,
            time_zone=user.time_zone,
            created_at=user.created_at,
        )


class TokenInfo(BaseModel):
    """A token in the list: everything but the secret."""

    id: str
    object: Literal["token"] = "token"
    kind: Literal["api", "web"]
    label: str | None
    created_at: datetime
    expires_at: datetime
    current: bool = Field(description="Whether this is the token the request was sent with.")

    @classmethod
    def of(cls, view: TokenView) -> TokenInfo:
        return cls(
            id=view.id,
            kind=view.kind.value,
            label=view.label,
            created_at=view.created_at,
            expires_at=view.expires_at,
            current=view.current,
        )


class TokenOut(BaseModel):
    """A new token: the secret is in ``token``, shown this once."""

    object: Literal["token"] = "token"
    id: str
    token: str
    label: str | None
    created_at: datetime
    expires_at: datetime
    user: UserOut
