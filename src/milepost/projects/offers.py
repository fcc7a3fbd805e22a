"""Offers (as Upwork's): the client of an open project offers it to one freelancer, by account (a user id)
or by e-mail address, which is an invitation: whoever has or makes an account with that address may answer
it. The freelancer accepts, and the project is awarded to them (its pending proposals declined, as when a
proposal is accepted), or declines; the client may withdraw an offer still unanswered. One offer waits at a
time on a project. Naming ``freelancer_id`` when creating a project still awards it at once."""

from __future__ import annotations

from sqlalchemy import or_, select

from milepost.audit.project_trail import record_project_event
from milepost.events import Notice, ProjectEventAction, notify
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from milepost.kit.guards import available
from milepost.kit.ids import new_id
from milepost.kit.lookup import one_or_404
from milepost.milestones.state import Role
from milepost.projects.models import Project, ProjectOffer
from milepost.projects.service import award, get_project, project_role
from milepost.projects.state import OFFERS, OfferAction, OfferStatus, ProjectStatus
from milepost.users.models import User


def offer_project(
    ctx: Context,
    project_id: str,
    *,
    freelancer_id: object = None,
    email: object = None,
    message: object = None,
) -> ProjectOffer:
    """The client offers their open project to one freelancer: ``freelancer_id`` or ``email`` (an
    address with an account is that account's offer). They are told (an address without an account by
    e-mail, with a link to sign up)."""
    project = get_project(ctx, project_id, lock=True)
    check_offer(ctx, project)
    if (freelancer_id is None) == (email is None):
        raise ValidationFailed(
            "Name the freelancer by freelancer_id or by email (one of the two).",
            param="freelancer_id",
        )
    address = None if email is None else validate.email(email)
    freelancer = (
        ctx.session.get(User, freelancer_id)
        if isinstance(freelancer_id, str)
        else ctx.session.scalar(select(User).where(User.email == address))
    )
    if freelancer_id is not None and freelancer is None:
        raise ValidationFailed("No such freelancer.", code="unknown_user", param="freelancer_id")
    if freelancer is not None and freelancer.id == project.client_id:
        raise ValidationFailed(
            "A client cannot offer their own project to themselves.",
            param="freelancer_id" if freelancer_id is not None else "email",
        )
    offer = ProjectOffer(
        id=new_id("poff"),
        project_id=project.id,
        freelancer_id=freelancer.id if freelancer else None,
        email=None if freelancer else address,
        message=validate.text(message, "message", max_length=20_000, required=False),
        status=OfferStatus.PENDING,
        created_at=ctx.now,
    )
    ctx.session.add(offer)
    ctx.session.flush()
    _record(ctx, project, ProjectEventAction.OFFERED, Role.CLIENT, offer)
    notify(
        ctx,
        Notice.PROJECT_OFFERED,
        user_ids=[offer.freelancer_id],
        emails=[offer.email] if offer.email else [],
        project_id=project.id,
        data={"offer_id": offer.id, "message": offer.message, "invited": offer.email is not None},
        key=f"{Notice.PROJECT_OFFERED}:{offer.id}",
    )
    return offer


def check_offer(ctx: Context, project: Project) -> None:
    """The client may offer their project while it is open and no other offer of it waits."""
    if project_role(ctx.actor, project) is not Role.CLIENT:
        raise PermissionDenied(
            "Only the project's client can offer it.", code="only_client_can_offer"
        )
    if project.status is not ProjectStatus.OPEN:
        raise InvalidState("This project has its freelancer already.", code="already_awarded")
    pending = ctx.session.scalar(
        select(ProjectOffer.id).where(
            ProjectOffer.project_id == project.id, ProjectOffer.status == OfferStatus.PENDING
        )
    )
    if pending is not None:
        raise InvalidState(
            "An offer on this project is waiting for its answer: withdraw it first.",
            code="offer_pending",
        )


def check_answer(ctx: Context, offer: ProjectOffer, what: str) -> User:
    """The freelancer it is offered to may accept or decline a pending offer; returns them."""
    user = _the_offered(ctx, offer, what)
    _pending(offer)
    return user


def check_withdraw_offer(ctx: Context, project: Project, offer: ProjectOffer) -> None:
    if project_role(ctx.actor, project) is not Role.CLIENT:
        raise PermissionDenied(
            "Only the project's client can withdraw its offer.", code="only_client_can_withdraw"
        )
    _pending(offer)


def available_offer_actions(
    ctx: Context, project: Project, offer: ProjectOffer
) -> frozenset[OfferAction]:
    """What the actor may do to ``offer`` now: the guards the actions below run."""
    return available(
        {
            OfferAction.ACCEPT: lambda: check_answer(ctx, offer, "accept"),
            OfferAction.DECLINE: lambda: check_answer(ctx, offer, "decline"),
            OfferAction.WITHDRAW: lambda: check_withdraw_offer(ctx, project, offer),
        }
    )


