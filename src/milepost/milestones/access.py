"""Loading a milestone for an actor: 404 for anyone who is not a party (staff see all)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, NotFound
from milepost.kit.lookup import keep
from milepost.milestones.models import Milestone
from milepost.milestones.state import Role
from milepost.projects.models import Project
from milepost.projects.service import CLIENT, FREELANCER, project_role


@dataclass
class MilestoneAccess:
    milestone: Milestone
    project: Project
    role: Role

    @property
    def freelancer_id(self) -> str:
        if self.project.freelancer_id is None:
            raise InvalidState(
                "This project has no freelancer yet, so there is nobody to pay.",
                code="no_freelancer",
            )
        return self.project.freelancer_id


# The statements are built once: building one per call (its joins, its comparisons, its cache key)
# cost more CPU than executing it.
_WITH_PARTIES = (
    select(Milestone, Project, CLIENT, FREELANCER)
    .join(Project, Project.id == Milestone.project_id)
    .join(CLIENT, CLIENT.id == Project.client_id)
    .outerjoin(FREELANCER, FREELANCER.id == Project.freelancer_id)
    .where(Milestone.id == bindparam("milestone_id"))
)
_LOCKED_WITH_PARTIES = _WITH_PARTIES.with_for_update(of=Milestone.__table__).execution_options(
    populate_existing=True
)


def load_milestone(ctx: Context, milestone_id: str, *, lock: bool) -> MilestoneAccess:
    """The milestone, its project and the actor's role; with ``lock``, the milestone row is locked.

    One statement reads the milestone, its project and both parties (whom the events of an action
    notify), and the lock, if any, is on the milestone row only."""
    query = _LOCKED_WITH_PARTIES if lock else _WITH_PARTIES
    row = ctx.session.execute(query, {"milestone_id": milestone_id}).one_or_none()
    if row is None:
        raise NotFound("No such milestone.", param="id")
    milestone, project, *parties = row
    keep(ctx.session, project, *parties)
    role = project_role(ctx.actor, project)
    if role is None:
        raise NotFound("No such milestone.", param="id")
    return MilestoneAccess(milestone, project, role)
