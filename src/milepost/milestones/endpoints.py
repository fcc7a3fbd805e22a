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
from milepost.kit.schemas import Limit, ListOf, error_responses
from milepost.milestones import service
from milepost.milestones.models import Milestone
from milepost.milestones.schemas import (
    CancelIn,
    CancellationRequestIn,
    ChangesIn,
    EventOut,
    MilestoneOut,
    MilestoneStatusName,
    MilestoneUpdate,
    ReleaseIn,
    SubmissionIn,
    SubmissionOut,
)

router = APIRouter(tags=["milestones"])
# What a lifecycle action on one milestone can answer: not signed in, not the party who may do it, no such
# milestone (or not a party), not in this state (or held by a concurrent request), a wrong field or a
# control character in the id (422).
ACTION = (401, 403, 404, 409, 422)
# The same with a JSON body: malformed (400) or too large (413).
ACTION_WITH_BODY = (*ACTION, 400, 413)
READ_ONE = (401, 404, 422)


def _out(ctx: Context, milestone: Milestone) -> MilestoneOut:
    return MilestoneOut.of(milestone, service.freelancer_ids(ctx, [milestone])[milestone.id])


def _milestone_action(action: Callable[[Context], Milestone]) -> Callable[[Context], MilestoneOut]:
    return lambda ctx: _out(ctx, action(ctx))


def _same(value: Any) -> Any:
    return value


