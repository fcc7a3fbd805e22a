"""What can happen, and who hears of it: the one list of event actions and notices, and their subscribers.

``EventAction`` is every action recorded in a milestone's audit chain (``audit.record`` takes nothing
else). The notification rules and templates, the webhook event types (``milestone.<action>``), receipts,
reputation and the staff queue all name these members, never strings of their own;
``tests/notifications/test_event_catalogue.py`` checks that every action has a notification rule (or an
explicit "nobody"), a template where one is sent, and a webhook event type.

``Notice`` is news for a user that is not a milestone event (a wallet's deposit or payout, a project
paused or resumed): the domain services send it with ``notify`` below.

Subscribers: ``audit.record`` appends the event and then calls every event subscriber, and ``notify``
calls every notice subscriber, inside the caller's unit of work, so that what they write (webhook
deliveries, notifications and their e-mails: the outbox) commits or rolls back with the change itself.
Webhooks and notifications subscribe at start-up (``milepost.subscribers.install``); the domain packages
never import them. Publishing while nothing is subscribed is a start-up mistake that would lose every
e-mail and webhook without a trace, so it raises ``NoSubscribers`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milepost.audit.models import MilestoneEvent, ProjectEvent
    from milepost.kit.context import Context
    from milepost.milestones.models import Milestone
    from milepost.projects.models import Project


class EventAction(StrEnum):
    """The actions of a milestone's audit chain (``milestone_events.action``)."""

    # Set up by the client.
    CREATED = "created"
    TERMS_EDITED = "terms_edited"
    FUNDED = "funded"
    # Delivery and review.
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    AUTO_APPROVED = "auto_approved"
    RELEASED = "released"
    RELEASED_PART = "released_part"
    RELEASE_REQUESTED = "release_requested"
    # Cancellation.
    CANCELLED = "cancelled"
    CANCELLATION_REQUESTED = "cancellation_requested"
    CANCELLATION_ACCEPTED = "cancellation_accepted"
    CANCELLATION_DECLINED = "cancellation_declined"
    CANCELLATION_REMINDER = "cancellation_reminder"  # the freelancer has not answered yet
    CANCELLATION_AUTO_ACCEPTED = "cancellation_auto_accepted"  # unanswered in time: granted
    # Disputes.
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_MESSAGE = "dispute_message"  # a party or staff wrote in the dispute's conversation
    SETTLEMENT_OFFERED = "settlement_offered"
    DISPUTE_WITHDRAWN = "dispute_withdrawn"
    DISPUTE_RESOLVED = "dispute_resolved"
    # Time-driven (recorded by the scheduler, actor role "system").
    FUNDING_REMINDER = "funding_reminder"
    FUNDING_ESCALATED = "funding_escalated"
    LATE_FEE_ACCRUED = "late_fee_accrued"
    REVIEW_REMINDER = "review_reminder"
    DISPUTE_OVERDUE = "dispute_overdue"


class ProjectEventAction(StrEnum):
    """The actions of a project's own audit chain (``project_events.action``): what happens to a project
    that is no milestone's change. Webhook event types ``project.<action>``; the people concerned are
    told by the notice each of them sends too."""

    OFFERED = "offered"
    OFFER_ACCEPTED = "offer_accepted"
    OFFER_DECLINED = "offer_declined"
    OFFER_WITHDRAWN = "offer_withdrawn"
    MILESTONE_REQUESTED = "milestone_requested"
    MILESTONE_REQUEST_ACCEPTED = "milestone_request_accepted"
    MILESTONE_REQUEST_REJECTED = "milestone_request_rejected"
    MILESTONE_REQUEST_WITHDRAWN = "milestone_request_withdrawn"
    PAUSED = "paused"
    RESUMED = "resumed"


