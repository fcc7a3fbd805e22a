"""Projects, proposals and bonuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import aliased

from milepost.audit.models import ProjectEvent
from milepost.audit.project_trail import list_project_events, record_project_event
from milepost.events import Notice, ProjectEventAction, notify
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from milepost.kit.guards import available
from milepost.kit.ids import new_id
from milepost.kit.lookup import keep, one_or_404
from milepost.kit.pagination import Page, paginate
from milepost.ledger.models import EntryKind
from milepost.ledger.service import fee_account, post, user_account
from milepost.milestones.factory import new_milestone
from milepost.milestones.models import Milestone, funding_overdue
from milepost.milestones.state import Role
from milepost.money import fee_on, format_money, validate_amount, validate_currency
from milepost.projects.models import Bonus, Project, ProjectTotals, Proposal
from milepost.projects.state import (
    PROJECTS,
    PROPOSALS,
    ProjectAction,
    ProjectStatus,
    ProposalAction,
    ProposalStatus,
)
from milepost.users.models import User

MAX_PROPOSAL_MILESTONES = 10


def create_project(
    ctx: Context,
    *,
    title: object,
    currency: object,
    description: object = None,
    freelancer_id: object = None,
    billing_contact_email: object = None,
) -> Project:
    """Post a project; the poster is its client. Naming a freelancer awards it at once."""
    client = ctx.require_actor()
    freelancer: User | None = None
    if freelancer_id is not None:
        freelancer = (
            ctx.session.get(User, freelancer_id) if isinstance(freelancer_id, str) else None
        )
        if freelancer is None:
            raise ValidationFailed(
                "No such freelancer.", code="unknown_user", param="freelancer_id"
            )
        if freelancer.id == client.id:
            raise ValidationFailed(
                "A client cannot be the freelancer of their own project.", param="freelancer_id"
            )
    problems = validate.Problems()
    valid_title = problems.check(lambda: validate.text(title, "title", max_length=200))
    valid_description = problems.check(
        lambda: validate.text(description, "description", max_length=20_000, required=False)
    )
    valid_currency = problems.check(lambda: validate_currency(currency))
    valid_email = problems.check(
        lambda: validate.optional_email(billing_contact_email, "billing_contact_email")
    )
    problems.done()
    project = Project(
        id=new_id("prj"),
        client_id=client.id,
        freelancer_id=freelancer.id if freelancer else None,
        title=valid_title,
        description=valid_description,
        currency=valid_currency,
        billing_contact_email=valid_email,
        status=ProjectStatus.AWARDED if freelancer else ProjectStatus.OPEN,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    ctx.session.add(project)
    ctx.session.flush()
    ctx.session.add(
        ProjectTotals(
            project_id=project.id, planned_amount=0, in_escrow_amount=0, released_amount=0
        )
    )
    return project


@dataclass(frozen=True)
class MilestoneTotals:
    """Over all of a project's milestones."""

    planned: int  # the amounts of every milestone not cancelled
    in_escrow: int
    released: int  # gross, fee included


def milestone_totals(ctx: Context, project_id: str) -> MilestoneTotals:
    """The project's totals as its ``ProjectTotals`` row keeps them: one row read, however many
    milestones the project has."""
    totals = ctx.session.get(ProjectTotals, project_id)
    if totals is None:
        raise NotFound(f"Project {project_id} not found.")
    return MilestoneTotals(
        planned=totals.planned_amount,
        in_escrow=totals.in_escrow_amount,
        released=totals.released_amount,
    )


def project_role(actor: User | None, project: Project) -> Role | None:
    """The actor's role on the project, or None if they are not a party (staff see everything)."""
    if actor is None:
        return Role.SYSTEM
    if actor.id == project.client_id:
        return Role.CLIENT
    if project.freelancer_id is not None and actor.id == project.freelancer_id:
        return Role.FREELANCER
    if actor.is_staff:
        return Role.STAFF
    return None


# A project's two parties, as aliases of the users table made once. SQLAlchemy adapts an alias's columns
# the first time a query uses them; for an alias made per query that was about 1 ms of CPU every time.
CLIENT = aliased(User, name="client")
FREELANCER = aliased(User, name="freelancer")

