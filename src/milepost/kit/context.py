"""The context every service call runs in: one unit of work, who is acting, and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from milepost.kit.time import as_utc, utcnow
from milepost.settings import Settings, get_settings
from milepost.users.models import User


@dataclass
class Context:
    session: Session
    # The signed-in user, or None for the system (time-driven work).
    actor: User | None
    now: datetime = field(default_factory=utcnow)
    settings: Settings = field(default_factory=get_settings)

    def __post_init__(self) -> None:
        self.now = as_utc(self.now)

    @property
    def actor_id(self) -> str | None:
        return None if self.actor is None else self.actor.id

    def require_actor(self) -> User:
        from milepost.kit.errors import AuthenticationFailed

        if self.actor is None:
            raise AuthenticationFailed("This action needs a signed-in user.")
        return self.actor

    def require_staff(self, what: str) -> User:
        """The signed-in staff member, or PermissionDenied("Only staff can <what>.", code staff_only)."""
        from milepost.kit.errors import PermissionDenied

        actor = self.require_actor()
        if not actor.is_staff:
            raise PermissionDenied(f"Only staff can {what}.", code="staff_only")
        return actor
