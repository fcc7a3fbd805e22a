from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from milepost.disputes.schemas import PartyRole
from milepost.feedback.models import Feedback
from milepost.kit.schemas import Body


class FeedbackIn(Body):
    rating: StrictInt = Field(
        description="1 (worst) to 5 (best).", json_schema_extra={"minimum": 1, "maximum": 5}
    )
    comment: StrictStr | None = Field(default=None, description="Up to 2000 characters.")


class FeedbackOut(BaseModel):
    id: str
    object: Literal["feedback"] = "feedback"
    milestone_id: str
    author_id: str
    author_role: PartyRole
    subject_id: str
    rating: int
    comment: str
    created_at: datetime

    @classmethod
    def of(cls, feedback: Feedback) -> FeedbackOut:
        return cls(
            id=feedback.id,
            milestone_id=feedback.milestone_id,
            author_id=feedback.author_id,
            author_role=feedback.author_role,
            subject_id=feedback.subject_id,
            rating=feedback.rating,
            comment=feedback.comment,
            created_at=feedback.created_at,
        )
