from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from milepost.audit.models import ProjectEvent
from milepost.events import ProjectEventAction
from milepost.kit.schemas import (
    Body,
    Currency,
    CurrencyIn,
    amount_in,
    amount_out,
    date_text,
    one_of,
)
from milepost.milestones.schemas import RoleName
from milepost.projects.models import (
    Bonus,
    MilestoneRequest,
    Project,
    ProjectOffer,
    ProjectStatus,
    Proposal,
    ProposalStatus,
)
from milepost.projects.state import MilestoneRequestStatus, OfferStatus


class ProjectIn(Body):
    title: StrictStr = Field(description="Up to 200 characters.")
    # Every milestone of the project is in this currency.
    currency: CurrencyIn
    description: StrictStr | None = None
    freelancer_id: StrictStr | None = Field(
        None, description="A user (`usr_...`) to award it to at once; omitted: open for proposals."
    )
    billing_contact_email: StrictStr | None = Field(
        None, description="An e-mail address of the client's billing contact, kept on the project."
    )


class ProjectOut(BaseModel):
    id: str
    object: Literal["project"] = "project"
    client_id: str
    freelancer_id: str | None
    title: str
    description: str
    currency: Currency
    billing_contact_email: str | None
    status: Annotated[
        str,
        one_of(ProjectStatus, "`open` (taking proposals) or `awarded` (has its freelancer)."),
    ]
    paused: bool
    paused_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        return cls(
            id=project.id,
            client_id=project.client_id,
            freelancer_id=project.freelancer_id,
            title=project.title,
            description=project.description,
            currency=project.currency,
            billing_contact_email=project.billing_contact_email,
            status=project.status,
            paused=project.paused,
            paused_at=project.paused_at,
            created_at=project.created_at,
            updated_at=project.updated_at,
        )


class ProposedMilestone(Body):
    title: StrictStr
    amount: StrictInt = amount_in("This milestone's price.")
    due_date: Annotated[StrictStr, date_text("When it is due (YYYY-MM-DD).")] | None = None
    acceptance_criteria: list[StrictStr] | None = None


class ProposalIn(Body):
    amount: StrictInt = amount_in("The whole price; the milestones' amounts add up to it.")
    milestones: list[ProposedMilestone] = Field(description="1 to 10 milestones.")
    cover_letter: StrictStr | None = None


class ProposalOut(BaseModel):
    id: str
    object: Literal["proposal"] = "proposal"
    project_id: str
    freelancer_id: str
    amount: int = amount_out("The whole price.")
    currency: Currency
    cover_letter: str
    milestones: list[dict[str, Any]] = Field(
        description="The proposed milestones: title, amount (minor units), due_date, "
        "acceptance_criteria."
    )
    status: Annotated[
        str,
        one_of(
            ProposalStatus,
            "`pending`, `accepted`, `declined` (another was accepted) or `withdrawn` (by its "
            "freelancer, or replaced by a newer proposal of theirs).",
        ),
    ]
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, proposal: Proposal) -> ProposalOut:
        return cls(
            id=proposal.id,
            project_id=proposal.project_id,
            freelancer_id=proposal.freelancer_id,
            amount=proposal.amount,
            currency=proposal.currency,
            cover_letter=proposal.cover_letter,
            milestones=proposal.milestones,
            status=proposal.status,
            created_at=proposal.created_at,
            decided_at=proposal.decided_at,
        )


class BonusIn(Body):
    amount: StrictInt = amount_in("The bonus, before the platform fee.")
    note: StrictStr | None = None


class BonusOut(BaseModel):
    id: str
    object: Literal["bonus"] = "bonus"
    project_id: str
    client_id: str
    freelancer_id: str
    amount: int = amount_out("The bonus the client paid.")
    fee_amount: int = amount_out("The platform fee taken from it.")
    currency: Currency
    note: str
    created_at: datetime

    @classmethod
    def of(cls, bonus: Bonus) -> BonusOut:
        return cls(
            id=bonus.id,
            project_id=bonus.project_id,
            client_id=bonus.client_id,
            freelancer_id=bonus.freelancer_id,
            amount=bonus.amount,
            fee_amount=bonus.fee_amount,
            currency=bonus.currency,
            note=bonus.note,
            created_at=bonus.created_at,
        )


class RejectIn(Body):
    reason: StrictStr | None = Field(None, description="Why, shown to the freelancer.")


class MilestoneRequestOut(BaseModel):
    id: str
    object: Literal["milestone_request"] = "milestone_request"
    project_id: str
    freelancer_id: str
    terms: dict[str, Any] = Field(
        description="The milestone's terms as requested (as to create one)."
    )
    status: Annotated[
        str,
        one_of(
            MilestoneRequestStatus,
            "`pending`, `accepted` (a draft milestone with the terms: `milestone_id`), `rejected` or "
            "`withdrawn`.",
        ),
    ]
    reason: str | None
    milestone_id: str | None
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, request: MilestoneRequest) -> MilestoneRequestOut:
        fields = {name: getattr(request, name) for name in cls.model_fields if name != "object"}
        return cls(**fields)


class ProjectOfferIn(Body):
    freelancer_id: StrictStr | None = Field(None, description="The freelancer's user id; or:")
    email: StrictStr | None = Field(
        None,
        description="An e-mail address: an invitation, which whoever has or makes an account with it "
        "may answer.",
    )
    message: StrictStr | None = Field(None, description="A note to the freelancer.")


class ProjectOfferOut(BaseModel):
    id: str
    object: Literal["project_offer"] = "project_offer"
    project_id: str
    freelancer_id: str | None = Field(description="The freelancer's account, once known.")
    email: str | None = Field(description="The invited address, while no account has answered.")
    message: str
    status: Annotated[str, one_of(OfferStatus, "`pending`, `accepted`, `declined` or `withdrawn`.")]
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, offer: ProjectOffer) -> ProjectOfferOut:
        fields = {name: getattr(offer, name) for name in cls.model_fields if name != "object"}
        return cls(**fields)


class ProjectEventOut(BaseModel):
    id: str
    object: Literal["project_event"] = "project_event"
    project_id: str
    seq: int
    actor_id: str | None
    actor_role: RoleName
    action: Annotated[
        str,
        one_of(
            ProjectEventAction,
            "What happened; the webhook event type is `project.<action>`.",
        ),
    ]
    data: dict[str, Any] = Field(
        description="The offer's or the milestone request's id, and what the step said."
    )
    created_at: datetime
    hash: str
    prev_hash: str

    @classmethod
    def of(cls, event: ProjectEvent) -> ProjectEventOut:
        return cls(
            id=event.id,
            project_id=event.project_id,
            seq=event.seq,
            actor_id=event.actor_id,
            actor_role=event.actor_role,
            action=event.action,
            data=event.data,
            created_at=event.created_at,
            hash=event.hash,
            prev_hash=event.prev_hash,
        )
