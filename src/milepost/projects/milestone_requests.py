"""Milestone requests (as Freelancer.com's): the freelancer of an awarded project asks for a new milestone
with its terms (title, amount, criteria, due date, ...); the client accepts it, which makes it a draft
milestone with exactly those terms through the same factory as creating one, or rejects it with a
reason; the freelancer may withdraw it while it is pending. Each step tells the other side (a notice).
The accepted milestone's ``created`` event names the request, so the audit chain records where its terms
came from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from milepost.audit.project_trail import record_project_event
from milepost.events import Notice, ProjectEventAction, notify
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied
from milepost.kit.guards import available
from milepost.kit.ids import new_id
from milepost.kit.lookup import one_or_404
from milepost.milestones.factory import new_milestone
from milepost.milestones.state import Role
from milepost.milestones.terms import validate_terms
from milepost.projects.models import MilestoneRequest, Project
from milepost.projects.service import check_create_milestone, get_project, project_role
from milepost.projects.state import (
    MILESTONE_REQUESTS,
    MilestoneRequestStatus,
    ProjectStatus,
    RequestAction,
)

R = MilestoneRequestStatus


def request_milestone(ctx: Context, project_id: str, **terms: Any) -> MilestoneRequest:
    """The project's freelancer asks for a new milestone with ``terms`` (checked as a creation checks
    them: every refusal at once); the client is told."""
    project = get_project(ctx, project_id, lock=True)
    check_request(ctx, project)
    validate_terms(terms, creating=True)
    request = MilestoneRequest(
        id=new_id("mreq"),
        project_id=project.id,
        freelancer_id=ctx.require_actor().id,
        terms=terms,
        status=R.PENDING,
        created_at=ctx.now,
    )
    ctx.session.add(request)
    ctx.session.flush()
    record_project_event(
        ctx,
        project,
        ProjectEventAction.MILESTONE_REQUESTED,
        role=Role.FREELANCER,
        data={"request_id": request.id, "terms": request.terms},
    )
    _tell(ctx, project, project.client_id, Notice.MILESTONE_REQUESTED, request)
    return request


def check_request(ctx: Context, project: Project) -> None:
    """The freelancer of an awarded project may ask for a milestone."""
    if project_role(ctx.actor, project) is not Role.FREELANCER:
        raise PermissionDenied(
            "Only the project's freelancer can request a milestone.",
            code="only_freelancer_can_request",
        )
    if project.status is not ProjectStatus.AWARDED:
        raise InvalidState("Milestones are requested on an awarded project.", code="not_awarded")


def check_reject(ctx: Context, project: Project, request: MilestoneRequest) -> None:
    if project_role(ctx.actor, project) is not Role.CLIENT:
        raise PermissionDenied(
            "Only the project's client can answer a milestone request.",
            code="only_client_can_answer",
        )
    _pending(request)


def check_accept_request(ctx: Context, project: Project, request: MilestoneRequest) -> Role:
    role = check_create_milestone(ctx, project)
    _pending(request)
    return role


def check_withdraw_request(ctx: Context, request: MilestoneRequest) -> None:
    if ctx.actor_id != request.freelancer_id:
        raise PermissionDenied(
            "Only the freelancer who asked can withdraw a milestone request.",
            code="only_requester_can_withdraw",
        )
    _pending(request)


def available_request_actions(
    ctx: Context, project: Project, request: MilestoneRequest
) -> frozenset[RequestAction]:
    """What the actor may do to ``request`` now: the guards the actions below run."""
    return available(
        {
            RequestAction.ACCEPT: lambda: check_accept_request(ctx, project, request),
            RequestAction.REJECT: lambda: check_reject(ctx, project, request),
            RequestAction.WITHDRAW: lambda: check_withdraw_request(ctx, request),
        }
    )


def list_requests(ctx: Context, project_id: str) -> list[MilestoneRequest]:
    """The project's milestone requests, oldest first: its parties and staff."""
    project = get_project(ctx, project_id)
    if project_role(ctx.actor, project) is None:
        raise NotFound("No such project.", param="id")
    return list(
        ctx.session.scalars(
            select(MilestoneRequest)
            .where(MilestoneRequest.project_id == project.id)
            .order_by(MilestoneRequest.id)
        )
    )


