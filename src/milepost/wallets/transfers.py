"""Bank transfers that wait on staff: one shape for deposits and payouts.

A ``manual`` deposit or payout is pending until staff either settle it (confirm the deposit arrived, mark
the payout sent) or close it with a reason the user is told (reject the deposit, fail the payout). The two
differ only in their model, state table, words and ledger postings, which ``ManualTransfer`` names; the
lookup, the staff check, the guards, the reason and the notice are written once here. Each action's guard
(``ManualTransfer.check``) is what ``available_actions`` asks, so the staff page offers exactly what the
service accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import select

from milepost.events import Notice, notify
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import InvalidState
from milepost.kit.guards import StateTable, available
from milepost.kit.lookup import one_or_404
from milepost.ledger.models import EntryKind
from milepost.ledger.service import clearing_account, external_account, post, user_account
from milepost.wallets.clearing import credit
from milepost.wallets.destinations import masked
from milepost.wallets.models import Deposit, Payout
from milepost.wallets.providers import ManualProvider
from milepost.wallets.state import (
    DEPOSITS,
    PAYOUTS,
    DepositAction,
    DepositStatus,
    PayoutAction,
    PayoutStatus,
)

MAX_REASON_LENGTH = 500

T = TypeVar("T", Deposit, Payout)
A = TypeVar("A", DepositAction, PayoutAction)


@dataclass(frozen=True)
class StaffStep(Generic[A]):
    """One thing staff do to a pending transfer."""

    action: A
    what: str  # for "Only staff can <what>."
    notice: Notice | None  # the notification the user gets, if any


@dataclass(frozen=True)
class ManualTransfer(Generic[T, A]):
    model: type[T]
    noun: str  # "deposit": "No such deposit."
    table: StateTable[Any]
    pending: StrEnum
    closed: StrEnum  # where closing leaves it (settling: ``settle_money`` says)
    finished: Mapping[StrEnum, str]  # why a transfer in each final status cannot change any more
    not_manual: str
    settle: StaffStep[A]
    close: StaffStep[A]
    settled_by: str  # the column naming who settled it
    closed_columns: tuple[str, str, str]  # when, by whom and why it was closed
    settle_money: Callable[[Context, T], None]  # the ledger postings (and status) of settling
    close_money: Callable[[Context, T], None] | None  # the ledger postings of closing, if any
    describe: Callable[[T], dict[str, object]]  # what the user's notices say about it

    def check(self, ctx: Context, transfer: T, step: StaffStep[A]) -> None:
        """The guard of ``step``: staff only, on a pending bank transfer. Another provider's pending
        transfer is that provider's to settle or refuse (a card payment is credited on Stripe's word
        alone, and a Stripe payout is sent by the worker), never staff's."""
        ctx.require_staff(step.what)
        if transfer.status is not self.pending:
            raise InvalidState(self.finished[transfer.status])
        if transfer.provider != ManualProvider.name:
            raise InvalidState(self.not_manual)

    def available_actions(self, ctx: Context, transfer: T) -> frozenset[A]:
        return available(
            {
                step.action: _bind(self.check, ctx, transfer, step)
                for step in (self.settle, self.close)
            }
        )

    def _pending(self, ctx: Context, transfer_id: str, step: StaffStep[A]) -> T:
        """The transfer, locked, if ``step`` may be taken on it; else PermissionDenied, NotFound or
        InvalidState."""
        ctx.require_staff(step.what)
        transfer = one_or_404(
            ctx.session,
            select(self.model).where(self.model.id == transfer_id),
            lock=True,
            missing=f"No such {self.noun}.",
        )
        self.check(ctx, transfer, step)
        return transfer

    def run_settle(self, ctx: Context, transfer_id: str) -> T:
        transfer = self._pending(ctx, transfer_id, self.settle)
        self.settle_pending(ctx, transfer)
        return transfer

    def settle_pending(self, ctx: Context, transfer: T) -> None:
        """Settle a pending transfer (locked by the caller): staff's confirmation of a bank transfer, or
        a provider's word that its payment or payout went through."""
        setattr(transfer, self.settled_by, ctx.actor_id)
        self.settle_money(ctx, transfer)
        self._tell(ctx, transfer, self.settle.notice, {})

    def run_close(self, ctx: Context, transfer_id: str, reason: object) -> T:
        ctx.require_staff(self.close.what)
        why = validate.text(reason, "reason", max_length=MAX_REASON_LENGTH)
        transfer = self._pending(ctx, transfer_id, self.close)
        self.close_pending(ctx, transfer, why, self.close.notice)
        return transfer

    def close_pending(self, ctx: Context, transfer: T, why: str, notice: Notice | None) -> None:
        """Close a pending transfer (locked by the caller) for ``why``, which the user is told by
        ``notice``: staff's closing of a bank transfer, or a provider's word that its payment failed."""
        if self.close_money is not None:
            self.close_money(ctx, transfer)
        self.table.move(transfer, self.closed)
        at, by, because = self.closed_columns
        setattr(transfer, at, ctx.now)
        setattr(transfer, by, ctx.actor_id)
        setattr(transfer, because, why)
        self._tell(ctx, transfer, notice, {"reason": why})

    def _tell(
        self, ctx: Context, transfer: T, notice: Notice | None, extra: dict[str, object]
    ) -> None:
        if notice is None:
            return
        notify(
            ctx,
            notice,
            user_ids=[transfer.user_id],
            data={**self.describe(transfer), **extra},
            key=f"{notice.value}:{transfer.id}",
        )


