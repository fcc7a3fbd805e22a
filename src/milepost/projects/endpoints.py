"""Projects, proposals, bonuses, and creating milestones on a project."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.http import ApiDep
from milepost.kit.schemas import Limit, ListOf, error_responses
from milepost.milestones import service as milestones
from milepost.milestones.schemas import MilestoneCreate, MilestoneOut
from milepost.projects import milestone_requests, offers, service
from milepost.projects.schemas import (
    BonusIn,
    BonusOut,
    MilestoneRequestOut,
    ProjectEventOut,
    ProjectIn,
    ProjectOfferIn,
    ProjectOfferOut,
    ProjectOut,
    ProposalIn,
    ProposalOut,
    RejectIn,
)

router = APIRouter(tags=["projects"])


@router.post(
    "/projects",
    status_code=201,
    response_model=ProjectOut,
    summary="Create a project",
    responses=error_responses(400, 401, 409, 413, 422, write=True),
)
async def create_project(body: ProjectIn, api: ApiDep) -> Response:
    """Post a project in one currency; the caller becomes its client. Naming a freelancer awards it at
    once (`awarded`); otherwise it is `open` and any signed-in user may propose. No money moves."""
    return await api.write(
        lambda ctx: service.create_project(ctx, **body.model_dump()), ProjectOut.of, status=201
    )


@router.get(
    "/projects",
    response_model=ListOf[ProjectOut],
    summary="List projects",
    responses=error_responses(400, 401, 422),
)
def list_projects(api: ApiDep, limit: Limit = 20, starting_after: str | None = None) -> Response:
    """The projects the caller is a party to, and open ones they may propose on, newest first."""
    return api.read(
        lambda ctx: service.list_projects(ctx, limit=limit, starting_after=starting_after),
        lambda page: ListOf[ProjectOut](
            data=[ProjectOut.of(project) for project in page.data], has_more=page.has_more
        ),
    )


@router.get(
    "/projects/{project_id}",
    response_model=ProjectOut,
    summary="Get a project",
    responses=error_responses(401, 404, 422),
)
def get_project(project_id: str, api: ApiDep) -> Response:
    """A project, for its parties; an open project for any signed-in user (so they can propose)."""
    return api.read(lambda ctx: service.get_project(ctx, project_id), ProjectOut.of)


@router.post(
    "/projects/{project_id}/pause",
    response_model=ProjectOut,
    summary="Pause work (payment overdue)",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def pause_project(project_id: str, api: ApiDep) -> Response:
    """The freelancer pauses work while a payment on the project is overdue (409 `nothing_overdue`
    otherwise; 403 `only_freelancer_can_pause` for anyone else). The client is told; no money moves."""
    return await api.write(lambda ctx: service.pause_project(ctx, project_id), ProjectOut.of)


@router.post(
    "/projects/{project_id}/resume",
    response_model=ProjectOut,
    summary="Resume work",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def resume_project(project_id: str, api: ApiDep) -> Response:
    """The freelancer resumes work on a paused project (409 `not_paused` if it is not paused; 403 for
    anyone else). No money moves."""
    return await api.write(lambda ctx: service.resume_project(ctx, project_id), ProjectOut.of)


@router.post(
    "/projects/{project_id}/proposals",
    status_code=201,
    response_model=ProposalOut,
    summary="Propose on an open project",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def create_proposal(project_id: str, body: ProposalIn, api: ApiDep) -> Response:
    """A signed-in user other than the client offers to do an open project: a price and 1 to 10
    milestones whose amounts add up to it. 409 once the project is awarded; 403 for its client. No
    money moves."""
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


@router.get(
    "/projects/{project_id}/proposals",
    response_model=ListOf[ProposalOut],
    summary="List a project's proposals",
    responses=error_responses(400, 401, 404, 422),
)
def list_proposals(
    project_id: str, api: ApiDep, limit: Limit = 20, starting_after: str | None = None
) -> Response:
    """The client (and staff) see every proposal on the project; anyone else only their own."""
    return api.read(
        lambda ctx: service.list_proposals(
            ctx, project_id, limit=limit, starting_after=starting_after
        ),
        lambda page: ListOf[ProposalOut](
            data=[ProposalOut.of(proposal) for proposal in page.data], has_more=page.has_more
        ),
    )


@router.post(
    "/proposals/{proposal_id}/accept",
    response_model=ProjectOut,
    summary="Accept a proposal",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def accept_proposal(proposal_id: str, api: ApiDep) -> Response:
    """The client accepts a pending proposal: the project is awarded to its author and the proposed
    milestones are created as drafts (fund them to start). The other proposals are declined. No money
    moves."""
    return await api.write(lambda ctx: service.accept_proposal(ctx, proposal_id), ProjectOut.of)


@router.post(
    "/proposals/{proposal_id}/withdraw",
    response_model=ProposalOut,
    summary="Withdraw a proposal",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def withdraw_proposal(proposal_id: str, api: ApiDep) -> Response:
    """The freelancer who made a pending proposal takes it back: it is `withdrawn` and can no longer
    be accepted. (A newer proposal from the same freelancer on the same project withdraws their pending
    one too.) 409 once it was accepted or declined; 403 for anyone else who can see it."""
    return await api.write(lambda ctx: service.withdraw_proposal(ctx, proposal_id), ProposalOut.of)


@router.post(
    "/projects/{project_id}/milestones",
    status_code=201,
    response_model=MilestoneOut,
    summary="Create a milestone",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def create_milestone(project_id: str, body: MilestoneCreate, api: ApiDep) -> Response:
    """The project's client adds a milestone, as a `draft`, in the project's currency: a title and an
    amount in minor units (1500000 = $15,000.00 in USD), and optional terms (due and fund-by dates,
    acceptance criteria, review period, release delay, late fee). No money moves until it is funded."""

    def create(ctx: Context) -> MilestoneOut:
        milestone = milestones.create_milestone(ctx, project_id, **body.given())
        return MilestoneOut.of(milestone, milestones.freelancer_ids(ctx, [milestone])[milestone.id])

    return await api.write(create, lambda out: out, status=201)


@router.post(
    "/projects/{project_id}/offers",
    status_code=201,
    response_model=ProjectOfferOut,
    summary="Offer a project to a freelancer",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def offer_project(project_id: str, body: ProjectOfferIn, api: ApiDep) -> Response:
    """The client offers their open project to one freelancer, by `freelancer_id` or by `email` (an
    invitation by e-mail; whoever has or makes an account with the address may answer). The freelancer
    accepts (the project is awarded) or declines; the client may withdraw it unanswered. One offer waits
    at a time: 409 `offer_pending`; 409 `already_awarded`."""
    return await api.write(
        lambda ctx: offers.offer_project(
            ctx,
            project_id,
            freelancer_id=body.freelancer_id,
            email=body.email,
            message=body.message,
        ),
        ProjectOfferOut.of,
        status=201,
    )


@router.get(
    "/projects/{project_id}/offers",
    response_model=ListOf[ProjectOfferOut],
    summary="List a project's offers",
    responses=error_responses(401, 404, 422),
)
def list_project_offers(project_id: str, api: ApiDep) -> Response:
    """The project's offers, oldest first: its client and staff."""
    return api.read(
        lambda ctx: offers.list_offers(ctx, project_id),
        lambda rows: ListOf[ProjectOfferOut](
            data=[ProjectOfferOut.of(row) for row in rows], has_more=False
        ),
    )


