"""Notifications: written in the caller's unit of work, for each party who should know, with an e-mail
queued beside each (the outbox; ``mail.deliver_due_emails`` sends them after commit).

``on_event`` is subscribed to every milestone event and ``on_notice`` to every notice (a wallet's or a
project's news: ``milepost.events.notify``) at start-up (``milepost.subscribers``); ``rules`` says who
hears of which action. E-mail is queued only while SMTP is configured (``settings.smtp_host``); without
it, users get in-app notifications only and nothing piles up in the outbox.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from milepost.audit.models import MilestoneEvent
from milepost.events import EventAction, NoticeSent
from milepost.kit.context import Context
from milepost.kit.db import insert_at_flush, insert_ignoring_conflicts
from milepost.kit.ids import new_id
from milepost.kit.lookup import one_or_404
from milepost.kit.pagination import Page, paginate
from milepost.milestones.models import Milestone
from milepost.notifications import rules
from milepost.notifications.models import EmailStatus, Notification, OutgoingEmail
from milepost.notifications.render import Message, render_email, render_message
from milepost.projects.models import Project
from milepost.users.models import User

MAX_KEY_LENGTH = 60


def notify(
    ctx: Context,
    kind: str,
    *,
    user_ids: Iterable[str | None],
    milestone: Milestone | None = None,
    project_id: str | None = None,
    data: dict[str, Any] | None = None,
    emails: Sequence[str] = (),
    key: str | None = None,
) -> list[str]:
    """Tell ``user_ids`` (in the app, and by e-mail to their account address) and ``emails`` (e-mail only)
    of something of ``kind``, in the caller's unit of work.

    ``key`` names the occasion (an event id, or e.g. ``"paused:<project>:<date>"``): each address gets one
    e-mail per key however often this is called (the outbox's unique dedupe key); without a key every call
    is a new occasion. Unknown kinds are rendered with the generic template. Returns the ids of the in-app
    notifications written (at the unit of work's next flush).
    """
    details = dict(data or {})
    project = _project(ctx, project_id or (milestone.project_id if milestone else None))
    occasion = key or new_id("ntk")
    if len(occasion) > MAX_KEY_LENGTH:  # the dedupe key has room for the address too
        occasion = hashlib.sha256(occasion.encode()).hexdigest()
    values: dict[str, Any] = {
        "kind": kind,
        "milestone": milestone,
        "project": project,
        "data": details,
        "amount": details.get("amount"),
        "currency": milestone.currency if milestone else (project.currency if project else None),
        "actor_name": ctx.actor.name if ctx.actor is not None else "Milepost",
        "actor_role": details.get("actor_role") or ("system" if ctx.actor is None else None),
        "link": _link(ctx, milestone, project),
    }
    mail = bool(ctx.settings.smtp_host)
    notifications: list[str] = []
    outgoing: list[dict[str, Any]] = []
    addresses: set[str] = set()
    seen: set[str] = set()
    for user_id in user_ids:
        if user_id is None or user_id in seen:
            continue
        seen.add(user_id)
        user = ctx.session.get(User, user_id)
        if user is None:
            continue
        personal = {
            **values,
            "recipient_name": user.name,
            "recipient_role": _role(user.id, project),
            "time_zone": user.time_zone,  # times in the text on the recipient's clock
        }
        message = render_message(kind, personal)
        notification_id = new_id("ntf")
        # A row, not an object of the session: nothing in this unit of work changes it again.
        insert_at_flush(
            ctx.session,
            Notification,
            {
                "id": notification_id,
                "user_id": user.id,
                "kind": kind,
                "milestone_id": milestone.id if milestone else None,
                "project_id": project.id if project else None,
                "title": message.title,
                "body": message.body,
                "data": details,
                "created_at": ctx.now,
            },
        )
        notifications.append(notification_id)
        if mail and user.email.lower() not in addresses:
            addresses.add(user.email.lower())
            outgoing.append(
                _email(
                    ctx, occasion, user.email, message, personal, notification_id=notification_id
                )
            )
    for address in emails:
        clean = address.strip() if isinstance(address, str) else ""
        if not mail or "@" not in clean or clean.lower() in addresses:
            continue
        addresses.add(clean.lower())
        personal = {**values, "recipient_name": "", "recipient_role": "billing_contact"}
        message = render_message(kind, personal)
        outgoing.append(_email(ctx, occasion, clean, message, personal, notification_id=None))
    if outgoing:
        ctx.session.flush()  # the notifications the e-mails refer to
        if insert_ignoring_conflicts(ctx.session, OutgoingEmail, outgoing):
            _wake_mail_sender_after_commit(ctx.session)
    return notifications


def on_notice(ctx: Context, notice: NoticeSent) -> list[str]:
    """The subscriber to notices: tell their users, with the notice's own template."""
    return notify(
        ctx,
        notice.kind,
        user_ids=notice.user_ids,
        project_id=notice.project_id,
        data=notice.data,
        emails=notice.emails,
        key=notice.key,
    )


def on_event(ctx: Context, milestone: Milestone, event: MilestoneEvent) -> list[str]:
    """Notify the parties who should know of a milestone event (``rules``); never the actor."""
    parties = rules.recipients(EventAction(event.action))
    if not parties:
        return []
    project = _project(ctx, milestone.project_id)
    user_ids: list[str] = []
    if rules.Party.CLIENT in parties:
        user_ids.append(milestone.client_id)
    if rules.Party.FREELANCER in parties and project is not None and project.freelancer_id:
        user_ids.append(project.freelancer_id)
    emails: list[str] = []
    if rules.Party.BILLING_CONTACT in parties:
        contact = (project.billing_contact_email if project else None) or event.data.get(
            "billing_contact_email"
        )
        if isinstance(contact, str) and contact:
            emails.append(contact)
    return notify(
        ctx,
        event.action,
        user_ids=[user_id for user_id in user_ids if user_id != event.actor_id],
        milestone=milestone,
        data={
            **event.data,
            "event_id": event.id,
            "actor_role": event.actor_role,
            "amount": event.amount,
            "from_status": event.from_status,
            "to_status": event.to_status,
        },
        emails=emails,
        key=event.id,
    )


# Reading and marking read ---------------------------------------------------------------------------------


def list_notifications(
    ctx: Context, *, unread: bool = False, limit: int = 20, starting_after: str | None = None
) -> Page[Notification]:
    query = select(Notification).where(Notification.user_id == ctx.require_actor().id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    return paginate(ctx.session, query, Notification.id, limit=limit, starting_after=starting_after)


def get_notification(ctx: Context, notification_id: str) -> Notification:
    """The actor's own notification; anyone else's does not exist."""
    query = select(Notification).where(
        Notification.id == notification_id,
        Notification.user_id == ctx.require_actor().id,
    )
    return one_or_404(ctx.session, query, missing="No such notification.")


def mark_read(ctx: Context, notification_id: str) -> Notification:
    notification = get_notification(ctx, notification_id)
    if notification.read_at is None:
        notification.read_at = ctx.now
    return notification


def page_path(notification: Notification) -> str:
    """The web page a notification is about: its milestone, else its project, else the list."""
    if notification.milestone_id is not None:
        return f"/milestones/{notification.milestone_id}"
    if notification.project_id is not None:
        return f"/projects/{notification.project_id}"
    return "/notifications"


def mark_all_read(ctx: Context) -> int:
    """Mark every unread notification of the actor read; returns how many were."""
    result = ctx.session.execute(
        update(Notification)
        .where(Notification.user_id == ctx.require_actor().id, Notification.read_at.is_(None))
        .values(read_at=ctx.now)
        .returning(Notification.id)
    )
    return len(result.all())


def unread_count(ctx: Context) -> int:
    return int(
        ctx.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == ctx.require_actor().id, Notification.read_at.is_(None))
        )
        or 0
    )


# Helpers --------------------------------------------------------------------------------------------------


def _project(ctx: Context, project_id: str | None) -> Project | None:
    return None if project_id is None else ctx.session.get(Project, project_id)


def _role(user_id: str, project: Project | None) -> str:
    if project is not None and user_id == project.client_id:
        return "client"
    if project is not None and user_id == project.freelancer_id:
        return "freelancer"
    return "user"


def _link(ctx: Context, milestone: Milestone | None, project: Project | None) -> str | None:
    base = ctx.settings.public_url.rstrip("/")
    if milestone is not None:
        return f"{base}/milestones/{milestone.id}"
    if project is not None:
        return f"{base}/projects/{project.id}"
    return None


def _email(
    ctx: Context,
    occasion: str,
    address: str,
    message: Message,
    values: dict[str, Any],
    *,
    notification_id: str | None,
) -> dict[str, Any]:
    text, html = render_email(message, values)
    return {
        "id": new_id("eml"),
        "dedupe_key": f"{occasion}:{address.lower()}",
        "to_address": address,
        "subject": message.title,
        "text_body": text,
        "html_body": html,
        "notification_id": notification_id,
        "status": EmailStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": ctx.now,
        "last_error": None,
        "sent_at": None,
        "created_at": ctx.now,
    }


def _wake_mail_sender_after_commit(session: Session) -> None:
    """Once this unit of work commits, wake the in-process sender (it also polls; this saves latency).
    Never before commit, never on rollback."""
    if session.info.get("mail_wake"):
        return
    session.info["mail_wake"] = True

    def wake(_session: Session) -> None:
        from milepost.notifications.worker import wake_mail_senders

        wake_mail_senders()

    sa_event.listen(session, "after_commit", wake, once=True)
