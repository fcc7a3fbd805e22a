from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from milepost.notifications.models import Notification


class NotificationOut(BaseModel):
    id: str
    object: Literal["notification"] = "notification"
    kind: str
    title: str
    body: str
    milestone_id: str | None
    project_id: str | None
    data: dict[str, Any]
    read: bool
    read_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, notification: Notification) -> NotificationOut:
        return cls(
            id=notification.id,
            kind=notification.kind,
            title=notification.title,
            body=notification.body,
            milestone_id=notification.milestone_id,
            project_id=notification.project_id,
            data=notification.data,
            read=notification.read_at is not None,
            read_at=notification.read_at,
            created_at=notification.created_at,
        )


class UnreadCountOut(BaseModel):
    unread: int


class MarkedReadOut(BaseModel):
    """How many notifications ``read-all`` marked read (those read already are not counted)."""

    marked_read: int