@router.get(
    "/projects/{project_id}/events",
    response_model=ListOf[ProjectEventOut],
    summary="A project's own history",
    responses=error_responses(401, 404, 422),
)
def list_project_events(project_id: str, api: ApiDep) -> Response:
    """The steps of the project that are no milestone's change (offers made and answered, milestones
    requested and answered, work paused and resumed), oldest first, each chained to the one before by its
    hash, like a milestone's events. Its parties and staff."""
    return api.read(
        lambda ctx: service.project_events(ctx, project_id),
        lambda rows: ListOf[ProjectEventOut](
            data=[ProjectEventOut.of(row) for row in rows], has_more=False
        ),
    )


@router.get(
    "/project-offers",
    response_model=ListOf[ProjectOfferOut],
    summary="List the offers waiting for my answer",
    responses=error_responses(401, 422),
)
def offers_for_me(api: ApiDep) -> Response:
    """The pending offers made to the caller's account or to their e-mail address."""
    return api.read(
        offers.offers_for_me,
        lambda rows: ListOf[ProjectOfferOut](
            data=[ProjectOfferOut.of(row) for row in rows], has_more=False
        ),
    )


@router.get(
    "/project-offers/{offer_id}",
    response_model=ProjectOfferOut,
    summary="Get a project offer",
    responses=error_responses(401, 404, 422),
)
def get_project_offer(offer_id: str, api: ApiDep) -> Response:
    """An offer: its client, the freelancer it is offered to, staff."""
    return api.read(lambda ctx: offers.get_offer(ctx, offer_id), ProjectOfferOut.of)


