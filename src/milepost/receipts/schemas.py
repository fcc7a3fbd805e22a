from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from milepost.kit.schemas import Currency, amount_out, one_of
from milepost.milestones.schemas import RoleName
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
    kind: Annotated[str, one_of(["release", "dispute_split"], "`release` or `dispute_split`.")]
    partial: bool
    milestone_id: str
    milestone_title: str
    project_id: str
    project_title: str
    client: PartyOut
    freelancer: PartyOut
    currency: Currency
    amount_released: int = amount_out("Gross, fee included.")
    platform_fee: int = amount_out("The platform's fee.")
    net_to_freelancer: int = amount_out("What the freelancer received.")
    refunded_to_client: int = amount_out("What went back to the client (a dispute split).")
    released_by: RoleName
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
