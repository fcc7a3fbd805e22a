from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, StrictInt, StrictStr

from milepost.kit.schemas import Body
from milepost.wallets.destinations import formatted_iban, masked
from milepost.wallets.models import Deposit, Payout, PayoutDestination
from milepost.wallets.service import Balance, PayoutView


class MoneyMovement(Body):
    amount: StrictInt
    currency: StrictStr
    # Omitted: the first enabled provider (MILEPOST_PROVIDERS).
    provider: StrictStr | None = None


class PayoutIn(MoneyMovement):
    # One of the caller's payout destinations; required for the manual provider.
    destination_id: StrictStr | None = None


class ReasonIn(Body):
    reason: StrictStr | None = None


class DestinationIn(Body):
    holder_name: StrictStr | None = None
    label: StrictStr | None = None
    iban: StrictStr | None = None
    bic: StrictStr | None = None
    account_number: StrictStr | None = None
    routing_number: StrictStr | None = None


class DestinationOut(BaseModel):
    """A payout destination as its owner sees it: masked."""

    id: str
    object: Literal["payout_destination"] = "payout_destination"
    type: str
    label: str
    holder_name: str
    masked: str
    bic: str | None
    created_at: datetime

    @classmethod
    def of(cls, destination: PayoutDestination) -> DestinationOut:
        return cls(
            id=destination.id,
            type=destination.kind,
            label=destination.label,
            holder_name=destination.holder_name,
            masked=masked(destination),
            bic=destination.bic,
            created_at=destination.created_at,
        )


class FullDestinationOut(DestinationOut):
    """For staff sending the money: every detail of the account."""

    iban: str | None
    account_number: str | None
    routing_number: str | None

    @classmethod
    def of(cls, destination: PayoutDestination) -> FullDestinationOut:
        return cls(
            **DestinationOut.of(destination).model_dump(),
            iban=formatted_iban(destination),
            account_number=destination.account_number,
            routing_number=destination.routing_number,
        )


class BalanceOut(BaseModel):
    object: Literal["balance"] = "balance"
    currency: str
    available: int
    escrow_outgoing: int
    escrow_incoming: int

    @classmethod
    def of(cls, balance: Balance) -> BalanceOut:
        return cls(
            currency=balance.currency,
            available=balance.available,
            escrow_outgoing=balance.escrow_outgoing,
            escrow_incoming=balance.escrow_incoming,
        )


class BalancesOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[BalanceOut]
    has_more: bool = False


class DepositOut(BaseModel):
    id: str
    object: Literal["deposit"] = "deposit"
    user_id: str
    amount: int
    currency: str
    provider: str
    status: str
    reference: str
    created_at: datetime
    succeeded_at: datetime | None
    rejected_at: datetime | None = None
    rejected_by: str | None = None
    rejection_reason: str | None = None

    @classmethod
    def of(cls, deposit: Deposit) -> DepositOut:
        return cls(
            id=deposit.id,
            user_id=deposit.user_id,
            amount=deposit.amount,
            currency=deposit.currency,
            provider=deposit.provider,
            status=deposit.status,
            reference=deposit.reference,
            created_at=deposit.created_at,
            succeeded_at=deposit.succeeded_at,
            rejected_at=deposit.rejected_at,
            rejected_by=deposit.rejected_by,
            rejection_reason=deposit.rejection_reason,
        )


class PayoutOut(BaseModel):
    id: str
    object: Literal["payout"] = "payout"
    user_id: str
    amount: int
    currency: str
    provider: str
    status: str
    reference: str
    created_at: datetime
    paid_at: datetime | None
    failed_at: datetime | None = None
    failed_by: str | None = None
    failure_reason: str | None = None
    # Masked for the owner; in full (FullDestinationOut) for staff.
    destination: FullDestinationOut | DestinationOut | None = None

    @classmethod
    def of(cls, payout: Payout, *, full: bool = False) -> PayoutOut:
        destination = payout.destination
        shown: DestinationOut | None = None
        if destination is not None:
            shown = FullDestinationOut.of(destination) if full else DestinationOut.of(destination)
        return cls(
            id=payout.id,
            user_id=payout.user_id,
            amount=payout.amount,
            currency=payout.currency,
            provider=payout.provider,
            status=payout.status,
            reference=payout.reference,
            created_at=payout.created_at,
            paid_at=payout.paid_at,
            failed_at=payout.failed_at,
            failed_by=payout.failed_by,
            failure_reason=payout.failure_reason,
            destination=shown,
        )

    @classmethod
    def for_staff(cls, payout: Payout) -> PayoutOut:
        return cls.of(payout, full=True)

    @classmethod
    def view(cls, view: PayoutView) -> PayoutOut:
        return cls.of(view.payout, full=view.full)
