"""Feedback: once a milestone has ended, each party may rate the other once (1 to 5, with a comment)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from milepost.feedback.models import MAX_RATING, MIN_RATING, Feedback
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import Conflict, InvalidState, NotFound, PermissionDenied
from milepost.kit.ids import new_id
from milepost.kit.pagination import Page, paginate
from milepost.milestones.access import load_milestone
from milepost.milestones.state import TERMINAL, Role
from milepost.users.models import User

MAX_COMMENT_LENGTH = 2000


class AlreadyRated(Conflict):
    code = "already_rated"


def leave_feedback(
    ctx: Context, milestone_id: str, *, rating: object, comment: object = None
) -> Feedback:
    """The client rates the freelancer, or the freelancer the client, after the milestone ended.

    Refused: a non-party (404), staff (403 ``only_parties_can_rate``), a milestone not yet ended
    (409 ``invalid_state``), a second rating by the same party (409 ``already_rated``).
    """
    # The milestone row lock queues two ratings of one milestone, so the check below sees the first.
    access = load_milestone(ctx, milestone_id, lock=True)
    if access.role not in (Role.CLIENT, Role.FREELANCER):
        raise PermissionDenied(
            "Only the client and the freelancer of a milestone can rate each other.",
            code="only_parties_can_rate",
        )
    milestone = access.milestone
    if milestone.status not in TERMINAL:
        raise InvalidState(
            f"Feedback can be left once the milestone has ended; it is {milestone.status}."
        )
    value = validate.integer(rating, "rating", minimum=MIN_RATING, maximum=MAX_RATING)
    text = validate.text(comment, "comment", max_length=MAX_COMMENT_LENGTH, required=False)
    author = ctx.require_actor()
    subject_id = access.freelancer_id if access.role is Role.CLIENT else access.project.client_id
    existing = ctx.session.scalar(
        select(Feedback.id).where(
            Feedback.milestone_id == milestone.id, Feedback.author_id == author.id
        )
    )
    if existing is not None:
        raise AlreadyRated("You have already rated this milestone.")
    feedback = Feedback(
        id=new_id("fb"),
        milestone_id=milestone.id,
        author_id=author.id,
        author_role=access.role,
        subject_id=subject_id,
        rating=value,
        comment=text,
        created_at=ctx.now,
    )
    ctx.session.add(feedback)
    try:
        ctx.session.flush()
    except IntegrityError:
        raise AlreadyRated("You have already rated this milestone.") from None
    return feedback


def list_feedback(ctx: Context, milestone_id: str) -> list[Feedback]:
    """The feedback left on a milestone, oldest first (parties and staff)."""
    milestone = load_milestone(ctx, milestone_id, lock=False).milestone
    return list(
        ctx.session.scalars(
            select(Feedback).where(Feedback.milestone_id == milestone.id).order_by(Feedback.id)
        )
    )


def feedback_received(
    ctx: Context, user_id: str, *, limit: int = 20, starting_after: str | None = None
) -> Page[Feedback]:
    """The ratings others gave ``user_id``, newest first: public to any signed-in user, like the
    reputation they make up."""
    ctx.require_actor()
    if ctx.session.get(User, user_id) is None:
        raise NotFound("No such user.", param="id")
    query = select(Feedback).where(Feedback.subject_id == user_id)
    return paginate(ctx.session, query, Feedback.id, limit=limit, starting_after=starting_after)
