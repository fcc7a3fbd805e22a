"""Who hears of what: for each audit action on a milestone (``milepost.events.EventAction``), the parties
to notify; ``NOBODY`` is an explicit "no notification".

The actor is never told of their own action (``service.on_event`` drops them). Every action is listed
(``tests/notifications/test_event_catalogue.py`` checks it), and each one sent to somebody has its own
template.

Notices (``milepost.events.Notice``: a wallet's or a project's news) are not milestone events: each goes to
the users its sender names, with its own template.
"""

from __future__ import annotations

from enum import StrEnum

from milepost.events import EventAction


class Party(StrEnum):
    CLIENT = "client"
    FREELANCER = "freelancer"
    # The e-mail address on the project of the person at the client who authorises payments: e-mail only.
    BILLING_CONTACT = "billing_contact"


CLIENT = frozenset({Party.CLIENT})
FREELANCER = frozenset({Party.FREELANCER})
BOTH = frozenset({Party.CLIENT, Party.FREELANCER})
NOBODY: frozenset[Party] = frozenset()

RECIPIENTS: dict[EventAction, frozenset[Party]] = {
    # Set up by the client, news for the freelancer.
    EventAction.CREATED: FREELANCER,
    EventAction.TERMS_EDITED: FREELANCER,
    EventAction.FUNDED: FREELANCER,
    # Delivery and review.
    EventAction.SUBMITTED: CLIENT,
    EventAction.CHANGES_REQUESTED: FREELANCER,
    EventAction.APPROVED: BOTH,
    EventAction.AUTO_APPROVED: BOTH,
    EventAction.RELEASED: BOTH,
    EventAction.RELEASED_PART: BOTH,
    EventAction.RELEASE_REQUESTED: CLIENT,
    # Cancellation.
    EventAction.CANCELLED: BOTH,
    EventAction.CANCELLATION_REQUESTED: FREELANCER,
    EventAction.CANCELLATION_ACCEPTED: CLIENT,
    EventAction.CANCELLATION_DECLINED: CLIENT,
    EventAction.CANCELLATION_REMINDER: FREELANCER,
    EventAction.CANCELLATION_AUTO_ACCEPTED: BOTH,
    # Disputes. Overdue disputes go to the staff queue, which is not a notification.
    EventAction.DISPUTE_OPENED: BOTH,
    EventAction.DISPUTE_MESSAGE: BOTH,
    EventAction.SETTLEMENT_OFFERED: BOTH,
    EventAction.DISPUTE_WITHDRAWN: BOTH,
    EventAction.DISPUTE_RESOLVED: BOTH,
    EventAction.DISPUTE_OVERDUE: NOBODY,
    # Time-driven work (actor: the system).
    EventAction.FUNDING_REMINDER: CLIENT,
    EventAction.FUNDING_ESCALATED: frozenset(
        {Party.CLIENT, Party.FREELANCER, Party.BILLING_CONTACT}
    ),
    EventAction.LATE_FEE_ACCRUED: BOTH,
    EventAction.REVIEW_REMINDER: CLIENT,
}


def recipients(action: EventAction) -> frozenset[Party]:
    return RECIPIENTS[action]
