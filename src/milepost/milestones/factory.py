"""Making a milestone row: the one place a draft milestone comes into being.

Used by ``milestones.service.create_milestone`` (the client writes the terms) and by
``projects.service.accept_proposal`` (the accepted proposal's terms), so a milestone made either way is
numbered, validated, defaulted and recorded the same. It imports nothing of the projects package's
services, which need it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select

from milepost.audit import service as audit
from milepost.events import EventAction
from milepost.kit.context import Context
from milepost.kit.ids import new_id
from milepost.ledger import service as ledger
from milepost.milestones.models import Milestone
from milepost.milestones.state import MilestoneStatus, Role
from milepost.milestones.terms import validate_terms
from milepost.projects.models import Project


def next_position(ctx: Context, project_id: str) -> int:
    """The position of the project's next milestone. The caller holds the project row lock, so two
    milestones of one project are numbered one at a time."""
    highest = ctx.session.scalar(_HIGHEST_POSITION, {"project_id": project_id})
    return (highest or 0) + 1


_HIGHEST_POSITION = select(func.max(Milestone.position)).where(
    Milestone.project_id == bindparam("project_id")
)


def new_milestone(
    ctx: Context,
    project: Project,
    values: dict[str, Any],
    *,
    role: Role,
    data: dict[str, Any] | None = None,
) -> Milestone:
    """A draft milestone on ``project`` with the terms ``values`` (validated here, defaults filled in),
    numbered after the project's last one, and its ``created`` event (``data`` added to it).

    The caller has locked the project row and decided that the actor may add milestones to it."""
    terms = validate_terms(values, creating=True)
    milestone = Milestone(
        id=new_id("ms"),
        project_id=project.id,
        client_id=project.client_id,
        position=next_position(ctx, project.id),
        status=MilestoneStatus.DRAFT,
        currency=project.currency,
        created_at=ctx.now,
        updated_at=ctx.now,
        **terms,
    )
    ctx.session.add(milestone)
    ctx.session.flush()
    ledger.open_escrow(ctx, milestone.id, milestone.currency)
    audit.record(
        ctx,
        milestone,
        EventAction.CREATED,
        role=role,
        to_status=MilestoneStatus.DRAFT,
        amount=milestone.amount,
        data=data,
    )
    return milestone
