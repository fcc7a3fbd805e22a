"""The double-entry ledger: accounts, journal entries, postings.

An account's balance is the sum of its postings; the cached ``balance`` column is kept in step inside the
same transaction and checked against the postings by ``verify``. Sign convention: money a user or an escrow
holds is positive; the external (outside world) accounts go negative as money comes in.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from milepost.events import EventAction
from milepost.kit.db import Base, Money, UTCDateTime, str_enum


class AccountKind(StrEnum):
    USER = "user"  # a user's available balance in one currency
    # A user's money that came in by a method that can still be reversed (a card) and has not cleared
    # yet (``MILEPOST_CLEARING_DAYS``): it cannot be paid out until it moves to their available balance.
    PENDING = "pending"
    ESCROW = "escrow"  # one per milestone
    PLATFORM_FEE = "platform_fee"  # fee revenue per currency
    EXTERNAL = "external"  # the outside world, per payment provider and currency
    PAYOUT_CLEARING = "payout_clearing"  # payouts requested but not yet paid out by the provider
    # What the platform lost, per currency: the part of a reversed deposit (a chargeback) that could not
    # be taken back from its owner. Negative by design, like the outside world's accounts.
    PLATFORM_LOSS = "platform_loss"


# Accounts that hold somebody's money and therefore may never go negative.
NON_NEGATIVE_KINDS = frozenset(
    {AccountKind.USER, AccountKind.PENDING, AccountKind.ESCROW, AccountKind.PAYOUT_CLEARING}
)


class EntryKind(StrEnum):
    DEPOSIT = "deposit"
    # A deposit's money that waited in the pending balance has cleared: pending -> available.
    CLEARED = "cleared"
    # A deposit taken back after it was credited (a chargeback, a bounced transfer): from its money not
    # cleared, the owner's wallet and pending payouts, and the rest as the platform's loss.
    DEPOSIT_REVERSED = "deposit_reversed"
    # A reversed card deposit given back after its dispute was decided for the platform: the platform's
    # loss made good first, the rest back to the owner's available balance.
    DEPOSIT_REINSTATED = "deposit_reinstated"
    PAYOUT = "payout"
    PAYOUT_PAID = "payout_paid"
    # A payout that did not reach the user: from the provider's clearing account back to their balance.
    PAYOUT_FAILED = "payout_failed"
    FUND = "fund"
    RELEASE = "release"
    REFUND = "refund"
    DISPUTE_SPLIT = "dispute_split"
    BONUS = "bonus"


# The audit actions recorded with each kind of entry that moves a milestone's money, in the same unit of
# work (so at the same time): the only events an entry of that kind can belong to.
ENTRY_ACTIONS: dict[EntryKind, frozenset[EventAction]] = {
    EntryKind.FUND: frozenset({EventAction.FUNDED}),
    EntryKind.RELEASE: frozenset({EventAction.RELEASED, EventAction.RELEASED_PART}),
    EntryKind.REFUND: frozenset(
        {
            EventAction.CANCELLED,
            EventAction.CANCELLATION_ACCEPTED,
            EventAction.CANCELLATION_AUTO_ACCEPTED,
        }
    ),
    EntryKind.DISPUTE_SPLIT: frozenset({EventAction.DISPUTE_RESOLVED}),
}


class Account(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            "kind NOT IN ('user', 'escrow', 'payout_clearing') OR balance >= 0",
            name="balance_not_negative",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # A readable unique name: user:usr_..:USD, escrow:ms_.., platform_fee:USD, external:sandbox:USD.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind))
    currency: Mapped[str] = mapped_column(String(3))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    milestone_id: Mapped[str | None] = mapped_column(ForeignKey("milestones.id"), index=True)
    provider: Mapped[str | None] = mapped_column(String(40))
    balance: Mapped[int] = mapped_column(Money, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JournalEntry(Base):
    __tablename__ = "ledger_entries"
    # A statement's period: the entries of some days (ledger/statement.py); the entries of a kind in a
    # period (the dashboard's releases this month and its weekly history), without reading the years
    # before it.
    __table_args__ = (
        Index("ix_ledger_entries_created_at_id", "created_at", "id"),
        Index("ix_ledger_entries_kind_created_at", "kind", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind))
    memo: Mapped[str] = mapped_column(String(500), default="")
    milestone_id: Mapped[str | None] = mapped_column(ForeignKey("milestones.id"), index=True)
    actor_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # SHA-256 over the entry and its postings, so that an edited posting shows in verify.
    hash: Mapped[str] = mapped_column(String(64))
    # The keyed MAC (see kit/macs.py) over the hash, memo and actor, and the id of the key that made it.
    # None: written without MILEPOST_LEDGER_KEY.
    mac: Mapped[str | None] = mapped_column(String(64))
    mac_key_id: Mapped[str | None] = mapped_column(String(40))
    # The audit event of the same change (an entry that moved a milestone's money), which names this entry
    # back (``MilestoneEvent.entry_id``). Written in the entry's INSERT with the id that event will take
    # (``ledger.post`` picks it, ``audit.record`` uses it); neither the entry's hash nor its MAC covers
    # it: ``ledger verify`` checks the pair against what the hashes cover (the same milestone and time,
    # an action of ENTRY_ACTIONS). None: no milestone, or no event recorded after the entry.
    event_id: Mapped[str | None] = mapped_column(String(40))

    postings: Mapped[list[Posting]] = relationship(
        back_populates="entry", order_by="Posting.id", lazy="selectin"
    )


class Posting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_ledger_postings_account_id_id", "account_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))

    entry: Mapped[JournalEntry] = relationship(back_populates="postings")


class LedgerVerification(Base):
    """One run of ``milepost ledger verify``: when, and what it found (for /metrics and the operator)."""

    __tablename__ = "ledger_verifications"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    problems: Mapped[int] = mapped_column(Integer)
    entries: Mapped[int] = mapped_column(Integer)
    macs_checked: Mapped[bool] = mapped_column(Boolean)
