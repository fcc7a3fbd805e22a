"""Deposits' and payouts' statuses, the moves between them, and what staff may do to one.

Plain Python, no database, like ``milestones.state``: services change a status only through
``DEPOSITS.move`` and ``PAYOUTS.move``; ``wallets.transfers`` holds the guards of staff's actions.
"""

from __future__ import annotations

from enum import StrEnum

from milepost.kit.guards import StateTable


class DepositStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"  # staff: the money never arrived; nothing was credited
    # Credited, then taken back: a card payment charged back, a bank transfer that bounced.
    REVERSED = "reversed"


class PayoutStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"  # staff: the transfer bounced; the amount went back to the available balance


DEPOSITS = StateTable(
    "deposit",
    {
        DepositStatus.PENDING: {DepositStatus.SUCCEEDED, DepositStatus.REJECTED},
        DepositStatus.SUCCEEDED: {DepositStatus.REVERSED},
        DepositStatus.REJECTED: (),
        DepositStatus.REVERSED: (),
    },
)

PAYOUTS = StateTable(
    "payout",
    {
        PayoutStatus.PENDING: {PayoutStatus.PAID, PayoutStatus.FAILED},
        PayoutStatus.PAID: (),
        PayoutStatus.FAILED: (),
    },
)


class DepositAction(StrEnum):
    """What staff may do to a pending bank-transfer deposit (``available_deposit_actions``)."""

    CONFIRM = "confirm"
    REJECT = "reject"


class PayoutAction(StrEnum):
    """What staff may do to a pending bank-transfer payout (``available_payout_actions``)."""

    MARK_PAID = "mark_paid"
    FAIL = "fail"
