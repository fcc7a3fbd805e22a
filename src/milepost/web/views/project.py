"""Read models for the project pages: which projects a viewer is shown, the figures and the proposals to
compare are decided here; the pages only lay them out. Which forms the viewer is offered is the services'
answer (``projects.service.available_actions``, ``available_proposal_actions``, the milestone state
machine's ``allowed_actions``), the same guards the actions run, so a page never offers what would be
refused. What the forms send is turned into service calls in ``web.forms.project``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from milepost.kit.context import Context
from milepost.kit.errors import MilepostError
from milepost.kit.guards import passes
from milepost.kit.pagination import keyset
from milepost.milestones.access import load_milestone
from milepost.milestones.models import Milestone
from milepost.milestones.state import Action, MilestoneStatus, Role, allowed_actions, authorize
from milepost.money import currency_symbol, exponent, fee_on
from milepost.projects import milestone_requests, offers
from milepost.projects import service as projects
from milepost.projects.models import (
    MilestoneRequest,
    Project,
    ProjectOffer,
    ProjectStatus,
    Proposal,
    ProposalStatus,
)
from milepost.projects.state import OfferAction, ProjectAction, ProposalAction, RequestAction
from milepost.users.models import User
from milepost.web.forms.project import TermsForm

S = MilestoneStatus
LIST_LIMIT = 100
MILESTONES_PAGE = 100  # rows of the project page's milestone table


# The projects list -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectsPage:
    as_client: list[Project]
    as_freelancer: list[Project]
    # Open projects of other clients: anyone may see these and propose (``projects.get_project``).
    open_for_proposals: list[Project]


def projects_page(ctx: Context) -> ProjectsPage:
    """The viewer's projects by role, newest first, and the open projects they could propose on."""
    actor = ctx.require_actor()

    def newest(*where: Any) -> list[Project]:
        query = select(Project).where(*where).order_by(Project.created_at.desc(), Project.id.desc())
        return list(ctx.session.scalars(query.limit(LIST_LIMIT)))

    return ProjectsPage(
        as_client=newest(Project.client_id == actor.id),
        as_freelancer=newest(Project.freelancer_id == actor.id),
        open_for_proposals=newest(
            Project.status == ProjectStatus.OPEN,
            Project.freelancer_id.is_(None),
            Project.client_id != actor.id,
        ),
    )


# One project -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposedMilestone:
    title: str
    amount: int
    due_date: date | None
    acceptance_criteria: list[str]
    net: int  # what the freelancer would receive of it, after the platform fee at today's rate


@dataclass(frozen=True)
class ProposalCard:
    proposal: Proposal
    freelancer: User
    milestones: list[ProposedMilestone]
    forms: frozenset[str]  # the forms (``Form``) this viewer is offered on this proposal now

    @property
    def net(self) -> int:
        """What the freelancer would receive in all (the fee is taken milestone by milestone)."""
        return sum(item.net for item in self.milestones)


class Form:
    """The names of the forms a project page may offer (and a refused one is re-shown by)."""

    OFFER = "offer"
    OFFER_ACCEPT = "offer-accept"
    OFFER_DECLINE = "offer-decline"
    OFFER_WITHDRAW = "offer-withdraw"
    REQUEST = "request"
    REQUEST_ACCEPT = "request-accept"
    REQUEST_REJECT = "request-reject"
    REQUEST_WITHDRAW = "request-withdraw"
    PROPOSE = "propose"
    ACCEPT = "accept"
    WITHDRAW = "withdraw"
    PAUSE = "pause"
    RESUME = "resume"
    MILESTONE = "milestone"
    BONUS = "bonus"


