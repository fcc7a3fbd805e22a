from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, Money, UTCDateTime, str_enum


class DepositStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"


class PayoutStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"


class Deposit(Base):
    __tablename__ = "deposits"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

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


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

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