# Built once, its id bound: building it per call (its joins, the lock, its cache key) cost more CPU than
# executing it.
_LOCKED_WITH_PARTIES = (
    select(Project, CLIENT, FREELANCER)
    .join(CLIENT, CLIENT.id == Project.client_id)
    .outerjoin(FREELANCER, FREELANCER.id == Project.freelancer_id)
    .where(Project.id == bindparam("project_id"))
    .with_for_update(of=Project.__table__)
    .execution_options(populate_existing=True)
)


def get_project(ctx: Context, project_id: str, *, lock: bool = False) -> Project:
    """The project if the actor may see it: a party, staff, or anyone while it is open for proposals.

    With ``lock`` the project row is locked, and both parties (whom the events of a change notify) are
    read in the same statement and kept for the unit of work."""
    if lock:
        row = ctx.session.execute(_LOCKED_WITH_PARTIES, {"project_id": project_id}).one_or_none()
        if row is None:
            raise NotFound("No such project.", param="id")
        project, *parties = row
        keep(ctx.session, project, *parties)
    else:
        project = one_or_404(
            ctx.session, select(Project).where(Project.id == project_id), missing="No such project."
        )
    if project_role(ctx.actor, project) is None and project.status is not ProjectStatus.OPEN:
        raise NotFound("No such project.", param="id")
    return project


def project_events(ctx: Context, project_id: str) -> list[ProjectEvent]:
    """The project's own audit trail, oldest first: its parties and staff."""
    project = get_project(ctx, project_id)
    if project_role(ctx.actor, project) is None:
        raise NotFound("No such project.", param="id")
    return list_project_events(ctx.session, project.id)


def list_projects(
    ctx: Context, *, limit: int = 20, starting_after: str | None = None
) -> Page[Project]:
    """Projects the actor is a party to (staff: all)."""
    actor = ctx.require_actor()
    query = select(Project)
    if not actor.is_staff:
        query = query.where(or_(Project.client_id == actor.id, Project.freelancer_id == actor.id))
    return paginate(ctx.session, query, Project.id, limit=limit, starting_after=starting_after)


def _validate_proposed_milestones(
    value: Any, amount: int | None, currency: str
) -> list[dict[str, Any]]:
    """The proposal's milestones, each field checked (all refusals at once); then, when the proposal's
    ``amount`` is valid, that they add up to it."""
    if not isinstance(value, list) or not value:
        raise ValidationFailed(
            "A proposal needs at least one milestone.", code="missing", param="milestones"
        )
    if len(value) > MAX_PROPOSAL_MILESTONES:
        raise ValidationFailed(
            f"A proposal may have at most {MAX_PROPOSAL_MILESTONES} milestones; it has {len(value)}.",
            code="too_many_milestones",
            param="milestones",
        )
    milestones: list[dict[str, Any]] = []
    problems = validate.Problems()
    for index, item in enumerate(value):
        param = f"milestones[{index}]"
        if not isinstance(item, dict):
            raise ValidationFailed("Each milestone must be an object.", param=param)
        validate.only_known_fields(
            {f"{param}.{key}": v for key, v in item.items()},
            {f"{param}.{key}" for key in ("title", "amount", "due_date", "acceptance_criteria")},
        )
        due_date = problems.check(validate.optional_date, item.get("due_date"), f"{param}.due_date")
        milestones.append(
            {
                "title": problems.check(
                    validate.text, item.get("title"), f"{param}.title", max_length=200
                ),
                "amount": problems.check(
                    validate_amount, item.get("amount"), param=f"{param}.amount"
                ),
                "due_date": due_date.isoformat() if due_date else None,
                "acceptance_criteria": problems.check(
                    validate.text_list,
                    item.get("acceptance_criteria"),
                    f"{param}.acceptance_criteria",
                ),
            }
        )
    problems.done()
    total = sum(int(milestone["amount"]) for milestone in milestones)
    if amount is not None and total != amount:
        raise ValidationFailed(
            f"The milestones add up to {format_money(total, currency)}, not to the proposal's "
            f"amount of {format_money(amount, currency)}.",
            code="milestones_do_not_add_up",
            param="milestones",
        )
    return milestones