# Each form is the service action of the same name; the page offers it exactly when the action's guard
# passes (``projects.service.available_actions``).
FORM_OF = {
    ProjectAction.PROPOSE: Form.PROPOSE,
    ProjectAction.ACCEPT_PROPOSAL: Form.ACCEPT,
    ProjectAction.PAUSE: Form.PAUSE,
    ProjectAction.RESUME: Form.RESUME,
    ProjectAction.CREATE_MILESTONE: Form.MILESTONE,
    ProjectAction.ADD_BONUS: Form.BONUS,
}
PROPOSAL_FORM_OF = {ProposalAction.ACCEPT: Form.ACCEPT, ProposalAction.WITHDRAW: Form.WITHDRAW}
OFFER_FORM_OF = {
    OfferAction.ACCEPT: Form.OFFER_ACCEPT,
    OfferAction.DECLINE: Form.OFFER_DECLINE,
    OfferAction.WITHDRAW: Form.OFFER_WITHDRAW,
}
REQUEST_FORM_OF = {
    RequestAction.ACCEPT: Form.REQUEST_ACCEPT,
    RequestAction.REJECT: Form.REQUEST_REJECT,
    RequestAction.WITHDRAW: Form.REQUEST_WITHDRAW,
}


@dataclass(frozen=True)
class OfferCard:
    offer: ProjectOffer
    to: str  # the freelancer's name, or the address invited
    forms: frozenset[str]  # the forms (``Form``) this viewer is offered on it now


@dataclass(frozen=True)
class RequestCard:
    request: MilestoneRequest
    forms: frozenset[str]


@dataclass(frozen=True)
class ProjectPage:
    project: Project
    client: User
    freelancer: User | None
    role: Role | None  # None: not a party, looking at an open project to propose on it
    milestones: list[Milestone]  # a page of them, by position
    # The position the next page starts after (the last one shown), or None: this page is the last.
    next_after: int | None
    after: int | None  # the position this page starts after, or None: it is the first
    totals: projects.MilestoneTotals  # of every milestone of the project, not only this page's
    proposals: list[
        ProposalCard
    ]  # the client's (and staff's) to compare; anyone else sees their own
    offers: list[OfferCard]  # the client's and staff's; a freelancer sees the one made to them
    requests: list[RequestCard]  # milestone requests, for the parties and staff
    forms: frozenset[str]  # the forms (``Form``) this viewer is offered now
    editable_milestone_ids: frozenset[str]  # drafts whose terms the viewer may edit
    is_party: (
        bool  # parties and staff: they may open the milestone pages and see the billing contact
    )
    exponent: int  # the currency's decimal places, for typed amounts
    symbol: str  # the currency's symbol, which a typed amount may start with
    fee_bps: int  # the platform fee's rate today, for what a proposal would pay the freelancer


def project_page(
    ctx: Context, project_id: str, *, after: int | None = None, limit: int = MILESTONES_PAGE
) -> ProjectPage:
    """The project as its page shows it, with the milestones after position ``after`` (None: from the
    first), ``limit`` of them; NotFound for an outsider unless the project is open."""
    project = projects.get_project(ctx, project_id)
    role = projects.project_role(ctx.require_actor(), project)
    page = keyset(
        ctx.session,
        select(Milestone).where(Milestone.project_id == project.id),
        (Milestone.position,),  # unique within a project
        limit=limit,
        after=None if after is None else (after,),
    )
    rows: list[Milestone] = [milestone for (milestone,) in page.data]
    forms = frozenset(FORM_OF[action] for action in projects.available_actions(ctx, project))
    if passes(lambda: offers.check_offer(ctx, project)):
        forms |= {Form.OFFER}
    if passes(lambda: milestone_requests.check_request(ctx, project)):
        forms |= {Form.REQUEST}
    return ProjectPage(
        project=project,
        client=_user(ctx, project.client_id),
        freelancer=None if project.freelancer_id is None else _user(ctx, project.freelancer_id),
        role=role,
        milestones=rows,
        next_after=rows[-1].position if page.has_more else None,
        after=after,
        totals=projects.milestone_totals(ctx, project.id),
        proposals=_proposals(ctx, project),
        offers=_offers(ctx, project, role),
        requests=_requests(ctx, project, role),
        forms=forms,
        editable_milestone_ids=_editable(role, project, rows),
        is_party=role is not None,
        exponent=exponent(project.currency),
        symbol=currency_symbol(project.currency),
        fee_bps=ctx.settings.fee_bps,
    )