@router.post(
    "/project-offers/{offer_id}/accept",
    response_model=ProjectOut,
    summary="Accept a project offer",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def accept_project_offer(offer_id: str, api: ApiDep) -> Response:
    """The freelancer it is offered to accepts: the project is awarded to them (its pending proposals
    declined); the client is told. 409 once answered or withdrawn."""
    return await api.write(lambda ctx: offers.accept_offer(ctx, offer_id), ProjectOut.of)


@router.post(
    "/project-offers/{offer_id}/decline",
    response_model=ProjectOfferOut,
    summary="Decline a project offer",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def decline_project_offer(offer_id: str, api: ApiDep) -> Response:
    """The freelancer it is offered to declines; the client is told."""
    return await api.write(lambda ctx: offers.decline_offer(ctx, offer_id), ProjectOfferOut.of)


@router.post(
    "/project-offers/{offer_id}/withdraw",
    response_model=ProjectOfferOut,
    summary="Withdraw a project offer",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def withdraw_project_offer(offer_id: str, api: ApiDep) -> Response:
    """The client takes back an unanswered offer."""
    return await api.write(lambda ctx: offers.withdraw_offer(ctx, offer_id), ProjectOfferOut.of)


@router.post(
    "/projects/{project_id}/milestone-requests",
    status_code=201,
    response_model=MilestoneRequestOut,
    summary="Request a milestone",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def request_milestone(project_id: str, body: MilestoneCreate, api: ApiDep) -> Response:
    """The project's freelancer asks for a new milestone with these terms (as to create one: title and
    amount required, every refusal at once). The client is told, and accepts it (a draft milestone with
    the terms) or rejects it. 409 `not_awarded` on a project without its freelancer."""
    return await api.write(
        lambda ctx: milestone_requests.request_milestone(ctx, project_id, **body.given()),
        MilestoneRequestOut.of,
        status=201,
    )


@router.get(
    "/projects/{project_id}/milestone-requests",
    response_model=ListOf[MilestoneRequestOut],
    summary="List a project's milestone requests",
    responses=error_responses(401, 404, 422),
)
def list_milestone_requests(project_id: str, api: ApiDep) -> Response:
    """Every milestone request on the project, oldest first: its parties and staff."""
    return api.read(
        lambda ctx: milestone_requests.list_requests(ctx, project_id),
        lambda rows: ListOf[MilestoneRequestOut](
            data=[MilestoneRequestOut.of(row) for row in rows], has_more=False
        ),
    )


@router.post(
    "/milestone-requests/{request_id}/accept",
    response_model=MilestoneRequestOut,
    summary="Accept a milestone request",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def accept_milestone_request(request_id: str, api: ApiDep) -> Response:
    """The client accepts: a `draft` milestone with the requested terms (`milestone_id`), to fund when
    ready; its `created` event names the request. 409 once answered or withdrawn."""
    return await api.write(
        lambda ctx: milestone_requests.accept_request(ctx, request_id), MilestoneRequestOut.of
    )


@router.post(
    "/milestone-requests/{request_id}/reject",
    response_model=MilestoneRequestOut,
    summary="Reject a milestone request",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def reject_milestone_request(request_id: str, body: RejectIn, api: ApiDep) -> Response:
    """The client rejects the request, optionally saying why; the freelancer is told."""
    return await api.write(
        lambda ctx: milestone_requests.reject_request(ctx, request_id, reason=body.reason),
        MilestoneRequestOut.of,
    )


@router.post(
    "/milestone-requests/{request_id}/withdraw",
    response_model=MilestoneRequestOut,
    summary="Withdraw a milestone request",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def withdraw_milestone_request(request_id: str, api: ApiDep) -> Response:
    """The freelancer who asked takes back a pending request."""
    return await api.write(
        lambda ctx: milestone_requests.withdraw_request(ctx, request_id), MilestoneRequestOut.of
    )


@router.post(
    "/projects/{project_id}/bonuses",
    status_code=201,
    response_model=BonusOut,
    summary="Pay a bonus",
    responses=error_responses(400, 401, 402, 403, 404, 409, 413, 422, write=True),
)
async def create_bonus(project_id: str, body: BonusIn, api: ApiDep) -> Response:
    """The client pays the project's freelancer a bonus straight from their available balance (402 if
    short); the platform fee applies. 409 `no_freelancer` before the project is awarded."""
    return await api.write(
        lambda ctx: service.create_bonus(ctx, project_id, amount=body.amount, note=body.note),
        BonusOut.of,
        status=201,
    )
