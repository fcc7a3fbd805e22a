from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, StrictInt, StrictStr

from milepost.kit.schemas import Body
from milepost.wallets.models import Deposit, Payout
from milepost.wallets.service import Balance


class MoneyMovement(Body):
    amount: StrictInt
    currency: StrictStr
    provider: StrictStr = "sandbox"


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

    @classmethod
    def of(cls, payout: Payout) -> PayoutOut:
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
        )
