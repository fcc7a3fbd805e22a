"""Read model for the milestone's web page: everything it shows and what the viewer may do there.

The page only lays this out; every figure and every "may this viewer do that" is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

from milepost.audit.models import MilestoneEvent
from milepost.audit.service import list_events
from milepost.kit.context import Context
from milepost.milestones.access import load_milestone
from milepost.milestones.models import Milestone
from milepost.milestones.service import amount_to_fund
from milepost.milestones.state import Action, MilestoneStatus, Role, allowed_actions
from milepost.projects.models import Project

S = MilestoneStatus


@dataclass(frozen=True)
class MilestonePage:
    milestone: Milestone
    project: Project
    role: Role
    events: list[MilestoneEvent]
    actions: frozenset[Action]  # what this viewer may do now, as far as role and state decide
    to_fund: int | None  # what funding would take now (amount + accrued late fee), while a draft


def milestone_page(ctx: Context, milestone_id: str) -> MilestonePage:
    """The milestone as its page shows it; NotFound for anyone who is not a party (staff see all)."""
    access = load_milestone(ctx, milestone_id, lock=False)
    milestone = access.milestone
    actions = allowed_actions(
        access.role,
        milestone.status,
        project_has_freelancer=access.project.freelancer_id is not None,
    )
    return MilestonePage(
        milestone=milestone,
        project=access.project,
        role=access.role,
        events=list_events(ctx, milestone.id),
        actions=actions,
        to_fund=amount_to_fund(milestone, ctx)[0] if milestone.status is S.DRAFT else None,
    )
