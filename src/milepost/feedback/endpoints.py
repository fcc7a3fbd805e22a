"""Feedback on an ended milestone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.feedback import service
from milepost.feedback.schemas import FeedbackIn, FeedbackOut
from milepost.kit.http import ApiDep
from milepost.kit.schemas import ListOf

router = APIRouter(tags=["feedback"])


@router.post("/milestones/{milestone_id}/feedback", status_code=201, response_model=FeedbackOut)
async def leave_feedback(milestone_id: str, body: FeedbackIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.leave_feedback(
            ctx, milestone_id, rating=body.rating, comment=body.comment
        ),
        FeedbackOut.of,
        status=201,
    )


@router.get("/milestones/{milestone_id}/feedback", response_model=ListOf[FeedbackOut])
def list_feedback(milestone_id: str, api: ApiDep) -> Response:
    return api.read(
        lambda ctx: service.list_feedback(ctx, milestone_id),
        lambda rows: ListOf[FeedbackOut](
            data=[FeedbackOut.of(row) for row in rows], has_more=False
        ),
    )


@router.get("/users/{user_id}/feedback", response_model=ListOf[FeedbackOut])
def feedback_received(
    user_id: str,
    api: ApiDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> Response:
    return api.read(
        lambda ctx: service.feedback_received(
            ctx, user_id, limit=limit, starting_after=starting_after
        ),
        lambda page: ListOf[FeedbackOut](
            data=[FeedbackOut.of(row) for row in page.data], has_more=page.has_more
        ),
    )
