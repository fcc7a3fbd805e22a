"""Read model for a person's profile page: who they are, their reputation and the feedback they received."""

from __future__ import annotations

from dataclasses import dataclass

from milepost.feedback.models import Feedback
from milepost.feedback.service import feedback_received
from milepost.kit.context import Context
from milepost.kit.pagination import Page
from milepost.reputation.service import Reputation, reputation
from milepost.users.models import User
from milepost.users.service import get_user


@dataclass(frozen=True)
class Profile:
    user: User
    reputation: Reputation
    feedback: Page[Feedback]  # the most recent first page


def profile(ctx: Context, user_id: str) -> Profile:
    """Any signed-in user may see anyone's profile (as GET /v1/users/{id}/reputation); NotFound for an
    unknown id."""
    # reputation() first: it is what says who may look, and 404s an unknown id.
    figures = reputation(ctx, user_id)
    return Profile(get_user(ctx.session, user_id), figures, feedback_received(ctx, user_id))
