"""Projects, proposals, bonuses, and creating milestones on a project."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.http import ApiDep
from milepost.kit.schemas import ListOf
from milepost.milestones import service as milestones
from milepost.milestones.schemas import MilestoneOut, TermsIn
from milepost.projects import service
from milepost.projects.schemas import (
    BonusIn,
    BonusOut,
    ProjectIn,
    ProjectOut,
    ProposalIn,
    ProposalOut,
)

router = APIRouter(tags=["projects"])
Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("/projects", status_code=201, response_model=ProjectOut)
async def create_project(body: ProjectIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.create_project(ctx, **body.model_dump()), ProjectOut.of, status=201
    )


@router.get("/projects", response_model=ListOf[ProjectOut])
def list_projects(api: ApiDep, limit: Limit = 20, starting_after: str | None = None) -> Response:
    return api.read(
        lambda ctx: service.list_projects(ctx, limit=limit, starting_after=starting_after),
        lambda page: ListOf[ProjectOut](
            data=[ProjectOut.of(project) for project in page.data], has_more=page.has_more
        ),
    )


@router.get("/projects/{project_id}", response_model=ProjectOut)
def get_project(project_id: str, api: ApiDep) -> Response:
    return api.read(lambda ctx: service.get_project(ctx, project_id), ProjectOut.of)


@router.post("/projects/{project_id}/pause", response_model=ProjectOut)
async def pause_project(project_id: str, api: ApiDep) -> Response:
    """The freelancer pauses work while a payment on the project is overdue (409 ``nothing_overdue``
    otherwise; 403 ``only_freelancer_can_pause`` for anyone else)."""
    return await api.write(lambda ctx: service.pause_project(ctx, project_id), ProjectOut.of)


@router.post("/projects/{project_id}/resume", response_model=ProjectOut)
async def resume_project(project_id: str, api: ApiDep) -> Response:
    """The freelancer resumes work on a paused project (409 ``not_paused`` if it is not paused)."""
    return await api.write(lambda ctx: service.resume_project(ctx, project_id), ProjectOut.of)


@router.post("/projects/{project_id}/proposals", status_code=201, response_model=ProposalOut)
async def create_proposal(project_id: str, body: ProposalIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.create_proposal(
            ctx,
            project_id,
            amount=body.amount,
            cover_letter=body.cover_letter,
            milestones=[item.model_dump(exclude_none=True) for item in body.milestones],
        ),
        ProposalOut.of,
        status=201,
    )


@router.get("/projects/{project_id}/proposals", response_model=ListOf[ProposalOut])
def list_proposals(
    project_id: str, api: ApiDep, limit: Limit = 20, starting_after: str | None = None
) -> Response:
    return api.read(
        lambda ctx: service.list_proposals(
            ctx, project_id, limit=limit, starting_after=starting_after
        ),
        lambda page: ListOf[ProposalOut](
            data=[ProposalOut.of(proposal) for proposal in page.data], has_more=page.has_more
        ),
    )


@router.post("/proposals/{proposal_id}/accept", response_model=ProjectOut)
async def accept_proposal(proposal_id: str, api: ApiDep) -> Response:
    return await api.write(lambda ctx: service.accept_proposal(ctx, proposal_id), ProjectOut.of)


@router.post("/projects/{project_id}/milestones", status_code=201, response_model=MilestoneOut)
async def create_milestone(project_id: str, body: TermsIn, api: ApiDep) -> Response:
    def create(ctx: Context) -> MilestoneOut:
        milestone = milestones.create_milestone(ctx, project_id, **body.given())
        return MilestoneOut.of(milestone, milestones.freelancer_ids(ctx, [milestone])[milestone.id])

    return await api.write(create, lambda out: out, status=201)


@router.post("/projects/{project_id}/bonuses", status_code=201, response_model=BonusOut)
async def create_bonus(project_id: str, body: BonusIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.create_bonus(ctx, project_id, amount=body.amount, note=body.note),
        BonusOut.of,
        status=201,
    )