def _editable(role: Role | None, project: Project, rows: list[Milestone]) -> frozenset[str]:
    """The milestones whose terms the viewer may edit: what the state machine lets ``update_terms`` do."""
    if role is None:
        return frozenset()
    has_freelancer = project.freelancer_id is not None
    return frozenset(
        m.id
        for m in rows
        if Action.EDIT in allowed_actions(role, m.status, project_has_freelancer=has_freelancer)
    )


def _user(ctx: Context, user_id: str) -> User:
    user = ctx.session.get(User, user_id)
    assert user is not None  # foreign key
    return user


def _offers(ctx: Context, project: Project, role: Role | None) -> list[OfferCard]:
    """The client and staff see the project's offers; anyone else, the pending one made to them."""
    if role in (Role.CLIENT, Role.STAFF):
        shown = offers.list_offers(ctx, project.id)
    else:
        shown = [offer for offer in offers.offers_for_me(ctx) if offer.project_id == project.id]
    return [
        OfferCard(
            offer=offer,
            to=(
                _user(ctx, offer.freelancer_id).name
                if offer.freelancer_id is not None
                else offer.email or ""
            ),
            forms=frozenset(
                OFFER_FORM_OF[action]
                for action in offers.available_offer_actions(ctx, project, offer)
            ),
        )
        for offer in shown
    ]


def _requests(ctx: Context, project: Project, role: Role | None) -> list[RequestCard]:
    if role is None:
        return []
    return [
        RequestCard(
            request=request,
            forms=frozenset(
                REQUEST_FORM_OF[action]
                for action in milestone_requests.available_request_actions(ctx, project, request)
            ),
        )
        for request in milestone_requests.list_requests(ctx, project.id)
    ]


def _proposals(ctx: Context, project: Project) -> list[ProposalCard]:
    """Pending proposals first (the ones to compare), then decided ones; oldest first within each."""
    page = projects.list_proposals(ctx, project.id, limit=LIST_LIMIT)
    ordered = sorted(
        page.data, key=lambda p: (p.status is not ProposalStatus.PENDING, p.created_at, p.id)
    )
    return [
        ProposalCard(
            proposal=proposal,
            freelancer=_user(ctx, proposal.freelancer_id),
            milestones=[
                ProposedMilestone(
                    title=item["title"],
                    amount=int(item["amount"]),
                    due_date=date.fromisoformat(item["due_date"]) if item["due_date"] else None,
                    acceptance_criteria=list(item["acceptance_criteria"]),
                    net=int(item["amount"]) - fee_on(int(item["amount"]), ctx.settings.fee_bps),
                )
                for item in proposal.milestones
            ],
            forms=frozenset(
                PROPOSAL_FORM_OF[action]
                for action in projects.available_proposal_actions(ctx, project, proposal)
            ),
        )
        for proposal in ordered
    ]


# Editing a milestone's terms ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TermsPage:
    milestone: Milestone
    project: Project
    refusal: str | None  # why the viewer may not edit these terms now (the state machine's words)
    form: TermsForm  # the terms as they stand, as the form shows them


def terms_page(ctx: Context, milestone_id: str) -> TermsPage:
    """The milestone whose terms are edited; NotFound for anyone who is not a party."""
    access = load_milestone(ctx, milestone_id, lock=False)
    refusal = None
    try:
        authorize(
            Action.EDIT,
            access.role,
            access.milestone.status,
            project_has_freelancer=access.project.freelancer_id is not None,
        )
    except MilepostError as error:
        refusal = error.message
    return TermsPage(
        milestone=access.milestone,
        project=access.project,
        refusal=refusal,
        form=TermsForm.of(access.milestone),
    )
