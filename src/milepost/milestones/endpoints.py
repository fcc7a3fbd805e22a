"""Milestones: reading, editing terms, and every lifecycle action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.audit import service as audit
from milepost.disputes import service as disputes
from milepost.disputes.schemas import DisputeIn, DisputeOut
from milepost.kit.context import Context
from milepost.kit.http import ApiDep
from milepost.kit.schemas import ListOf
from milepost.milestones import service
from milepost.milestones.models import Milestone
from milepost.milestones.schemas import (
    ChangesIn,
    EventOut,
    MilestoneOut,
    ReasonIn,
    ReleaseIn,
    RequiredReasonIn,
    SubmissionIn,
    SubmissionOut,
    TermsIn,
)

router = APIRouter(tags=["milestones"])
Limit = Annotated[int, Query(ge=1, le=100)]


def _out(ctx: Context, milestone: Milestone) -> MilestoneOut:
    return MilestoneOut.of(milestone, service.freelancer_ids(ctx, [milestone])[milestone.id])


def _milestone_action(action: Callable[[Context], Milestone]) -> Callable[[Context], MilestoneOut]:
    return lambda ctx: _out(ctx, action(ctx))


def _same(value: Any) -> Any:
    return value


@router.get("/milestones", response_model=ListOf[MilestoneOut])
def list_milestones(
    api: ApiDep,
    role: Annotated[str | None, Query(pattern="^(client|freelancer)$")] = None,
    status: str | None = None,
    project_id: str | None = None,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> Response:
    def page(ctx: Context) -> ListOf[MilestoneOut]:
        result = service.list_milestones(
            ctx,
            role=role,
            status=status,
            project_id=project_id,
            limit=limit,
            starting_after=starting_after,
        )
        freelancers = service.freelancer_ids(ctx, result.data)
        return ListOf[MilestoneOut](
            data=[MilestoneOut.of(m, freelancers[m.id]) for m in result.data],
            has_more=result.has_more,
        )

    return api.read(page, _same)


@router.get("/milestones/{milestone_id}", response_model=MilestoneOut)
def get_milestone(milestone_id: str, api: ApiDep) -> Response:
    return api.read(_milestone_action(lambda ctx: service.get_milestone(ctx, milestone_id)), _same)


@router.patch("/milestones/{milestone_id}", response_model=MilestoneOut)
async def update_terms(milestone_id: str, body: TermsIn, api: ApiDep) -> Response:
    return await api.write(
        _milestone_action(lambda ctx: service.update_terms(ctx, milestone_id, **body.given())),
        _same,
    )


@router.post("/milestones/{milestone_id}/fund", response_model=MilestoneOut)
async def fund(milestone_id: str, api: ApiDep) -> Response:
    return await api.write(_milestone_action(lambda ctx: service.fund(ctx, milestone_id)), _same)


@router.post(
    "/milestones/{milestone_id}/submissions", status_code=201, response_model=SubmissionOut
)
async def submit(milestone_id: str, body: SubmissionIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.submit(
            ctx, milestone_id, note=body.note, evidence=body.evidence_items()
        ),
        SubmissionOut.of,
        status=201,
    )


@router.get("/milestones/{milestone_id}/submissions", response_model=ListOf[SubmissionOut])
def list_submissions(milestone_id: str, api: ApiDep) -> Response:
    return api.read(
        lambda ctx: service.list_submissions(ctx, milestone_id),
        lambda rows: ListOf[SubmissionOut](
            data=[SubmissionOut.of(row) for row in rows], has_more=False
        ),
    )


@router.post("/milestones/{milestone_id}/request-changes", response_model=MilestoneOut)
async def request_changes(milestone_id: str, body: ChangesIn, api: ApiDep) -> Response:
    return await api.write(
        _milestone_action(
            lambda ctx: service.request_changes(
                ctx, milestone_id, reason=body.reason, unmet_criteria=body.unmet_criteria
            )
        ),
        _same,
    )


@router.post("/milestones/{milestone_id}/approve", response_model=MilestoneOut)
async def approve(milestone_id: str, api: ApiDep) -> Response:
    return await api.write(_milestone_action(lambda ctx: service.approve(ctx, milestone_id)), _same)


@router.post("/milestones/{milestone_id}/release", response_model=MilestoneOut)
async def release(milestone_id: str, api: ApiDep, body: ReleaseIn | None = None) -> Response:
    amount = body.amount if body is not None else None
    return await api.write(
        _milestone_action(lambda ctx: service.release(ctx, milestone_id, amount=amount)), _same
    )


@router.post("/milestones/{milestone_id}/request-release", response_model=MilestoneOut)
async def request_release(milestone_id: str, api: ApiDep) -> Response:
    return await api.write(
        _milestone_action(lambda ctx: service.request_release(ctx, milestone_id)), _same
    )


@router.post("/milestones/{milestone_id}/cancel", response_model=MilestoneOut)
async def cancel(milestone_id: str, api: ApiDep, body: ReasonIn | None = None) -> Response:
    reason = body.reason if body is not None else None
    return await api.write(
        _milestone_action(lambda ctx: service.cancel(ctx, milestone_id, reason=reason)), _same
    )


@router.post("/milestones/{milestone_id}/cancellation-request", response_model=MilestoneOut)
async def request_cancellation(milestone_id: str, body: RequiredReasonIn, api: ApiDep) -> Response:
    return await api.write(
        _milestone_action(
            lambda ctx: service.request_cancellation(ctx, milestone_id, reason=body.reason)
        ),
        _same,
    )


@router.post("/milestones/{milestone_id}/cancellation-request/accept", response_model=MilestoneOut)
async def accept_cancellation(milestone_id: str, api: ApiDep) -> Response:
    return await api.write(
        _milestone_action(lambda ctx: service.answer_cancellation(ctx, milestone_id, accept=True)),
        _same,
    )


@router.post("/milestones/{milestone_id}/cancellation-request/decline", response_model=MilestoneOut)
async def decline_cancellation(milestone_id: str, api: ApiDep) -> Response:
    return await api.write(
        _milestone_action(lambda ctx: service.answer_cancellation(ctx, milestone_id, accept=False)),
        _same,
    )


@router.post("/milestones/{milestone_id}/disputes", status_code=201, response_model=DisputeOut)
async def open_dispute(milestone_id: str, body: DisputeIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: disputes.open_dispute(ctx, milestone_id, reason=body.reason),
        DisputeOut.of,
        status=201,
    )


@router.get("/milestones/{milestone_id}/events", response_model=ListOf[EventOut])
def list_events(milestone_id: str, api: ApiDep) -> Response:
    def events(ctx: Context) -> ListOf[EventOut]:
        milestone = service.get_milestone(ctx, milestone_id)  # 404 for a non-party
        rows = audit.list_events(ctx, milestone.id)
        return ListOf[EventOut](data=[EventOut.of(row) for row in rows], has_more=False)

    return api.read(events, _same)
