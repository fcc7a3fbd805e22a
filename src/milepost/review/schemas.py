"""The review context as the API shows it (``GET /v1/milestones/{id}/review``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from milepost.milestones.schemas import MilestoneStatusName
from milepost.review.service import (
    CriterionCheck,
    EvidenceMatch,
    RequiredCheck,
    ReviewContext,
    Revision,
)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EvidenceOut(_Out):
    ref: str = Field(description='"note", or "evidence[i]": the item\'s place in the submission.')
    type: Literal["note", "link", "file", "text"]
    label: str = Field(description="What a person reads: the text (shortened), URL or file name.")
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    content_type: str | None = None
    text: str | None = None


VerdictName = Literal["met", "unclear", "unmet"]


class EvidenceMatchOut(BaseModel):
    ref: str
    type: str
    label: str
    verdict: VerdictName = Field(
        description="met: the item shows the criterion is met; unclear: it looks related, check "
        "it; unmet: it does not show it."
    )
    score: float = Field(description="0 to 1; compare only scores of the same matcher.")
    matched_words: list[str] = Field(description="The item's words that match the criterion's.")
    quote: str = Field(description="The item's sentence that carried the verdict, if any.")
    veto: str = Field(
        description="Why the item cannot meet the criterion whatever its score (a figure short "
        'of a bound the criterion sets, "38,000 of 48,000"); empty when none applies.'
    )

    @classmethod
    def of(cls, found: EvidenceMatch) -> EvidenceMatchOut:
        return cls(
            ref=found.item.ref,
            type=found.item.type,
            label=found.item.label,
            verdict=found.verdict,
            score=found.score,
            matched_words=list(found.matched_words),
            quote=found.quote,
            veto=found.veto,
        )


class TermOut(_Out):
    index: int
    text: str


class CriterionOut(BaseModel):
    index: int
    text: str
    verdict: VerdictName = Field(
        description="met: an evidence item shows it; unclear: an item looks related but does not "
        "clearly show it (check it); unmet: no item shows it."
    )
    met: bool = Field(description='verdict == "met".')
    matcher: str = Field(description="Which matcher judged this criterion.")
    explanation: str = Field(
        default="", description="The LLM reviewer's reason, when it judged this criterion."
    )
    score: float = Field(description="The best score of any evidence item.")
    evidence: list[EvidenceMatchOut] = Field(description="The items that address it, best first.")
    closest: EvidenceMatchOut | None = Field(
        description="When no item addresses it: the one that came closest (an unclear one first)."
    )

    @classmethod
    def of(cls, check: CriterionCheck) -> CriterionOut:
        return cls(
            index=check.criterion.index,
            text=check.criterion.text,
            verdict=check.verdict,
            met=check.met,
            matcher=check.matcher,
            explanation=check.explanation,
            score=check.score,
            evidence=[EvidenceMatchOut.of(found) for found in check.evidence],
            closest=None if check.closest is None else EvidenceMatchOut.of(check.closest),
        )


class RequiredOut(BaseModel):
    index: int
    text: str
    found: bool = Field(
        description="A link, file or text item is this evidence (the note does not count: saying "
        '"report attached" is not attaching it).'
    )
    evidence: list[EvidenceMatchOut]
    closest: EvidenceMatchOut | None = Field(
        default=None, description="When not found: the item that came closest."
    )

    @classmethod
    def of(cls, check: RequiredCheck) -> RequiredOut:
        return cls(
            index=check.required.index,
            text=check.required.text,
            found=check.found,
            evidence=[EvidenceMatchOut.of(found) for found in check.evidence],
            closest=None if check.closest is None else EvidenceMatchOut.of(check.closest),
        )


class ChangeRequestOut(_Out):
    requested_at: datetime
    reason: str
    unmet_criteria: list[TermOut]


class RevisionOut(_Out):
    revision: int
    submission_id: str
    submitted_at: datetime
    note: str
    evidence: list[EvidenceOut]
    added: list[EvidenceOut] = Field(description="Evidence new since the revision before.")
    removed: list[EvidenceOut] = Field(description="Evidence of the revision before, now gone.")
    note_changed: bool
    changes_requested: ChangeRequestOut | None = Field(
        description="What the client asked for after this delivery, if they asked for changes."
    )

    @classmethod
    def of(cls, revision: Revision) -> RevisionOut:
        return cls.model_validate(revision)


class SuggestionOut(_Out):
    decision: Literal["approve", "request_changes"] = Field(
        description="approve only when every criterion is met and every required item is present."
    )
    unmet_criteria: list[TermOut] = Field(description="Every criterion not met, unclear included.")
    unclear_criteria: list[TermOut] = Field(description="Those that look related: check them.")
    missing_evidence: list[TermOut]
    reasons: list[str]


class ReviewContextOut(BaseModel):
    object: Literal["review_context"] = "review_context"
    milestone_id: str
    milestone_status: MilestoneStatusName
    matcher: Literal["semantic", "keywords", "llm"] = Field(
        description="What judged the criteria: semantic (sentence embeddings run offline, the "
        "default), keywords, or llm (the operator's LLM reviewer; a criterion it could not judge "
        "names the local matcher in its own matcher field)."
    )
    submission: RevisionOut | None = Field(
        description="The latest delivery, null before the first."
    )
    criteria: list[CriterionOut]
    required_evidence: list[RequiredOut]
    revisions: list[RevisionOut] = Field(description="Every delivery, oldest first.")
    review_due_at: datetime | None
    review_seconds_left: int | None = Field(
        description="Time left in the review period; null unless the milestone is under review."
    )
    review_overdue: bool
    suggestion: SuggestionOut | None = Field(description="Null before the first delivery.")
    read_in_part: list[str] = Field(
        description="Texts the matcher read only the start of, by reference: "
        '"acceptance_criteria[i]", "required_evidence[i]", "note" or "evidence[i]".'
    )

    @classmethod
    def of(cls, context: ReviewContext) -> ReviewContextOut:
        return cls(
            milestone_id=context.milestone_id,
            milestone_status=context.milestone_status,
            matcher=context.matcher,
            submission=None if context.submission is None else RevisionOut.of(context.submission),
            criteria=[CriterionOut.of(check) for check in context.criteria],
            required_evidence=[RequiredOut.of(check) for check in context.required_evidence],
            revisions=[RevisionOut.of(revision) for revision in context.revisions],
            review_due_at=context.review_time.due_at,
            review_seconds_left=context.review_time.seconds_left,
            review_overdue=context.review_time.overdue,
            suggestion=None
            if context.suggestion is None
            else SuggestionOut.model_validate(context.suggestion),
            read_in_part=list(context.read_in_part),
        )
