from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, StrictInt, StrictStr

from milepost.disputes.models import Dispute, SettlementOffer
from milepost.kit.schemas import Body


class DisputeIn(Body):
    reason: StrictStr


class OfferIn(Body):
    to_freelancer: StrictInt


class ResolveIn(Body):
    to_freelancer: StrictInt
    to_client: StrictInt
    note: StrictStr | None = None


class OfferOut(BaseModel):
    id: str
    object: Literal["settlement_offer"] = "settlement_offer"
    dispute_id: str
    made_by: str
    maker_role: str
    to_freelancer: int
    status: str
    created_at: datetime
    accepted_at: datetime | None

    @classmethod
    def of(cls, offer: SettlementOffer) -> OfferOut:
        return cls(
            id=offer.id,
            dispute_id=offer.dispute_id,
            made_by=offer.made_by,
            maker_role=offer.maker_role,
            to_freelancer=offer.to_freelancer,
            status=offer.status,
            created_at=offer.created_at,
            accepted_at=offer.accepted_at,
        )


class DisputeOut(BaseModel):
    id: str
    object: Literal["dispute"] = "dispute"
    milestone_id: str
    opened_by: str
    opener_role: str
    reason: str
    status: str
    status_before: str
    respond_by: datetime
    mediation_due_at: datetime
    responded_at: datetime | None
    resolution: str | None
    to_freelancer: int | None
    to_client: int | None
    resolved_by: str | None
    resolution_note: str | None
    created_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, dispute: Dispute) -> DisputeOut:
        fields = {name: getattr(dispute, name) for name in cls.model_fields if name != "object"}
        return cls(**fields)