def offers_for_me(ctx: Context) -> list[ProjectOffer]:
    """The offers waiting for the signed-in user's answer: made to their account or to their address."""
    user = ctx.require_actor()
    return list(
        ctx.session.scalars(
            select(ProjectOffer)
            .where(
                ProjectOffer.status == OfferStatus.PENDING,
                or_(
                    ProjectOffer.freelancer_id == user.id, ProjectOffer.email == user.email.lower()
                ),
            )
            .order_by(ProjectOffer.id)
        )
    )


def list_offers(ctx: Context, project_id: str) -> list[ProjectOffer]:
    """A project's offers, oldest first: its client and staff."""
    project = get_project(ctx, project_id)
    if project_role(ctx.actor, project) not in (Role.CLIENT, Role.STAFF):
        raise NotFound("No such project.", param="id")
    return list(
        ctx.session.scalars(
            select(ProjectOffer)
            .where(ProjectOffer.project_id == project.id)
            .order_by(ProjectOffer.id)
        )
    )


def get_offer(ctx: Context, offer_id: str) -> ProjectOffer:
    return _load(ctx, offer_id, lock=False)[1]


def accept_offer(ctx: Context, offer_id: str) -> Project:
    """The offered freelancer accepts: the project is awarded to them; the client is told."""
    project, offer = _load(ctx, offer_id, lock=True)
    user = check_answer(ctx, offer, "accept")
    OFFERS.move(offer, OfferStatus.ACCEPTED)
    offer.freelancer_id = user.id
    offer.decided_at = ctx.now
    award(ctx, project, user.id)
    _record(ctx, project, ProjectEventAction.OFFER_ACCEPTED, Role.FREELANCER, offer)
    _tell_client(ctx, project, Notice.PROJECT_OFFER_ACCEPTED, offer)
    return project


def decline_offer(ctx: Context, offer_id: str) -> ProjectOffer:
    """The offered freelancer declines; the client is told, and may offer the project to someone else."""
    project, offer = _load(ctx, offer_id, lock=True)
    user = check_answer(ctx, offer, "decline")
    OFFERS.move(offer, OfferStatus.DECLINED)
    offer.freelancer_id = user.id
    offer.decided_at = ctx.now
    _record(ctx, project, ProjectEventAction.OFFER_DECLINED, Role.FREELANCER, offer)
    _tell_client(ctx, project, Notice.PROJECT_OFFER_DECLINED, offer)
    return offer


def withdraw_offer(ctx: Context, offer_id: str) -> ProjectOffer:
    """The client takes back an unanswered offer."""
    project, offer = _load(ctx, offer_id, lock=True)
    check_withdraw_offer(ctx, project, offer)
    OFFERS.move(offer, OfferStatus.WITHDRAWN)
    offer.decided_at = ctx.now
    _record(ctx, project, ProjectEventAction.OFFER_WITHDRAWN, Role.CLIENT, offer)
    return offer


def _is_offered(user: User, offer: ProjectOffer) -> bool:
    return offer.freelancer_id == user.id or (
        offer.email is not None and offer.email == user.email.lower()
    )


def _the_offered(ctx: Context, offer: ProjectOffer, what: str) -> User:
    user = ctx.require_actor()
    if not _is_offered(user, offer):
        raise PermissionDenied(
            f"Only the freelancer it is offered to can {what} it.", code="only_offered_can_answer"
        )
    return user


def _load(ctx: Context, offer_id: str, *, lock: bool) -> tuple[Project, ProjectOffer]:
    """The offer and its project (the project locked first); NotFound for anyone but its client, the
    freelancer it is offered to, and staff."""
    user = ctx.require_actor()
    found = ctx.session.get(ProjectOffer, offer_id) if isinstance(offer_id, str) else None
    if found is None:
        raise NotFound("No such offer.", param="id")
    project = get_project(ctx, found.project_id, lock=lock)
    if project_role(user, project) not in (Role.CLIENT, Role.STAFF) and not _is_offered(
        user, found
    ):
        raise NotFound("No such offer.", param="id")
    offer = one_or_404(
        ctx.session,
        select(ProjectOffer).where(ProjectOffer.id == offer_id),
        lock=lock,
        missing="No such offer.",
    )
    return project, offer


def _pending(offer: ProjectOffer) -> None:
    if offer.status is not OfferStatus.PENDING:
        raise InvalidState(f"This offer is {offer.status}.", code="not_pending")


def _tell_client(ctx: Context, project: Project, kind: Notice, offer: ProjectOffer) -> None:
    notify(
        ctx,
        kind,
        user_ids=[project.client_id],
        project_id=project.id,
        data={"offer_id": offer.id},
        key=f"{kind}:{offer.id}",
    )


def _record(
    ctx: Context, project: Project, action: ProjectEventAction, role: Role, offer: ProjectOffer
) -> None:
    """On the project's trail: the offer, and the account it is for (none yet: an invitation by e-mail,
    whose address stays off the trail and out of webhooks)."""
    record_project_event(
        ctx,
        project,
        action,
        role=role,
        data={
            "offer_id": offer.id,
            "freelancer_id": offer.freelancer_id,
            "invited_by_email": offer.email is not None,
        },
    )