@router.get(
    "/milestones",
    response_model=ListOf[MilestoneOut],
    summary="List my milestones",
    responses=error_responses(400, 401, 422),
)
def list_milestones(
    api: ApiDep,
    role: Annotated[
        str | None,
        Query(
            pattern="^(client|freelancer)$",
            description="`client`: the milestones I pay for (outgoing); `freelancer`: those I am paid "
            "for (incoming); omitted: both.",
        ),
    ] = None,
    status: Annotated[MilestoneStatusName | None, Query(description="Only this status.")] = None,
    project_id: str | None = None,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> Response:
    """The milestones the caller is a party to (client or freelancer), newest first, paginated, with
    filters by role, status and project. An unknown status is 400."""

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


@router.get(
    "/milestones/{milestone_id}",
    response_model=MilestoneOut,
    summary="Get a milestone",
    responses=error_responses(*READ_ONE),
)
def get_milestone(milestone_id: str, api: ApiDep) -> Response:
    """A milestone, with its terms, status and money (funded, released, refunded, escrow, fee, late fee,
    all in minor units). Its parties only; anyone else gets 404."""
    return api.read(_milestone_action(lambda ctx: service.get_milestone(ctx, milestone_id)), _same)


@router.patch(
    "/milestones/{milestone_id}",
    response_model=MilestoneOut,
    summary="Edit a draft milestone's terms",
    responses=error_responses(*ACTION_WITH_BODY, write=True),
)
async def update_terms(milestone_id: str, body: MilestoneUpdate, api: ApiDep) -> Response:
    """The client changes any term while the milestone is a draft (409 once funded: the terms are then
    frozen). Only the fields sent change; null clears an optional term. No money moves."""
    return await api.write(
        _milestone_action(lambda ctx: service.update_terms(ctx, milestone_id, **body.given())),
        _same,
    )


@router.post(
    "/milestones/{milestone_id}/fund",
    response_model=MilestoneOut,
    summary="Fund a milestone (into escrow)",
    responses=error_responses(*ACTION, 402, write=True),
)
async def fund(milestone_id: str, api: ApiDep) -> Response:
    """The client moves the milestone's amount, plus any late fee accrued, from their available balance
    into escrow: `draft` becomes `funded`. 402 if the available balance is short (deposit first)."""
    return await api.write(_milestone_action(lambda ctx: service.fund(ctx, milestone_id)), _same)


@router.post(
    "/milestones/{milestone_id}/submissions",
    status_code=201,
    response_model=SubmissionOut,
    summary="Deliver the work (submit)",
    responses=error_responses(*ACTION_WITH_BODY, write=True),
)
async def submit(milestone_id: str, body: SubmissionIn, api: ApiDep) -> Response:
    """The freelancer delivers a funded milestone (or one sent back for changes): a note and evidence
    (links, uploaded files, text). The milestone becomes `submitted` and the client's review period
    starts. No money moves."""
    return await api.write(
        lambda ctx: service.submit(
            ctx, milestone_id, note=body.note, evidence=body.evidence_items()
        ),
        SubmissionOut.of,
        status=201,
    )


@router.get(
    "/milestones/{milestone_id}/submissions",
    response_model=ListOf[SubmissionOut],
    summary="List a milestone's deliveries",
    responses=error_responses(*READ_ONE),
)
def list_submissions(milestone_id: str, api: ApiDep) -> Response:
    """Every delivery of the milestone, one per revision. Its parties only."""
    return api.read(
        lambda ctx: service.list_submissions(ctx, milestone_id),
        lambda rows: ListOf[SubmissionOut](
            data=[SubmissionOut.of(row) for row in rows], has_more=False
        ),
    )


@router.post(
    "/milestones/{milestone_id}/request-changes",
    response_model=MilestoneOut,
    summary="Ask for changes",
    responses=error_responses(*ACTION_WITH_BODY, write=True),
)
async def request_changes(milestone_id: str, body: ChangesIn, api: ApiDep) -> Response:
    """The client sends a submitted delivery back with a reason (and the criteria not met):
    `changes_requested`. The money stays in escrow."""
    return await api.write(
        _milestone_action(
            lambda ctx: service.request_changes(
                ctx, milestone_id, reason=body.reason, unmet_criteria=body.unmet_criteria
            )
        ),
        _same,
    )


@router.post(
    "/milestones/{milestone_id}/approve",
    response_model=MilestoneOut,
    summary="Approve a delivery (release the escrow)",
    responses=error_responses(*ACTION, write=True),
)
async def approve(milestone_id: str, api: ApiDep) -> Response:
    """The client accepts the delivery. The escrow is released to the freelancer at once, less the
    platform fee (`released`), or after the milestone's release delay (`approved` until then)."""
    return await api.write(_milestone_action(lambda ctx: service.approve(ctx, milestone_id)), _same)


@router.post(
    "/milestones/{milestone_id}/release",
    response_model=MilestoneOut,
    summary="Release escrow to the freelancer",
    responses=error_responses(*ACTION_WITH_BODY, 402, write=True),
)
async def release(milestone_id: str, api: ApiDep, body: ReleaseIn | None = None) -> Response:
    """The client releases money from escrow to the freelancer (less the platform fee): all that remains
    by default, or `amount` (minor units). A partial release leaves the status as it was; one that empties
    the escrow ends the milestone (`released`). More than the escrow holds is 402."""
    amount = body.amount if body is not None else None
    return await api.write(
        _milestone_action(lambda ctx: service.release(ctx, milestone_id, amount=amount)), _same
    )


@router.post(
    "/milestones/{milestone_id}/request-release",
    response_model=MilestoneOut,
    summary="Ask the client to release",
    responses=error_responses(*ACTION, write=True),
)
async def request_release(milestone_id: str, api: ApiDep) -> Response:
    """The freelancer asks the client to release a delivered (or approved) milestone; the client is
    notified. No money moves."""
    return await api.write(
        _milestone_action(lambda ctx: service.request_release(ctx, milestone_id)), _same
    )


@router.post(
    "/milestones/{milestone_id}/cancel",
    response_model=MilestoneOut,
    summary="Cancel a milestone",
    responses=error_responses(*ACTION_WITH_BODY, write=True),
)
async def cancel(milestone_id: str, api: ApiDep, body: CancelIn | None = None) -> Response:
    """Cancel: the client or staff may cancel a draft; once money is in escrow (funded, submitted,
    changes requested), the freelancer or staff may (403 `only_freelancer_can_cancel` for the client,
    who asks with a cancellation request instead). What remains in escrow goes back to the client's
    available balance: `cancelled`."""
    reason = body.reason if body is not None else None
    return await api.write(
        _milestone_action(lambda ctx: service.cancel(ctx, milestone_id, reason=reason)), _same
    )


@router.post(
    "/milestones/{milestone_id}/cancellation-request",
    response_model=MilestoneOut,
    summary="Ask the freelancer to cancel",
    responses=error_responses(*ACTION_WITH_BODY, write=True),
)
async def request_cancellation(
    milestone_id: str, body: CancellationRequestIn, api: ApiDep
) -> Response:
    """The client asks to cancel a funded milestone, with a reason; the milestone then shows
    `cancellation_requested: true` until the freelancer answers. No money moves yet."""
    return await api.write(
        _milestone_action(
            lambda ctx: service.request_cancellation(ctx, milestone_id, reason=body.reason)
        ),
        _same,
    )


@router.post(
    "/milestones/{milestone_id}/cancellation-request/accept",
    response_model=MilestoneOut,
    summary="Accept a cancellation request",
    responses=error_responses(*ACTION, write=True),
)
async def accept_cancellation(milestone_id: str, api: ApiDep) -> Response:
    """The freelancer agrees to cancel: the escrow goes back to the client's available balance
    (`cancelled`). 409 `no_request` when nothing was asked."""
    return await api.write(
        _milestone_action(lambda ctx: service.answer_cancellation(ctx, milestone_id, accept=True)),
        _same,
    )


@router.post(
    "/milestones/{milestone_id}/cancellation-request/decline",
    response_model=MilestoneOut,
    summary="Decline a cancellation request",
    responses=error_responses(*ACTION, write=True),
)
async def decline_cancellation(milestone_id: str, api: ApiDep) -> Response:
    """The freelancer refuses to cancel: the milestone goes on as it was. No money moves."""
    return await api.write(
        _milestone_action(lambda ctx: service.answer_cancellation(ctx, milestone_id, accept=False)),
        _same,
    )


@router.post(
    "/milestones/{milestone_id}/disputes",
    status_code=201,
    response_model=DisputeOut,
    summary="Open a dispute",
    responses=error_responses(*ACTION_WITH_BODY, write=True),
)
async def open_dispute(milestone_id: str, body: DisputeIn, api: ApiDep) -> Response:
    """The client or the freelancer disputes a milestone whose money is in escrow (funded, submitted,
    changes requested or approved), with a reason: it becomes `disputed` and the escrow is frozen until
    the parties settle (offers), the opener withdraws, or staff resolve it."""
    return await api.write(
        lambda ctx: disputes.open_dispute(ctx, milestone_id, reason=body.reason),
        DisputeOut.of,
        status=201,
    )


@router.get(
    "/milestones/{milestone_id}/events",
    response_model=ListOf[EventOut],
    summary="A milestone's history",
    responses=error_responses(*READ_ONE),
)
def list_events(milestone_id: str, api: ApiDep) -> Response:
    """Every event of the milestone, oldest first, each chained to the one before by its hash (the audit
    trail). Its parties only."""

    def events(ctx: Context) -> ListOf[EventOut]:
        milestone = service.get_milestone(ctx, milestone_id)  # 404 for a non-party
        rows = audit.list_events(ctx, milestone.id)
        return ListOf[EventOut](data=[EventOut.of(row) for row in rows], has_more=False)

    return api.read(events, _same)
