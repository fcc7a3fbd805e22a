"""Who hears of what: for each audit action on a milestone, the parties to notify.

The actor is never told of their own action (``service.on_event`` drops them). An action not listed here
goes to both parties with the generic template, so a new action is reported rather than lost or crashing.

Wallet news is not a milestone event: ``wallets.service`` tells the wallet's owner directly (``notify``)
of a rejected deposit (``deposit_rejected``), a failed payout (``payout_failed``) and a manual payout sent
(``payout_paid``), each with its own template.
"""

from __future__ import annotations

from enum import StrEnum


class Party(StrEnum):
    CLIENT = "client"
    FREELANCER = "freelancer"
    # The e-mail address on the project of the person at the client who authorises payments: e-mail only.
    BILLING_CONTACT = "billing_contact"


CLIENT = frozenset({Party.CLIENT})
FREELANCER = frozenset({Party.FREELANCER})
BOTH = frozenset({Party.CLIENT, Party.FREELANCER})
NOBODY: frozenset[Party] = frozenset()

RECIPIENTS: dict[str, frozenset[Party]] = {
    # Set up by the client, news for the freelancer.
    "created": FREELANCER,
    "terms_edited": FREELANCER,
    "funded": FREELANCER,
    # Delivery and review.
    "submitted": CLIENT,
    "changes_requested": FREELANCER,
    "approved": BOTH,
    "auto_approved": BOTH,
    "released": BOTH,
    "released_part": BOTH,
    "release_requested": CLIENT,
    # Cancellation.
    "cancelled": BOTH,
    "cancellation_requested": FREELANCER,
    "cancellation_accepted": CLIENT,
    "cancellation_declined": CLIENT,
    # Disputes. Overdue disputes go to the staff queue, which is not a notification.
    "dispute_opened": BOTH,
    "settlement_offered": BOTH,
    "dispute_withdrawn": BOTH,
    "dispute_resolved": BOTH,
    "dispute_overdue": NOBODY,
    # Time-driven work (actor: the system).
    "funding_reminder": CLIENT,
    "funding_escalated": frozenset({Party.CLIENT, Party.FREELANCER, Party.BILLING_CONTACT}),
    "late_fee_accrued": BOTH,
    "review_reminder": CLIENT,
}


# Wallet news (not milestone events): ``wallets.service`` tells the wallet's owner alone, with ``notify``.
WALLET_NEWS = ("deposit_rejected", "payout_failed", "payout_paid")


def recipients(action: str) -> frozenset[Party]:
    return RECIPIENTS.get(action, BOTH)
