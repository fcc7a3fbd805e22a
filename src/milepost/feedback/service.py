"""Feedback: once a milestone has ended, each party may rate the other once (1 to 5, with a comment)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from milepost.feedback.models import MAX_RATING, MIN_RATING, Feedback
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.db import flush_now
from milepost.kit.errors import Conflict, InvalidState, NotFound, PermissionDenied
from milepost.kit.ids import new_id
from milepost.kit.pagination import Page, paginate
from milepost.milestones.access import MilestoneAccess, load_milestone
from milepost.milestones.state import TERMINAL, Role
from milepost.users.models import User

MAX_COMMENT_LENGTH = 2000


class AlreadyRated(Conflict):
    code = "already_rated"


# Guards: the preconditions of leaving feedback, run by leave_feedback and by may_leave_feedback ---------


def a_party(access: MilestoneAccess) -> None:
    """The client rates the freelancer and the freelancer the client; staff rate nobody."""
    if access.role not in (Role.CLIENT, Role.FREELANCER):
        raise PermissionDenied(
            "Only the client and the freelancer of a milestone can rate each other.",
            code="only_parties_can_rate",
        )


def milestone_ended(access: MilestoneAccess) -> None:
    milestone = access.milestone
    if milestone.status not in TERMINAL:
        raise InvalidState(
            f"Feedback can be left once the milestone has ended; it is {milestone.status}."
        )


def someone_to_rate(access: MilestoneAccess) -> None:
    """A milestone of a project nobody was awarded has no freelancer to rate (409 no_freelancer)."""
    access.freelancer_id  # noqa: B018 -- raises InvalidState no_freelancer


def not_rated_yet(ctx: Context, access: MilestoneAccess) -> None:
    """Once per author and milestone (the unique index settles a race; this answers everyone else)."""
    existing = ctx.session.scalar(
        select(Feedback.id).where(
            Feedback.milestone_id == access.milestone.id, Feedback.author_id == ctx.actor_id
        )
    )
    if existing is not None:
        raise AlreadyRated("You have already rated this milestone.")


def authorize_feedback(ctx: Context, access: MilestoneAccess) -> None:
    """Raise unless the actor may rate the other party of the milestone now."""
    a_party(access)
    milestone_ended(access)
    someone_to_rate(access)
    not_rated_yet(ctx, access)


def may_leave_feedback(ctx: Context, access: MilestoneAccess) -> bool:
    """Whether ``leave_feedback`` would take a (valid) rating from the actor now: the same guards."""
    try:
        authorize_feedback(ctx, access)
    except (PermissionDenied, InvalidState, AlreadyRated):
        return False
    return True


def leave_feedback(
    ctx: Context, milestone_id: str, *, rating: object, comment: object = None
) -> Feedback:
    """The client rates the freelancer, or the freelancer the client, after the milestone ended.

    Refused: a non-party (404), staff (403 ``only_parties_can_rate``), a milestone not yet ended
    (409 ``invalid_state``), a second rating by the same party (409 ``already_rated``).
    """
    # The milestone row lock queues two ratings of one milestone, so the check below sees the first.
    access = load_milestone(ctx, milestone_id, lock=True)
    author = ctx.require_actor()
    authorize_feedback(ctx, access)
    value = validate.integer(rating, "rating", minimum=MIN_RATING, maximum=MAX_RATING)
    text = validate.text(comment, "comment", max_length=MAX_COMMENT_LENGTH, required=False)
    subject_id = access.freelancer_id if access.role is Role.CLIENT else access.project.client_id
    feedback = Feedback(
        id=new_id("fb"),
        milestone_id=access.milestone.id,
        author_id=author.id,
        author_role=access.role,
        subject_id=subject_id,
        rating=value,
        comment=text,
        created_at=ctx.now,
    )
    ctx.session.add(feedback)
    try:
        flush_now(ctx.session)
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