def _bind(
    check: Callable[[Context, T, StaffStep[A]], None], ctx: Context, transfer: T, step: StaffStep[A]
) -> Callable[[], None]:
    return lambda: check(ctx, transfer, step)


# Deposits ------------------------------------------------------------------------------------------------


def settle_deposit(ctx: Context, deposit: Deposit) -> None:
    """The money arrived: credit it to the user's available balance, or to their pending balance until
    it clears where the provider's money can still be reversed (wallets/clearing.py)."""
    entry = post(
        ctx,
        EntryKind.DEPOSIT,
        [
            (external_account(deposit.provider, deposit.currency), -deposit.amount),
            credit(ctx, deposit),
        ],
        memo=f"deposit {deposit.id} ({deposit.reference})",
    )
    DEPOSITS.move(deposit, DepositStatus.SUCCEEDED)
    deposit.succeeded_at = ctx.now
    deposit.entry_id = entry.id


def _describe_deposit(deposit: Deposit) -> dict[str, object]:
    return {
        "deposit_id": deposit.id,
        "amount": deposit.amount,
        "currency": deposit.currency,
        "reference": deposit.reference,
    }


MANUAL_DEPOSIT: ManualTransfer[Deposit, DepositAction] = ManualTransfer(
    model=Deposit,
    noun="deposit",
    table=DEPOSITS,
    pending=DepositStatus.PENDING,
    closed=DepositStatus.REJECTED,
    finished={
        DepositStatus.SUCCEEDED: "This deposit is confirmed already.",
        DepositStatus.REJECTED: "This deposit was rejected; it cannot change any more.",
    },
    not_manual="Only bank transfer deposits wait for staff to confirm or reject.",
    settle=StaffStep(
        DepositAction.CONFIRM,
        "confirm deposits",
        notice=None,
    ),
    # Nothing was credited, so no money moves; the user is told why.
    close=StaffStep(
        DepositAction.REJECT,
        "reject deposits",
        notice=Notice.DEPOSIT_REJECTED,
    ),
    settled_by="confirmed_by",
    closed_columns=("rejected_at", "rejected_by", "rejection_reason"),
    settle_money=settle_deposit,
    close_money=None,
    describe=_describe_deposit,
)


# Payouts -------------------------------------------------------------------------------------------------


def settle_payout(ctx: Context, payout: Payout) -> None:
    """The money was sent: it leaves the provider's clearing account for good."""
    post(
        ctx,
        EntryKind.PAYOUT_PAID,
        [
            (clearing_account(payout.provider, payout.currency), -payout.amount),
            (external_account(payout.provider, payout.currency), payout.amount),
        ],
        memo=f"payout {payout.id} paid ({payout.reference})",
    )
    PAYOUTS.move(payout, PayoutStatus.PAID)
    payout.paid_at = ctx.now


def _return_payout(ctx: Context, payout: Payout) -> None:
    """The payout failed: the amount goes back from the clearing account to the available balance."""
    post(
        ctx,
        EntryKind.PAYOUT_FAILED,
        [
            (clearing_account(payout.provider, payout.currency), -payout.amount),
            (user_account(payout.user_id, payout.currency), payout.amount),
        ],
        memo=f"payout {payout.id} failed, returned to the wallet ({payout.reference})",
    )


def _describe_payout(payout: Payout) -> dict[str, object]:
    return {
        "payout_id": payout.id,
        "amount": payout.amount,
        "currency": payout.currency,
        "reference": payout.reference,
        "destination": None if payout.destination is None else masked(payout.destination),
    }


MANUAL_PAYOUT: ManualTransfer[Payout, PayoutAction] = ManualTransfer(
    model=Payout,
    noun="payout",
    table=PAYOUTS,
    pending=PayoutStatus.PENDING,
    closed=PayoutStatus.FAILED,
    finished={
        PayoutStatus.PAID: "This payout is marked paid already.",
        PayoutStatus.FAILED: "This payout failed and its money went back to the wallet already.",
    },
    not_manual="Only bank transfer payouts wait for staff to mark them paid or failed.",
    settle=StaffStep(
        PayoutAction.MARK_PAID,
        "mark payouts paid",
        notice=Notice.PAYOUT_PAID,
    ),
    close=StaffStep(
        PayoutAction.FAIL,
        "mark payouts failed",
        notice=Notice.PAYOUT_FAILED,
    ),
    settled_by="marked_paid_by",
    closed_columns=("failed_at", "failed_by", "failure_reason"),
    settle_money=settle_payout,
    close_money=_return_payout,
    describe=_describe_payout,
)
