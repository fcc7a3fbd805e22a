"""Read model for the staff home: the dispute queue, the bank transfers waiting on staff, and (when staff
ask for it) the ledger's verification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from milepost.kit.context import Context
from milepost.ledger.verify import VerifyReport, verify_as_staff
from milepost.wallets.state import DepositAction, PayoutAction
from milepost.web.views import dispute_queue as queue
from milepost.web.views import pending_transfers as pending

# The names of the page's forms, one per transfer: a refusal's message goes next to its form.
CONFIRM_DEPOSIT = "deposit-{deposit_id}"
REJECT_DEPOSIT = "reject-{deposit_id}"
MARK_PAYOUT_PAID = "payout-{payout_id}"
FAIL_PAYOUT = "fail-{payout_id}"
# The form of each action staff may take on a transfer (offered as ``PendingTransfer.actions`` says).
TRANSFER_FORMS: dict[str, str] = {
    DepositAction.CONFIRM: CONFIRM_DEPOSIT.format(deposit_id="{id}"),
    DepositAction.REJECT: REJECT_DEPOSIT.format(deposit_id="{id}"),
    PayoutAction.MARK_PAID: MARK_PAYOUT_PAID.format(payout_id="{id}"),
    PayoutAction.FAIL: FAIL_PAYOUT.format(payout_id="{id}"),
}


@dataclass(frozen=True)
class StaffOverview:
    disputes: list[queue.QueueLine]
    transfers: pending.PendingTransfers
    ledger: VerifyReport | None
    checked_at: datetime

    @property
    def form_names(self) -> set[str]:
        """The confirm, mark-paid, reject and fail forms on the page: those the service offers per line."""
        lines = [*self.transfers.deposits, *self.transfers.payouts]
        return {
            TRANSFER_FORMS[action].format(id=line.id) for line in lines for action in line.actions
        }


def staff_overview(ctx: Context, *, verify: bool = False) -> StaffOverview:
    """Staff only (the queue and the transfers refuse anyone else). Verifying the ledger reads every
    posting, so it runs only when asked; ``checked_at`` says when it ran."""
    return StaffOverview(
        disputes=queue.dispute_queue(ctx),
        transfers=pending.pending_transfers(ctx),
        ledger=verify_as_staff(ctx) if verify else None,
        checked_at=ctx.now,
    )
