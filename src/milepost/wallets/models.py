from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from milepost.kit.db import Base, Money, UTCDateTime, str_enum
from milepost.wallets.state import DepositStatus, PayoutStatus

__all__ = [
    "Deposit",
    "DepositReversal",
    "DepositStatus",
    "DestinationKind",
    "Payout",
    "PayoutDestination",
    "PayoutStatus",
    "ProviderAccount",
    "ProviderEvent",
]


class DestinationKind(StrEnum):
    IBAN = "iban"  # an IBAN, with an optional BIC
    LOCAL = "local"  # a local account number and routing number (ABA, sort code, ...)


class Deposit(Base):
    __tablename__ = "deposits"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        # Staff's list of bank transfers to confirm, oldest first (web/views/pending_transfers.py).
        Index(
            "ix_deposits_status_provider_created_at_id", "status", "provider", "created_at", "id"
        ),
        # A user's pending deposits (the dashboard), not every deposit they ever made.
        Index("ix_deposits_user_id_status", "user_id", "status"),
        # The deposits whose money has not cleared, by when it clears (the worker; funding from them).
        Index(
            "ix_deposits_uncleared_clears_at",
            "clears_at",
            postgresql_where=text("uncleared > 0"),
            sqlite_where=text("uncleared > 0"),
        ),
        CheckConstraint("uncleared >= 0 AND uncleared <= amount", name="uncleared_within_amount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(40))
    status: Mapped[DepositStatus] = mapped_column(str_enum(DepositStatus))
    # What the payer quotes on the bank transfer (manual), or the provider's own id.
    reference: Mapped[str] = mapped_column(String(100))
    entry_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    # A card deposit: the provider's page where the payer pays (Stripe Checkout), and the payment's own id
    # there once it is paid (a PaymentIntent: what a later chargeback names).
    payment_url: Mapped[str | None] = mapped_column(String(2000))
    provider_payment_id: Mapped[str | None] = mapped_column(String(100), index=True)
    # Money that can still be reversed (wallets/clearing.py): credited to the pending balance, of which
    # ``uncleared`` is still this deposit's, until ``clears_at``, when what is left moves to the
    # available balance (``cleared_at``).
    clears_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    uncleared: Mapped[int] = mapped_column(Money, default=0)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PayoutDestination(Base):
    """A bank account a user can be paid to. Never edited (a payout that names it keeps meaning what it
    meant); removing one only hides it from new payouts (``removed_at``), so pending and past payouts
    still say where the money went."""

    __tablename__ = "payout_destinations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[DestinationKind] = mapped_column(str_enum(DestinationKind))
    label: Mapped[str] = mapped_column(String(100))
    holder_name: Mapped[str] = mapped_column(String(200))
    # IBAN (compact, upper case) and BIC, for kind "iban".
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    # Account and routing number, for kind "local".
    account_number: Mapped[str | None] = mapped_column(String(34))
    routing_number: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        # Staff's list of bank transfers to send, oldest first (web/views/pending_transfers.py).
        Index("ix_payouts_status_provider_created_at_id", "status", "provider", "created_at", "id"),
        # A user's pending payouts (the dashboard), not every payout they ever had.
        Index("ix_payouts_user_id_status", "user_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(40))
    status: Mapped[PayoutStatus] = mapped_column(str_enum(PayoutStatus))
    reference: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    marked_paid_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    # Where a manual payout is to be sent (None for providers that know where themselves, e.g. sandbox).
    destination_id: Mapped[str | None] = mapped_column(ForeignKey("payout_destinations.id"))
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    failure_reason: Mapped[str | None] = mapped_column(String(500))

    destination: Mapped[PayoutDestination | None] = relationship()


class ProviderEvent(Base):
    """An event a payment provider sent (a Stripe webhook), kept by its id: the same event delivered
    again is answered and does nothing, however often and in whatever order it comes."""

    __tablename__ = "provider_events"

    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    # What it did: "settled dep_...", "ignored: ...".
    outcome: Mapped[str] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProviderAccount(Base):
    """A user's own account at a payment provider that pays them (a Stripe Connect account): made once,
    onboarded on the provider's pages, and able to receive payouts once the provider says so."""

    __tablename__ = "provider_accounts"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100), unique=True)
    # As the provider last said (Stripe's account.updated): payouts may be sent to it.
    payouts_enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DepositReversal(Base):
    """A deposit taken back after it was credited, and where the money came from: its own money not
    cleared yet, its owner's available balance (with their pending payouts called back into it), and
    what could not be recovered, the platform's loss. The four add up to ``amount``."""

    __tablename__ = "deposit_reversals"
    __table_args__ = (
        CheckConstraint(
            "from_pending + from_available + loss = amount AND amount > 0",
            name="parts_add_up",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    deposit_id: Mapped[str] = mapped_column(ForeignKey("deposits.id"), unique=True)
    # The provider's name for it (a Stripe dispute, dp_...), or None when staff record a bounce.
    provider_reference: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(Money)
    from_pending: Mapped[int] = mapped_column(Money)
    from_available: Mapped[int] = mapped_column(Money)  # payouts called back included
    payouts_failed: Mapped[int] = mapped_column(
        Money
    )  # how much of it came back from pending payouts
    loss: Mapped[int] = mapped_column(Money)
    entry_id: Mapped[str] = mapped_column(ForeignKey("ledger_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    # The card dispute was decided for the platform and the money given back (``reinstate_deposit``):
    # when, and the entry that gave it back. None: the reversal stands.
    reinstated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reinstated_entry_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_entries.id"))
