from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from milepost.kit.schemas import Currency, amount_out
from milepost.reputation.service import Reputation


class MoneyOut(BaseModel):
    currency: Currency
    amount: int = amount_out("The total in this currency.")


class DisputesOut(BaseModel):
    opened: int = Field(description="Disputes the user opened.")
    lost: int = Field(description="Resolved disputes in which the user got less than half.")


class ReputationOut(BaseModel):
    object: Literal["reputation"] = "reputation"
    user_id: str
    rating_average: float | None = Field(description="Mean rating received; null without ratings.")
    ratings: int
    completion_rate: float | None = Field(
        description="As freelancer: completed / ended milestones (see the service's definitions)."
    )
    milestones_completed: int
    milestones_ended: int
    on_time_payment_rate: float | None = Field(
        description="As client: milestones funded and reviewed on time / milestones assessed."
    )
    payments_on_time: int
    payments_assessed: int
    total_earned: list[MoneyOut] = Field(description="Net of fees, per currency.")
    total_paid: list[MoneyOut] = Field(description="Gross, per currency.")
    disputes: DisputesOut

    @classmethod
    def of(cls, reputation: Reputation) -> ReputationOut:
        return cls(
            user_id=reputation.user_id,
            rating_average=reputation.rating_average,
            ratings=reputation.ratings,
            completion_rate=reputation.completion.rate,
            milestones_completed=reputation.completion.numerator,
            milestones_ended=reputation.completion.denominator,
            on_time_payment_rate=reputation.on_time_payment.rate,
            payments_on_time=reputation.on_time_payment.numerator,
            payments_assessed=reputation.on_time_payment.denominator,
            total_earned=[
                MoneyOut(currency=currency, amount=amount)
                for currency, amount in reputation.total_earned.items()
            ],
            total_paid=[
                MoneyOut(currency=currency, amount=amount)
                for currency, amount in reputation.total_paid.items()
            ],
            disputes=DisputesOut(opened=reputation.disputes_opened, lost=reputation.disputes_lost),
        )