def accept_request(ctx: Context, request_id: str) -> MilestoneRequest:
    """The client accepts: a draft milestone with the requested terms (checked again, as of now)."""
    project, request = _load(ctx, request_id)
    role = check_accept_request(ctx, project, request)
    milestone = new_milestone(
        ctx,
        project,
        dict(request.terms),
        role=role,
        data={"milestone_request_id": request.id, "requested_by": request.freelancer_id},
    )
    MILESTONE_REQUESTS.move(request, R.ACCEPTED)
    request.milestone_id = milestone.id
    request.decided_at = ctx.now
    record_project_event(
        ctx,
        project,
        ProjectEventAction.MILESTONE_REQUEST_ACCEPTED,
        role=role,
        data={"request_id": request.id, "milestone_id": milestone.id},
    )
    _tell(ctx, project, request.freelancer_id, Notice.MILESTONE_REQUEST_ACCEPTED, request)
    return request


def reject_request(ctx: Context, request_id: str, *, reason: object = None) -> MilestoneRequest:
    """The client rejects, saying why if they wish; the freelancer is told."""
    project, request = _load(ctx, request_id)
    check_reject(ctx, project, request)
    MILESTONE_REQUESTS.move(request, R.REJECTED)
    request.reason = validate.text(reason, "reason", max_length=20_000, required=False) or None
    request.decided_at = ctx.now
    record_project_event(
        ctx,
        project,
        ProjectEventAction.MILESTONE_REQUEST_REJECTED,
        role=Role.CLIENT,
        data={"request_id": request.id, "reason": request.reason},
    )
    _tell(ctx, project, request.freelancer_id, Notice.MILESTONE_REQUEST_REJECTED, request)
    return request


def withdraw_request(ctx: Context, request_id: str) -> MilestoneRequest:
    """The freelancer takes back a pending request."""
    project, request = _load(ctx, request_id)
    check_withdraw_request(ctx, request)
    MILESTONE_REQUESTS.move(request, R.WITHDRAWN)
    request.decided_at = ctx.now
    record_project_event(
        ctx,
        project,
        ProjectEventAction.MILESTONE_REQUEST_WITHDRAWN,
        role=Role.FREELANCER,
        data={"request_id": request.id},
    )
    return request


def _load(ctx: Context, request_id: str) -> tuple[Project, MilestoneRequest]:
    """The request and its project, both locked (the project first, as creating a milestone does);
    NotFound for anyone who is not a party."""
    project_id = ctx.session.scalar(
        select(MilestoneRequest.project_id).where(MilestoneRequest.id == request_id)
    )
    if project_id is None:
        raise NotFound("No such milestone request.", param="id")
    try:
        project = get_project(ctx, project_id, lock=True)
    except NotFound:
        raise NotFound("No such milestone request.", param="id") from None
    if project_role(ctx.actor, project) is None:
        raise NotFound("No such milestone request.", param="id")
    request = one_or_404(
        ctx.session,
        select(MilestoneRequest).where(MilestoneRequest.id == request_id),
        lock=True,
        missing="No such milestone request.",
    )
    return project, request


def _pending(request: MilestoneRequest) -> None:
    if request.status is not R.PENDING:
        raise InvalidState(f"This milestone request is {request.status}.", code="not_pending")


def _tell(
    ctx: Context, project: Project, user_id: str | None, kind: Notice, request: MilestoneRequest
) -> None:
    notify(
        ctx,
        kind,
        user_ids=[user_id],
        project_id=project.id,
        data={
            "request_id": request.id,
            "title": request.terms.get("title"),
            "amount": request.terms.get("amount"),
            "currency": project.currency,
            "reason": request.reason,
        },
        key=f"{kind}:{request.id}",
    )
