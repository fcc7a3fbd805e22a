"""Loading a milestone for an actor: 404 for anyone who is not a party (staff see all)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import aliased

from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, NotFound
from milepost.kit.lookup import keep
from milepost.milestones.models import Milestone
from milepost.milestones.state import Role
from milepost.projects.models import Project
from milepost.projects.service import project_role
from milepost.users.models import User


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


def load_milestone(ctx: Context, milestone_id: str, *, lock: bool) -> MilestoneAccess:
    """The milestone, its project and the actor's role; with ``lock``, the milestone row is locked.

    One statement reads the milestone, its project and both parties (whom the events of an action
    notify), and the lock, if any, is on the milestone row only."""
    client, freelancer = aliased(User), aliased(User)
    query = (
        select(Milestone, Project, client, freelancer)
        .join(Project, Project.id == Milestone.project_id)
        .join(client, client.id == Project.client_id)
        .outerjoin(freelancer, freelancer.id == Project.freelancer_id)
        .where(Milestone.id == milestone_id)
    )
    if lock:
        query = query.with_for_update(of=Milestone.__table__).execution_options(
            populate_existing=True
        )
    row = ctx.session.execute(query).one_or_none()
    if row is None:
        raise NotFound("No such milestone.", param="id")
    milestone, project, *parties = row
    keep(ctx.session, project, *parties)
    role = project_role(ctx.actor, project)
    if role is None:
        raise NotFound("No such milestone.", param="id")
    return MilestoneAccess(milestone, project, role)
