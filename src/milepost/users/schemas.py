from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictStr

from milepost.kit.schemas import Body
from milepost.users.models import User


class SignUp(Body):
    email: StrictStr
    name: StrictStr
    password: StrictStr
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


class TokenOut(BaseModel):
    object: Literal["token"] = "token"
    token: str
    user: UserOut