def check_propose(ctx: Context, project: Project) -> None:
    """Anyone but the client may propose while the project is open."""
    if ctx.require_actor().id == project.client_id:
        raise PermissionDenied(
            "A client cannot propose on their own project.", code="client_cannot_propose"
        )
    if project.status is not ProjectStatus.OPEN:
        raise InvalidState("This project is no longer open for proposals.")


def create_proposal(
    ctx: Context,
    project_id: str,
    *,
    amount: object,
    milestones: object,
    cover_letter: object = None,
) -> Proposal:
    freelancer = ctx.require_actor()
    project = get_project(ctx, project_id)
    check_propose(ctx, project)
    problems = validate.Problems()
    total = problems.check(lambda: validate_amount(amount))
    letter = problems.check(
        lambda: validate.text(cover_letter, "cover_letter", max_length=20_000, required=False)
    )
    # The milestones are checked even when the total is not, so that every refusal is told at once;
    # whether they add up to the total only once it is valid.
    proposed = problems.check(
        lambda: _validate_proposed_milestones(milestones, total, project.currency)
    )
    problems.done()
    # The newest proposal of a freelancer replaces their pending one: the client compares one each.
    for older in ctx.session.scalars(
        select(Proposal)
        .where(
            Proposal.project_id == project.id,
            Proposal.freelancer_id == freelancer.id,
            Proposal.status == ProposalStatus.PENDING,
        )
        .with_for_update()
    ):
        PROPOSALS.move(older, ProposalStatus.WITHDRAWN)
        older.decided_at = ctx.now
    proposal = Proposal(
        id=new_id("prp"),
        project_id=project.id,
        freelancer_id=freelancer.id,
        amount=total,
        currency=project.currency,
        cover_letter=letter,
        milestones=proposed,
        status=ProposalStatus.PENDING,
        created_at=ctx.now,
    )
    ctx.session.add(proposal)
    ctx.session.flush()
    return proposal


def list_proposals(
    ctx: Context, project_id: str, *, limit: int = 20, starting_after: str | None = None
) -> Page[Proposal]:
    """The client (and staff) see every proposal; anyone else sees only their own."""
    project = get_project(ctx, project_id)
    actor = ctx.require_actor()
    query = select(Proposal).where(Proposal.project_id == project.id)
    if project_role(actor, project) not in (Role.CLIENT, Role.STAFF):
        query = query.where(Proposal.freelancer_id == actor.id)
    return paginate(ctx.session, query, Proposal.id, limit=limit, starting_after=starting_after)


def check_accept(ctx: Context, project: Project, proposal: Proposal | None = None) -> None:
    """Only the client accepts, while the project is open, a proposal that is still pending. Without a
    ``proposal``: whether the client may accept proposals on the project at all. Someone who is neither
    the client, the proposal's author nor staff is told the proposal does not exist."""
    actor = ctx.require_actor()
    if actor.id != project.client_id:
        if (proposal is None or actor.id != proposal.freelancer_id) and not actor.is_staff:
            raise NotFound("No such proposal.", param="id")
        raise PermissionDenied(
            "Only the client can accept a proposal.", code="only_client_can_accept"
        )
    if project.status is not ProjectStatus.OPEN:
        raise InvalidState("This project has been awarded already.")
    if proposal is not None and proposal.status is not ProposalStatus.PENDING:
        raise InvalidState(f"This proposal is {proposal.status}.")


def award(ctx: Context, project: Project, freelancer_id: str) -> None:
    """The locked open project gets its freelancer (an accepted proposal or offer); every proposal still
    pending on it is declined."""
    project.freelancer_id = freelancer_id
    PROJECTS.move(project, ProjectStatus.AWARDED)
    project.updated_at = ctx.now
    for other in ctx.session.scalars(
        select(Proposal).where(
            Proposal.project_id == project.id, Proposal.status == ProposalStatus.PENDING
        )
    ):
        PROPOSALS.move(other, ProposalStatus.DECLINED)
        other.decided_at = ctx.now


