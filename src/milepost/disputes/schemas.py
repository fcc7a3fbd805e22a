from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from milepost.disputes.models import (
    Dispute,
    DisputeMessage,
    DisputeStatus,
    OfferStatus,
    Resolution,
    SettlementOffer,
)
from milepost.disputes.service import awaiting_response_from
from milepost.kit.schemas import Body, amount_in, amount_out, one_of
from milepost.milestones.schemas import EvidenceIn, MilestoneStatusName


class DisputeIn(Body):
    reason: StrictStr = Field(description="What is wrong; shown to the other party and to staff.")


class MessageIn(Body):
    body: StrictStr = Field(description="The message, shown to both parties and staff.")
    attachments: list[EvidenceIn] = Field(
        default_factory=list,
        description="Evidence items, as for a delivery: links, texts and files uploaded by the author "
        "(`POST /v1/files`), which the parties and staff may then download.",
    )

    def attachment_items(self) -> list[dict[str, Any]]:
        return [item.model_dump(exclude_none=True) for item in self.attachments]


class OfferIn(Body):
    to_freelancer: StrictInt = amount_in(
        "How much of the escrow goes to the freelancer; the rest goes back to the client.",
        allow_zero=True,
    )


class ResolveIn(Body):
    to_freelancer: StrictInt = amount_in("The freelancer's part of the escrow.", allow_zero=True)
    to_client: StrictInt = amount_in(
        "The client's part; the two add up to the escrow balance.", allow_zero=True
    )
    note: StrictStr | None = Field(None, description="Why, shown to both parties.")


PartyRole = Annotated[str, one_of(["client", "freelancer"], "`client` or `freelancer`.")]


class OfferOut(BaseModel):
    id: str
    object: Literal["settlement_offer"] = "settlement_offer"
    dispute_id: str
    made_by: str
    maker_role: PartyRole
    to_freelancer: int = amount_out("The freelancer's part of the escrow under this offer.")
    status: Annotated[
        str,
        one_of(
            OfferStatus,
            "`open`, `accepted`, `superseded` (a newer offer from the same party), `closed` (the "
            "dispute ended otherwise).",
        ),
    ]
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
    opener_role: PartyRole
    reason: str
    status: Annotated[str, one_of(DisputeStatus, "`open`, `withdrawn` or `resolved`.")]
    status_before: MilestoneStatusName = Field(
        description="The milestone's status when the dispute opened (it returns to it on withdrawal)."
    )
    respond_by: datetime
    mediation_due_at: datetime
    responded_at: datetime | None
    resolution: (
        Annotated[
            str,
            one_of(
                Resolution,
                "`offer_accepted`, `staff`, or `no_response` (the other party let the window pass).",
            ),
        ]
        | None
    )
    to_freelancer: int | None = amount_out("Once resolved: the freelancer's part.")
    to_client: int | None = amount_out("Once resolved: the client's part.")
    resolved_by: str | None
    resolution_note: str | None
    created_at: datetime
    ended_at: datetime | None
    overdue: bool = Field(
        description="Past the mediation window while open: in staff's overdue queue (`overdue_at`)."
    )
    overdue_at: datetime | None
    awaiting_response_from: PartyRole | None = Field(
        description="While open and unanswered: the party whose answer the response window waits for "
        "(by `respond_by`; a message or an offer from them answers)."
    )

    @classmethod
    def of(cls, dispute: Dispute) -> DisputeOut:
        computed = {"object", "overdue", "awaiting_response_from"}
        fields = {name: getattr(dispute, name) for name in cls.model_fields if name not in computed}
        waiting = awaiting_response_from(dispute)
        return cls(
            **fields,
            overdue=dispute.overdue_at is not None and dispute.status is DisputeStatus.OPEN,
            awaiting_response_from=None if waiting is None else str(waiting),
        )


class MessageOut(BaseModel):
    id: str
    object: Literal["dispute_message"] = "dispute_message"
    dispute_id: str
    author_id: str
    author_role: Annotated[
        str, one_of(["client", "freelancer", "staff"], "`client`, `freelancer` or `staff`.")
    ]
    body: str
    attachments: list[dict[str, Any]]
    created_at: datetime

    @classmethod
    def of(cls, message: DisputeMessage) -> MessageOut:
        return cls(
            id=message.id,
            dispute_id=message.dispute_id,
            author_id=message.author_id,
            author_role=message.author_role,
            body=message.body,
            attachments=message.attachments,
            created_at=message.created_at,
        )
