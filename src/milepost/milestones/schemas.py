from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from milepost.audit.models import MilestoneEvent
from milepost.kit.schemas import Body
from milepost.milestones.models import Milestone, Submission


class LateFeeIn(Body):
    type: Literal["flat", "percent"]
    amount: StrictInt | None = None
    grace_days: StrictInt | None = None
    rate_bps: StrictInt | None = None
    period_days: StrictInt | None = None
    cap_bps: StrictInt | None = None


class TermsIn(Body):
    """Milestone terms; on create, title and amount are required (checked by the service)."""

    title: StrictStr | None = None
    amount: StrictInt | None = None
    description: StrictStr | None = None
    due_date: StrictStr | None = None
    fund_by: StrictStr | None = None
    acceptance_criteria: list[StrictStr] | None = None
    required_evidence: list[StrictStr] | None = None
    exclusions: list[StrictStr] | None = None
    dependencies: list[StrictStr] | None = None
    review_period_days: StrictInt | None = None
    release_delay_days: StrictInt | None = None
    late_fee: LateFeeIn | None = None

    def given(self) -> dict[str, Any]:
        """The fields the client actually sent (an explicit null clears a term)."""
        values = self.model_dump(exclude_unset=True)
        if isinstance(values.get("late_fee"), dict):
            values["late_fee"] = {k: v for k, v in values["late_fee"].items() if v is not None}
        return values


class EvidenceIn(Body):
    type: Literal["link", "file", "text"]
    url: StrictStr | None = None
    file_id: StrictStr | None = None
    text: StrictStr | None = None


class SubmissionIn(Body):
    note: StrictStr | None = None
    evidence: list[EvidenceIn] = Field(default_factory=list)

    def evidence_items(self) -> list[dict[str, Any]]:
        return [item.model_dump(exclude_none=True) for item in self.evidence]


class ChangesIn(Body):
    reason: StrictStr
    unmet_criteria: list[StrictInt] | None = None


class ReleaseIn(Body):
    amount: StrictInt | None = None


class ReasonIn(Body):
    reason: StrictStr | None = None


class RequiredReasonIn(Body):
    reason: StrictStr


class MilestoneOut(BaseModel):
    id: str
    object: Literal["milestone"] = "milestone"
    project_id: str
    client_id: str
    freelancer_id: str | None
    position: int
    title: str
    description: str
    amount: int
    currency: str
    status: str
    funded_amount: int
    released_amount: int
    refunded_amount: int
    escrow_balance: int
    fee_amount: int
    late_fee_amount: int
    due_date: date | None
    fund_by: date | None
    acceptance_criteria: list[str]
    required_evidence: list[str]
    exclusions: list[str]
    dependencies: list[str]
    review_period_days: int
    release_delay_days: int
    late_fee: dict[str, Any] | None
    cancellation_requested: bool
    cancellation_reason: str | None
    funded_at: datetime | None
    submitted_at: datetime | None
    review_due_at: datetime | None
    approved_at: datetime | None
    release_due_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, milestone: Milestone, freelancer_id: str | None) -> MilestoneOut:
        fields = {
            name: getattr(milestone, name) for name in cls.model_fields if hasattr(milestone, name)
        }
        fields.pop("object", None)
        return cls(**fields, freelancer_id=freelancer_id)


class SubmissionOut(BaseModel):
    id: str
    object: Literal["submission"] = "submission"
    milestone_id: str
    revision: int
    submitted_by: str
    note: str
    evidence: list[dict[str, Any]]
    created_at: datetime

    @classmethod
    def of(cls, submission: Submission) -> SubmissionOut:
        return cls(
            id=submission.id,
            milestone_id=submission.milestone_id,
            revision=submission.revision,
            submitted_by=submission.submitted_by,
            note=submission.note,
            evidence=submission.evidence,
            created_at=submission.created_at,
        )


class EventOut(BaseModel):
    id: str
    object: Literal["event"] = "event"
    milestone_id: str
    seq: int
    actor_id: str | None
    actor_role: str
    action: str
    from_status: str | None
    to_status: str | None
    amount: int | None
    data: dict[str, Any]
    created_at: datetime
    hash: str
    prev_hash: str

    @classmethod
    def of(cls, event: MilestoneEvent) -> EventOut:
        return cls(
            id=event.id,
            milestone_id=event.milestone_id,
            seq=event.seq,
            actor_id=event.actor_id,
            actor_role=event.actor_role,
            action=event.action,
            from_status=event.from_status,
            to_status=event.to_status,
            amount=event.amount,
            data=event.data,
            created_at=event.created_at,
            hash=event.hash,
            prev_hash=event.prev_hash,
        )
