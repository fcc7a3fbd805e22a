from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from milepost.receipts.service import Party, Receipt


class PartyOut(BaseModel):
    id: str
    name: str
    email: str

    @classmethod
    def of(cls, party: Party) -> PartyOut:
        return cls(id=party.id, name=party.name, email=party.email)


class ReceiptOut(BaseModel):
    id: str = Field(description="The journal entry's id.")
    object: Literal["receipt"] = "receipt"
    kind: str = Field(description="`release` or `dispute_split`.")
    partial: bool
    milestone_id: str
    milestone_title: str
    project_id: str
    project_title: str
    client: PartyOut
    freelancer: PartyOut
    currency: str
    amount_released: int = Field(description="Gross, fee included, in minor units.")
    platform_fee: int
    net_to_freelancer: int
    refunded_to_client: int
    released_by: str = Field(description="client, freelancer, staff or system.")
    entry_hash: str
    event_id: str | None
    event_hash: str | None
    created_at: datetime
    html_url: str
    pdf_url: str

    @classmethod
    def of(cls, receipt: Receipt) -> ReceiptOut:
        return cls(
            id=receipt.entry_id,
            kind=receipt.entry_kind,
            partial=receipt.partial,
            milestone_id=receipt.milestone_id,
            milestone_title=receipt.milestone_title,
            project_id=receipt.project_id,
            project_title=receipt.project_title,
            client=PartyOut.of(receipt.client),
            freelancer=PartyOut.of(receipt.freelancer),
            currency=receipt.currency,
            amount_released=receipt.amount_released,
            platform_fee=receipt.platform_fee,
            net_to_freelancer=receipt.net_to_freelancer,
            refunded_to_client=receipt.refunded_to_client,
            released_by=receipt.released_by_role,
            entry_hash=receipt.entry_hash,
            event_id=receipt.event_id,
            event_hash=receipt.event_hash,
            created_at=receipt.created_at,
            html_url=f"/v1/receipts/{receipt.entry_id}",
            pdf_url=f"/v1/receipts/{receipt.entry_id}.pdf",
        )