class Notice(StrEnum):
    """News for one user that is not a milestone event (the notification's ``kind``)."""

    # A wallet's owner: a manual deposit rejected, a card payment that failed or expired unpaid, a
    # manual payout failed or sent.
    DEPOSIT_REJECTED = "deposit_rejected"
    CARD_DEPOSIT_FAILED = "card_deposit_failed"
    # A credited deposit taken back (a chargeback, a bounce): its owner, and every staff member.
    DEPOSIT_REVERSED = "deposit_reversed"
    STAFF_DEPOSIT_REVERSED = "staff_deposit_reversed"
    # A chargeback decided for the platform: the money taken back is given back. Its owner, and staff.
    DEPOSIT_REINSTATED = "deposit_reinstated"
    STAFF_DEPOSIT_REINSTATED = "staff_deposit_reinstated"
    PAYOUT_FAILED = "payout_failed"
    PAYOUT_PAID = "payout_paid"
    # A project's client: the freelancer paused or resumed work.
    PROJECT_PAUSED = "project_paused"
    PROJECT_RESUMED = "project_resumed"
    # A project's client: the freelancer asks for a new milestone; the freelancer: the client's answer.
    MILESTONE_REQUESTED = "milestone_requested"
    MILESTONE_REQUEST_ACCEPTED = "milestone_request_accepted"
    MILESTONE_REQUEST_REJECTED = "milestone_request_rejected"
    # A freelancer (or an address to invite): a client offers them a project; the client: the answer.
    PROJECT_OFFERED = "project_offered"
    PROJECT_OFFER_ACCEPTED = "project_offer_accepted"
    PROJECT_OFFER_DECLINED = "project_offer_declined"


@dataclass(frozen=True)
class NoticeSent:
    """A notice as its subscribers receive it: what, for whom, and the occasion's key (one e-mail per
    address per key)."""

    kind: Notice
    user_ids: tuple[str, ...]
    project_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    emails: tuple[str, ...] = ()  # addresses without an account, told by e-mail only


EventSubscriber = Callable[["Context", "Milestone", "MilestoneEvent"], object]
NoticeSubscriber = Callable[["Context", NoticeSent], object]
ProjectEventSubscriber = Callable[["Context", "Project", "ProjectEvent"], object]


class NoSubscribers(RuntimeError):
    """Something was published before ``milepost.subscribers.install()`` ran in this process."""


@dataclass
class Registry:
    """The subscribers of this process, called in the order they were installed."""

    events: list[EventSubscriber] = field(default_factory=list)
    notices: list[NoticeSubscriber] = field(default_factory=list)
    project_events: list[ProjectEventSubscriber] = field(default_factory=list)

    def replace(
        self,
        *,
        events: Sequence[EventSubscriber],
        notices: Sequence[NoticeSubscriber],
        project_events: Sequence[ProjectEventSubscriber] = (),
    ) -> None:
        """Subscribe exactly these (installing twice subscribes nothing twice)."""
        self.events[:] = events
        self.notices[:] = notices
        self.project_events[:] = project_events


registry = Registry()


def publish_event(ctx: Context, milestone: Milestone, event: MilestoneEvent) -> None:
    """Tell every event subscriber of an event just appended, in the caller's unit of work."""
    if not registry.events:
        raise NoSubscribers(
            f"audit event {event.action!r} recorded with nobody subscribed: its notifications and "
            "webhooks would be lost (call milepost.subscribers.install() at start-up)"
        )
    for subscriber in registry.events:
        subscriber(ctx, milestone, event)


def publish_project_event(ctx: Context, project: Project, event: ProjectEvent) -> None:
    """Tell every project event subscriber of an event just appended, in the caller's unit of work."""
    if not registry.project_events:
        raise NoSubscribers(
            f"project event {event.action!r} recorded with nobody subscribed: its webhooks would be "
            "lost (call milepost.subscribers.install() at start-up)"
        )
    for subscriber in registry.project_events:
        subscriber(ctx, project, event)


def notify(
    ctx: Context,
    kind: Notice,
    *,
    user_ids: Iterable[str | None],
    project_id: str | None = None,
    data: dict[str, Any] | None = None,
    key: str | None = None,
    emails: Iterable[str] = (),
) -> None:
    """Tell ``user_ids`` of ``kind`` (in the app, and by e-mail), in the caller's unit of work.

    ``key`` names the occasion: each address gets one e-mail per key however often this is called.
    """
    if not registry.notices:
        raise NoSubscribers(
            f"notice {kind!r} sent with nobody subscribed: it would be lost "
            "(call milepost.subscribers.install() at start-up)"
        )
    notice = NoticeSent(
        kind=Notice(kind),
        user_ids=tuple(user_id for user_id in user_ids if user_id is not None),
        project_id=project_id,
        data=dict(data or {}),
        key=key,
        emails=tuple(emails),
    )
    for subscriber in registry.notices:
        subscriber(ctx, notice)