def accept_proposal(ctx: Context, proposal_id: str) -> Project:
    """Award the project to the proposal's freelancer, create its milestones, decline the others."""
    ctx.require_actor()
    proposal = ctx.session.get(Proposal, proposal_id)
    if proposal is None:
        raise NotFound("No such proposal.", param="id")
    project = get_project(ctx, proposal.project_id, lock=True)
    ctx.session.refresh(proposal, with_for_update=True)
    check_accept(ctx, project, proposal)

    PROPOSALS.move(proposal, ProposalStatus.ACCEPTED)
    proposal.decided_at = ctx.now
    award(ctx, project, proposal.freelancer_id)

    for terms in proposal.milestones:
        new_milestone(
            ctx,
            project,
            {
                "title": terms["title"],
                "amount": terms["amount"],
                "due_date": terms["due_date"],
                "acceptance_criteria": terms["acceptance_criteria"],
            },
            role=Role.CLIENT,
            data={"proposal_id": proposal.id},
        )
    ctx.session.flush()
    return project


def check_bonus(ctx: Context, project: Project) -> str:
    """The client pays a bonus once the project has a freelancer; returns the freelancer's id."""
    role = project_role(ctx.actor, project)
    if role is None:
        raise NotFound("No such project.", param="id")
    if role is not Role.CLIENT:
        raise PermissionDenied("Only the client can pay a bonus.", code="only_client_can_pay_bonus")
    if project.freelancer_id is None:
        raise InvalidState("This project has no freelancer to pay yet.", code="no_freelancer")
    return project.freelancer_id


def create_bonus(ctx: Context, project_id: str, *, amount: object, note: object = None) -> Bonus:
    """The client pays the freelancer from the wallet: no escrow, no review; the platform fee applies."""
    project = get_project(ctx, project_id)
    freelancer_id = check_bonus(ctx, project)
    value = validate_amount(amount)
    fee = fee_on(value, ctx.settings.fee_bps)
    entry = post(
        ctx,
        EntryKind.BONUS,
        [
            (user_account(project.client_id, project.currency), -value),
            (user_account(freelancer_id, project.currency), value - fee),
            (fee_account(project.currency), fee),
        ],
        memo=f"bonus on project {project.id}",
    )
    bonus = Bonus(
        id=new_id("bon"),
        project_id=project.id,
        client_id=project.client_id,
        freelancer_id=freelancer_id,
        amount=value,
        fee_amount=fee,
        currency=project.currency,
        note=validate.text(note, "note", max_length=2000, required=False),
        entry_id=entry.id,
        created_at=ctx.now,
    )
    ctx.session.add(bonus)
    ctx.session.flush()
    return bonus


# Pausing work while a payment is overdue -----------------------------------------------------------------


def _check_freelancer(ctx: Context, project: Project, what: str) -> None:
    if project_role(ctx.actor, project) is not Role.FREELANCER:
        raise PermissionDenied(
            f"Only the project's freelancer can {what} work on it.",
            code=f"only_freelancer_can_{what}",
        )


def overdue_milestone_ids(ctx: Context, project_id: str) -> list[str]:
    """The project's milestones whose funding is due or overdue today (still draft past fund-by)."""
    return list(
        ctx.session.scalars(
            select(Milestone.id)
            .where(Milestone.project_id == project_id, funding_overdue(ctx.now.date()))
            .order_by(Milestone.position)
        )
    )


def check_pause(ctx: Context, project: Project) -> list[str]:
    """The freelancer may pause work that is not paused while a payment on the project is overdue;
    returns the overdue milestones (the client is told which)."""
    _check_freelancer(ctx, project, "pause")
    if project.paused:
        raise InvalidState("Work on this project is paused already.", code="already_paused")
    overdue = overdue_milestone_ids(ctx, project.id)
    if not overdue:
        raise InvalidState(
            "Work can be paused only while a payment on the project is overdue.",
            code="nothing_overdue",
        )
    return overdue


def pause_project(ctx: Context, project_id: str) -> Project:
    """The freelancer pauses work because a payment on the project is overdue; the client is told."""
    project = get_project(ctx, project_id, lock=True)
    overdue = check_pause(ctx, project)
    project.paused = True
    project.paused_at = ctx.now
    project.updated_at = ctx.now
    record_project_event(
        ctx,
        project,
        ProjectEventAction.PAUSED,
        role=Role.FREELANCER,
        data={"overdue_milestone_ids": overdue},
    )
    _notify_client(ctx, project, Notice.PROJECT_PAUSED, {"overdue_milestone_ids": overdue})
    return project


