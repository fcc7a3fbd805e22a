from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from milepost.audit.models import MilestoneEvent
from milepost.kit.schemas import (
    Body,
    Currency,
    amount_in,
    amount_out,
    date_text,
    one_of,
    require_in_schema,
)
from milepost.milestones.models import Milestone, Submission
from milepost.milestones.state import MilestoneStatus, Role

_STATUS = (
    "draft (not funded yet), funded (in escrow, work under way), submitted (delivered, under review), "
    "changes_requested, approved (release pending a delay), released, cancelled, disputed, resolved."
)
MilestoneStatusName = Annotated[str, one_of(MilestoneStatus, _STATUS)]
RoleName = Annotated[str, one_of(Role, "client, freelancer, staff, or system (time-driven work).")]


class LateFeeIn(Body):
    """``{"type": "flat", "amount", "grace_days"}`` or ``{"type": "percent", "rate_bps", "period_days",
    "grace_days", "cap_bps"}``: counted from `fund_by`, in whole periods after the grace days, capped at
    `cap_bps` of the milestone amount."""

    type: Literal["flat", "percent"]
    amount: StrictInt | None = amount_in("flat: the fee.", default=None)
    grace_days: StrictInt | None = Field(
        None, description="Days after fund_by before it counts (0-365)."
    )
    rate_bps: StrictInt | None = Field(
        None, description="percent: per period, in basis points of the amount (1-10000)."
    )
    period_days: StrictInt | None = Field(None, description="percent: the period in days (1-365).")
    cap_bps: StrictInt | None = Field(
        None, description="percent: the most it can reach, in basis points of the amount (0-10000)."
    )


_DUE_DATE = "When the work is due (YYYY-MM-DD, at most 9998-12-31)."
_FUND_BY = "When the client should have funded it (YYYY-MM-DD); late fees count from it."
TermText = list[StrictStr] | None


class _Terms(Body):
    """A milestone's terms. The service checks every value (so that a wrong one keeps its error code);
    the document says what each takes."""

    title: StrictStr | None = Field(None, description="Up to 200 characters.")
    amount: StrictInt | None = amount_in("The milestone's price.", default=None)
    description: StrictStr | None = None
    due_date: Annotated[StrictStr, date_text(_DUE_DATE)] | None = None
    fund_by: Annotated[StrictStr, date_text(_FUND_BY)] | None = None
    acceptance_criteria: TermText = Field(
        None, description="What the delivery must meet; the review checks it against these."
    )
    required_evidence: TermText = Field(None, description="What the delivery must include.")
    exclusions: TermText = Field(None, description="What is not part of the work.")
    dependencies: TermText = None
    review_period_days: StrictInt | None = Field(
        None, description="Days the client has to review a delivery (1-90; default 14)."
    )
    release_delay_days: StrictInt | None = Field(
        None, description="Days between approval and release (0-30; default 0)."
    )
    late_fee: LateFeeIn | None = None

    def given(self) -> dict[str, Any]:
        """The fields the client actually sent (an explicit null clears a term)."""
        values = self.model_dump(exclude_unset=True)
        if isinstance(values.get("late_fee"), dict):
            values["late_fee"] = {k: v for k, v in values["late_fee"].items() if v is not None}
        return values


class MilestoneCreate(_Terms):
    """A new milestone's terms: title and amount are required (a missing or null one is 422 `missing`)."""

    model_config = ConfigDict(json_schema_extra=require_in_schema("title", "amount"))


class MilestoneUpdate(_Terms):
    """A draft milestone's terms to change: only the fields sent change; an explicit null clears a term."""


class EvidenceIn(Body):
    """One item of a delivery: ``{"type": "link", "url"}``, ``{"type": "file", "file_id"}`` (from
    ``POST /v1/files``) or ``{"type": "text", "text"}``."""

    type: Literal["link", "file", "text"]
    url: StrictStr | None = Field(None, description="link: an http(s) URL.")
    file_id: StrictStr | None = Field(None, description="file: an uploaded file's id (`file_...`).")
    text: StrictStr | None = Field(None, description="text: the text itself.")


class SubmissionIn(Body):
    """A delivery: a note, evidence, or both (neither is 422)."""

    note: StrictStr | None = None
    evidence: list[EvidenceIn] = Field(default_factory=list)

    def evidence_items(self) -> list[dict[str, Any]]:
        return [item.model_dump(exclude_none=True) for item in self.evidence]


class ChangesIn(Body):
    reason: StrictStr = Field(description="What the freelancer should change.")
    unmet_criteria: list[StrictInt] | None = Field(
        None, description="Indexes (from 0) of the acceptance criteria not met."
    )


class ReleaseIn(Body):
    amount: StrictInt | None = amount_in(
        "How much to release; omitted or null: all that remains in escrow.", default=None
    )


class CancelIn(Body):
    reason: StrictStr | None = None


class CancellationRequestIn(Body):
    reason: StrictStr = Field(description="Why the client asks to cancel; shown to the freelancer.")


class MilestoneOut(BaseModel):
    id: str
    object: Literal["milestone"] = "milestone"
    project_id: str
    client_id: str
    freelancer_id: str | None
    position: int
    title: str
    description: str
    amount: int = amount_out("The milestone's price.")
    currency: Currency
    status: MilestoneStatusName
    funded_amount: int = amount_out("Paid into escrow so far.")
    released_amount: int = amount_out("Released from escrow to the freelancer, fee included.")
    refunded_amount: int = amount_out("Returned from escrow to the client.")
    escrow_balance: int = amount_out("Held in escrow now.")
    fee_amount: int = amount_out("The platform's fee on what was released.")
    late_fee_amount: int = amount_out("The late fee accrued under the terms.")
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
    cancellation_answer_due_at: datetime | None = Field(
        description="While a cancellation request is pending: when it is granted (and the escrow "
        "refunded) if the freelancer has not answered."
    )
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
    actor_role: RoleName
    action: str = Field(
        description="What happened; the webhook event type is `milestone.<action>`."
    )
    from_status: MilestoneStatusName | None
    to_status: MilestoneStatusName | None
    amount: int | None = amount_out("The money the event moved or set, if any.")
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
