from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from milepost.kit.schemas import (
    Body,
    Currency,
    CurrencyIn,
    amount_in,
    amount_out,
    one_of,
    require_in_schema,
)
from milepost.wallets.destinations import formatted_iban, masked
from milepost.wallets.models import (
    Deposit,
    DepositReversal,
    DepositStatus,
    DestinationKind,
    Payout,
    PayoutDestination,
    PayoutStatus,
    ProviderAccount,
    ProviderEvent,
)
from milepost.wallets.providers import PROVIDERS
from milepost.wallets.service import Balance, PayoutView

_PROVIDER = (
    "The payment provider: `manual` (a bank transfer that staff confirm), `stripe` (a card, paid on "
    "Stripe's page at the deposit's `payment_url`) or `sandbox` (instant, test money; only where the "
    "installation enables it). Only the providers in MILEPOST_PROVIDERS are "
    "accepted; another is 422 `unknown_provider`."
)
Provider = Annotated[StrictStr, one_of(sorted(PROVIDERS), _PROVIDER)]


class MoneyMovement(Body):
    amount: StrictInt = amount_in("How much to move.")
    currency: CurrencyIn
    provider: Provider | None = Field(
        None, description="Omitted or null: the installation's first enabled provider."
    )


class PayoutIn(MoneyMovement):
    destination_id: StrictStr | None = Field(
        None,
        description="One of the caller's payout destinations (`pdst_...`); required for the manual "
        "provider.",
    )


class RefusalIn(Body):
    model_config = ConfigDict(json_schema_extra=require_in_schema("reason"))

    reason: StrictStr | None = Field(
        None, description="Why, told to the user (up to 2000 characters)."
    )


class DestinationIn(Body):
    """An IBAN (with an optional BIC), or an account number with its routing number; not both."""

    model_config = ConfigDict(json_schema_extra=require_in_schema("holder_name"))

    holder_name: StrictStr | None = Field(None, description="The account holder's name.")
    label: StrictStr | None = Field(
        None, description="Your name for it; default: the masked number."
    )
    iban: StrictStr | None = None
    bic: StrictStr | None = Field(None, description="Only with an IBAN.")
    account_number: StrictStr | None = Field(
        None, description="With routing_number, instead of an IBAN."
    )
    routing_number: StrictStr | None = Field(None, description="ABA, sort code, ...")


class DestinationOut(BaseModel):
    """A payout destination as its owner sees it: masked."""

    id: str
    object: Literal["payout_destination"] = "payout_destination"
    type: Annotated[
        str, one_of(DestinationKind, "`iban`, or `local` (account and routing number).")
    ]
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
    currency: Currency
    available: int = amount_out("Free to fund milestones or pay out.")
    escrow_outgoing: int = amount_out(
        "Held in escrow for milestones the user pays for (as client)."
    )
    escrow_incoming: int = amount_out(
        "Held in escrow for milestones the user is paid for (as freelancer)."
    )
    pending: int = amount_out(
        "Deposited by a method that can still be reversed (a card) and not cleared yet: it moves to "
        "`available` when it clears (MILEPOST_CLEARING_DAYS) and cannot be paid out before."
    )

    @classmethod
    def of(cls, balance: Balance) -> BalanceOut:
        return cls(
            currency=balance.currency,
            available=balance.available,
            escrow_outgoing=balance.escrow_outgoing,
            escrow_incoming=balance.escrow_incoming,
            pending=balance.pending,
        )


class BalancesOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[BalanceOut]
    has_more: bool = False