def check_resume(ctx: Context, project: Project) -> None:
    """The freelancer may resume paused work (whether or not the payment has come)."""
    _check_freelancer(ctx, project, "resume")
    if not project.paused:
        raise InvalidState("Work on this project is not paused.", code="not_paused")


def resume_project(ctx: Context, project_id: str) -> Project:
    """The freelancer resumes work on a paused project; the client is told."""
    project = get_project(ctx, project_id, lock=True)
    check_resume(ctx, project)
    project.paused = False
    project.paused_at = None
    project.updated_at = ctx.now
    record_project_event(ctx, project, ProjectEventAction.RESUMED, role=Role.FREELANCER)
    _notify_client(ctx, project, Notice.PROJECT_RESUMED, {})
    return project


def _notify_client(ctx: Context, project: Project, kind: Notice, data: dict[str, Any]) -> None:
    notify(
        ctx,
        kind,
        user_ids=[project.client_id],
        project_id=project.id,
        data=data,
        key=f"{kind}:{project.id}:{ctx.now.isoformat()}",
    )


# Milestones on a project ---------------------------------------------------------------------------------


def check_create_milestone(ctx: Context, project: Project) -> Role:
    """Only the project's client adds milestones (``milestones.service.create_milestone``); returns the
    role the creation is recorded under."""
    role = project_role(ctx.actor, project)
    if role is None:
        raise NotFound("No such project.", param="id")
    if role is not Role.CLIENT:
        raise PermissionDenied(
            "Only the project's client can create milestones.", code="only_client_can_create"
        )
    return role


# What a viewer may do now: the guards above, asked without acting ------------------------------------------


def available_actions(ctx: Context, project: Project) -> frozenset[ProjectAction]:
    """Every project action the actor may take now: exactly those whose action would pass its guard
    (input aside). The project page offers these forms and no others."""
    return available(
        {
            ProjectAction.PROPOSE: lambda: check_propose(ctx, project),
            ProjectAction.ACCEPT_PROPOSAL: lambda: check_accept(ctx, project),
            ProjectAction.PAUSE: lambda: check_pause(ctx, project),
            ProjectAction.RESUME: lambda: check_resume(ctx, project),
            ProjectAction.CREATE_MILESTONE: lambda: check_create_milestone(ctx, project),
            ProjectAction.ADD_BONUS: lambda: check_bonus(ctx, project),
        }
    )


def check_withdraw(ctx: Context, project: Project, proposal: Proposal) -> None:
    """Only its freelancer withdraws a proposal, while it is pending; anyone else who may not see it is
    told it does not exist."""
    actor = ctx.require_actor()
    if actor.id != proposal.freelancer_id:
        if actor.id != project.client_id and not actor.is_staff:
            raise NotFound("No such proposal.", param="id")
        raise PermissionDenied(
            "Only the freelancer who made a proposal can withdraw it.",
            code="only_author_can_withdraw",
        )
    if proposal.status is not ProposalStatus.PENDING:
        raise InvalidState(f"This proposal is {proposal.status}.")


def withdraw_proposal(ctx: Context, proposal_id: str) -> Proposal:
    """The freelancer takes back a pending proposal (it can no longer be accepted)."""
    ctx.require_actor()
    proposal = ctx.session.get(Proposal, proposal_id, with_for_update=True)
    if proposal is None:
        raise NotFound("No such proposal.", param="id")
    check_withdraw(ctx, get_project(ctx, proposal.project_id), proposal)
    PROPOSALS.move(proposal, ProposalStatus.WITHDRAWN)
    proposal.decided_at = ctx.now
    ctx.session.flush()
    return proposal


def available_proposal_actions(
    ctx: Context, project: Project, proposal: Proposal
) -> frozenset[ProposalAction]:
    """What the actor may do to ``proposal`` (of ``project``) now: accept it (the client), withdraw it
    (its freelancer), or nothing."""
    return available(
        {
            ProposalAction.ACCEPT: lambda: check_accept(ctx, project, proposal),
            ProposalAction.WITHDRAW: lambda: check_withdraw(ctx, project, proposal),
        }
    )
