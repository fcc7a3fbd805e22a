from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, StrictInt, StrictStr

from milepost.kit.schemas import Body
from milepost.projects.models import Bonus, Project, Proposal


class ProjectIn(Body):
    title: StrictStr
    currency: StrictStr
    description: StrictStr | None = None
    freelancer_id: StrictStr | None = None
    billing_contact_email: StrictStr | None = None


class ProjectOut(BaseModel):
    id: str
    object: Literal["project"] = "project"
    client_id: str
    freelancer_id: str | None
    title: str
    description: str
    currency: str
    billing_contact_email: str | None
    status: str
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
    amount: StrictInt
    due_date: StrictStr | None = None
    acceptance_criteria: list[StrictStr] | None = None


class ProposalIn(Body):
    amount: StrictInt
    milestones: list[ProposedMilestone]
    cover_letter: StrictStr | None = None


class ProposalOut(BaseModel):
    id: str
    object: Literal["proposal"] = "proposal"
    project_id: str
    freelancer_id: str
    amount: int
    currency: str
    cover_letter: str
    milestones: list[dict[str, Any]]
    status: str
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
    amount: StrictInt
    note: StrictStr | None = None


class BonusOut(BaseModel):
    id: str
    object: Literal["bonus"] = "bonus"
    project_id: str
    client_id: str
    freelancer_id: str
    amount: int
    fee_amount: int
    currency: str
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
