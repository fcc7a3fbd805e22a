from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, StrictStr

from milepost.kit.schemas import Body
from milepost.users.models import User


class SignUp(Body):
    email: StrictStr
    name: StrictStr
    password: StrictStr


class SignIn(Body):
    email: StrictStr
    password: StrictStr


class UserOut(BaseModel):
    id: str
    object: Literal["user"] = "user"
    email: str
    name: str
    is_staff: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            is_staff=user.is_staff,
            created_at=user.created_at,
        )


class TokenOut(BaseModel):
    object: Literal["token"] = "token"
    token: str
    user: UserOut
