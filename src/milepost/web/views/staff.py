"""Read model for the staff home: the dispute queue, the bank transfers waiting on staff, and (when staff
ask for it) the ledger's verification."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

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


# Each list pages on its own: the query parameter naming the last line of its previous page.
DISPUTES_AFTER = "disputes_after"
DEPOSITS_AFTER = "deposits_after"
PAYOUTS_AFTER = "payouts_after"


@dataclass(frozen=True)
class StaffOverview:
    disputes: list[queue.QueueLine]
    more_disputes: bool
    transfers: pending.PendingTransfers
    ledger: VerifyReport | None
    checked_at: datetime
    # Where each list starts on this view (``DISPUTES_AFTER`` ...: the previous page's last line).
    cursors: dict[str, str] = field(default_factory=dict)

    @property
    def form_names(self) -> set[str]:
        """The confirm, mark-paid, reject and fail forms on the page: those the service offers per line."""
        lines = [*self.transfers.deposits, *self.transfers.payouts]
        return {
            TRANSFER_FORMS[action].format(id=line.id) for line in lines for action in line.actions
        }

    def next_page(self, cursor: str) -> str | None:
        """The address of the list's next page (the other lists stay where they are), or None when this
        page is its last."""
        lines, more = {
            DISPUTES_AFTER: ([line.dispute_id for line in self.disputes], self.more_disputes),
            DEPOSITS_AFTER: (
                [line.id for line in self.transfers.deposits],
                self.transfers.more_deposits,
            ),
            PAYOUTS_AFTER: (
                [line.id for line in self.transfers.payouts],
                self.transfers.more_payouts,
            ),
        }[cursor]
        if not more or not lines:
            return None
        return self._address({**self.cursors, cursor: lines[-1]})

    def first_page(self, cursor: str) -> str | None:
        """The address of the list's first page, or None when this view shows it."""
        if cursor not in self.cursors:
            return None
        return self._address({name: at for name, at in self.cursors.items() if name != cursor})

    @staticmethod
    def _address(cursors: dict[str, str]) -> str:
        return "/staff" + (f"?{urlencode(sorted(cursors.items()))}" if cursors else "")


def staff_overview(
    ctx: Context, *, verify: bool = False, cursors: Mapping[str, str | None] | None = None
) -> StaffOverview:
    """Staff only (the queue and the transfers refuse anyone else), a page of each list, each starting
    after the line ``cursors`` names for it (``DISPUTES_AFTER`` ...; none or empty: at the top). Verifying the
    ledger reads every posting, so it runs only when asked; ``checked_at`` says when it ran."""
    starts = {name: at for name, at in (cursors or {}).items() if at}
    disputes = queue.dispute_queue(ctx, starting_after=starts.get(DISPUTES_AFTER))
    return StaffOverview(
        disputes=disputes.data,
        more_disputes=disputes.has_more,
        transfers=pending.pending_transfers(
            ctx,
            deposits_after=starts.get(DEPOSITS_AFTER),
            payouts_after=starts.get(PAYOUTS_AFTER),
        ),
        ledger=verify_as_staff(ctx) if verify else None,
        checked_at=ctx.now,
        cursors=starts,
    )
