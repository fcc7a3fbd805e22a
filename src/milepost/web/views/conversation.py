"""A dispute's conversation as the milestone page and the staff dispute page show it: each message with its
author's name and role, and its attachments as links (a file by its name)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from milepost.disputes import service as disputes
from milepost.files.models import StoredFile
from milepost.kit.context import Context
from milepost.users.models import User
from milepost.web.views.dispute_queue import EvidenceItem, evidence_item


@dataclass(frozen=True)
class MessageView:
    id: str
    author: str  # the author's name
    role: str  # client, freelancer or staff
    body: str
    created_at: datetime
    attachments: list[EvidenceItem]


def conversation(ctx: Context, dispute_id: str) -> list[MessageView]:
    """The dispute's messages, oldest first (the disputes service decides who may read them)."""
    messages = disputes.list_messages(ctx, dispute_id)
    if not messages:
        return []
    names = dict(
        ctx.session.execute(
            select(User.id, User.name).where(User.id.in_({m.author_id for m in messages}))
        ).all()
    )
    file_ids = {
        str(item["file_id"])
        for message in messages
        for item in message.attachments
        if item.get("type") == "file"
    }
    file_names = (
        dict(
            ctx.session.execute(
                select(StoredFile.id, StoredFile.filename).where(StoredFile.id.in_(file_ids))
            ).all()
        )
        if file_ids
        else {}
    )
    return [
        MessageView(
            id=message.id,
            author=names.get(message.author_id, message.author_id),
            role=message.author_role,
            body=message.body,
            created_at=message.created_at,
            attachments=[evidence_item(item, file_names) for item in message.attachments],
        )
        for message in messages
    ]
