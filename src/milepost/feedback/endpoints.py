"""Feedback on an ended milestone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.feedback import service
from milepost.feedback.schemas import FeedbackIn, FeedbackOut
from milepost.kit.http import ApiDep
from milepost.kit.schemas import ListOf, error_responses

router = APIRouter(tags=["feedback"])


@router.post(
    "/milestones/{milestone_id}/feedback",
    status_code=201,
    response_model=FeedbackOut,
    summary="Rate the other party",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def leave_feedback(milestone_id: str, body: FeedbackIn, api: ApiDep) -> Response:
    """The client or the freelancer rates the other (1 to 5, with an optional comment) once the milestone
    has ended (released, cancelled or resolved; 409 before, and 409 for a second rating). It counts in
    the other's reputation. No money moves."""
    return await api.write(
        lambda ctx: service.leave_feedback(
            ctx, milestone_id, rating=body.rating, comment=body.comment
        ),
        FeedbackOut.of,
        status=201,
    )


@router.get(
    "/milestones/{milestone_id}/feedback",
    response_model=ListOf[FeedbackOut],
    summary="List a milestone's feedback",
    responses=error_responses(401, 404, 422),
)
def list_feedback(milestone_id: str, api: ApiDep) -> Response:
    """The ratings the milestone's parties left each other. Its parties only."""
    return api.read(
        lambda ctx: service.list_feedback(ctx, milestone_id),
        lambda rows: ListOf[FeedbackOut](
            data=[FeedbackOut.of(row) for row in rows], has_more=False
        ),
    )


@router.get(
    "/users/{user_id}/feedback",
    response_model=ListOf[FeedbackOut],
    summary="List the feedback a user received",
    responses=error_responses(400, 401, 404, 422),
)
def feedback_received(
    user_id: str,
    api: ApiDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> Response:
    """The ratings a user has received, newest first; any signed-in user may read them."""
    return api.read(
        lambda ctx: service.feedback_received(
            ctx, user_id, limit=limit, starting_after=starting_after
        ),
        lambda page: ListOf[FeedbackOut](
            data=[FeedbackOut.of(row) for row in page.data], has_more=page.has_more
        ),
    )