class DepositOut(BaseModel):
    id: str
    object: Literal["deposit"] = "deposit"
    user_id: str
    amount: int = amount_out("The deposit.")
    currency: Currency
    provider: Annotated[str, one_of(sorted(PROVIDERS), "The payment provider.")]
    status: Annotated[
        str,
        one_of(
            DepositStatus,
            "`succeeded` (credited), `pending` (a bank transfer waiting for staff, or a card payment "
            "not made yet), `rejected` (never credited: staff closed the bank transfer, or the card "
            "payment failed or its page expired unpaid), `reversed` (credited, then taken back: a "
            "chargeback, a bounced transfer).",
        ),
    ]
    reference: str
    created_at: datetime
    succeeded_at: datetime | None
    rejected_at: datetime | None = None
    rejected_by: str | None = None
    rejection_reason: str | None = None
    payment_url: str | None = Field(
        default=None,
        description="A card deposit: the provider's page where the payer pays (send them there); "
        "null for other providers.",
    )

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
            payment_url=deposit.payment_url,
        )


class DepositReversalOut(BaseModel):
    """A deposit taken back after it was credited, and where the money came from."""

    id: str
    object: Literal["deposit_reversal"] = "deposit_reversal"
    deposit_id: str
    currency: Currency
    amount: int = amount_out("Taken back in all.")
    from_pending: int = amount_out("From the deposit's own money not cleared yet.")
    from_available: int = amount_out(
        "From the owner's available balance (pending bank-transfer payouts called back into it)."
    )
    payouts_failed: int = amount_out("How much of it came back from pending payouts.")
    loss: int = amount_out("What could not be recovered: the platform's loss.")
    reason: str
    provider_reference: str | None = Field(
        description="The provider's id for it (a Stripe dispute)."
    )
    created_at: datetime

    @classmethod
    def of(cls, reversal: DepositReversal) -> DepositReversalOut:
        return cls(
            id=reversal.id,
            deposit_id=reversal.deposit_id,
            currency=reversal.currency,
            amount=reversal.amount,
            from_pending=reversal.from_pending,
            from_available=reversal.from_available,
            payouts_failed=reversal.payouts_failed,
            loss=reversal.loss,
            reason=reversal.reason,
            provider_reference=reversal.provider_reference,
            created_at=reversal.created_at,
        )


class PayoutAccountOut(BaseModel):
    """The caller's own account at a provider that pays them (a Stripe Connect account)."""

    object: Literal["payout_account"] = "payout_account"
    provider: Annotated[str, one_of(sorted(PROVIDERS), "The provider.")]
    account_id: str = Field(description="The account's id at the provider (acct_...).")
    payouts_enabled: bool = Field(
        description="Payouts can be sent to it now (the provider says so once its details are done)."
    )
    onboarding_url: str | None = Field(
        default=None,
        description="Setting it up: a link to the provider's pages to finish or update the account's "
        "details; it works for a few minutes and once (ask again for a new one). Null in lists.",
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, account: ProviderAccount, onboarding_url: str | None = None) -> PayoutAccountOut:
        return cls(
            provider=account.provider,
            account_id=account.account_id,
            payouts_enabled=account.payouts_enabled,
            onboarding_url=onboarding_url,
            created_at=account.created_at,
            updated_at=account.updated_at,
        )


class ProviderEventOut(BaseModel):
    object: Literal["provider_event"] = "provider_event"
    provider: Annotated[str, one_of(sorted(PROVIDERS), "The provider that sent it.")]
    event_id: str
    type: str
    outcome: str = Field(description="What the event did: settled or closed a deposit, or nothing.")

    @classmethod
    def of(cls, event: ProviderEvent) -> ProviderEventOut:
        return cls(
            provider=event.provider, event_id=event.event_id, type=event.type, outcome=event.outcome
        )


class PayoutOut(BaseModel):
    id: str
    object: Literal["payout"] = "payout"
    user_id: str
    amount: int = amount_out("The payout.")
    currency: Currency
    provider: Annotated[str, one_of(sorted(PROVIDERS), "The payment provider.")]
    status: Annotated[
        str,
        one_of(
            PayoutStatus,
            "`pending` (taken from the balance, not yet sent), `paid`, or `failed` (the amount went back "
            "to the available balance).",
        ),
    ]
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
