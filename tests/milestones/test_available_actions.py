"""The pages and the services agree: for every milestone situation and every kind of viewer, each action
is offered by the page's read model if and only if the service accepts it.

The milestone page (``page_view.milestone_page``: its actions and forms, offer by offer) and the staff
dispute page (``queue.dispute_detail``: the resolve form) are asked what they offer; then every action is
tried through the service the form calls, with valid input, in a unit of work that is rolled back. A
refusal (PermissionDenied, NotFound, InvalidState or another conflict) means "not accepted"; any other
error (a validation error, say) fails the test, since the input is meant to be valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute
from milepost.feedback import service as feedback
from milepost.kit.context import Context
from milepost.kit.errors import Conflict, NotFound, PermissionDenied
from milepost.milestones import service as milestones
from milepost.milestones.guards import available_actions
from milepost.milestones.state import Action
from milepost.projects.models import Project
from milepost.users.models import User
from milepost.web.forms import dispute as dispute_forms
from milepost.web.forms import milestone as milestone_forms
from milepost.web.views import dispute_queue as queue
from milepost.web.views import milestone as page_view
from milepost.web.views.milestone import Form
from tests.world import World

AMOUNT = 10_000
REFUSALS = (PermissionDenied, NotFound, Conflict)  # Conflict: InvalidState, AlreadyRated


class _Accepted(Exception):
    """Raised after a service call went through, so that its unit of work rolls back."""


def _accepts(world: World, user: User, call: Callable[[Context], Any]) -> bool:
    try:
        with world.db.unit_of_work() as session:
            call(Context(session, session.get(User, user.id), settings=world.settings))
            raise _Accepted
    except _Accepted:
        return True
    except REFUSALS:
        return False


def _open_dispute(ctx: Context, milestone_id: str) -> str:
    return milestone_forms.open_dispute_id(ctx, milestone_id)


def _calls(milestone_id: str) -> dict[Action | Form | str, Callable[[Context], Any]]:
    """Every action of the milestone page, as its form calls the service, with valid input."""
    m = milestone_id
    return {
        Action.EDIT: lambda ctx: milestones.update_terms(ctx, m, title="Renamed"),
        Action.FUND: lambda ctx: milestones.fund(ctx, m),
        Action.SUBMIT: lambda ctx: milestones.submit(ctx, m, note="Done"),
        Action.REQUEST_CHANGES: lambda ctx: milestones.request_changes(ctx, m, reason="Fix it"),
        Action.APPROVE: lambda ctx: milestones.approve(ctx, m),
        Action.RELEASE: lambda ctx: milestones.release(ctx, m),
        Action.REQUEST_RELEASE: lambda ctx: milestones.request_release(ctx, m),
        Action.CANCEL: lambda ctx: milestones.cancel(ctx, m, reason="Not needed"),
        Action.REQUEST_CANCELLATION: lambda ctx: milestones.request_cancellation(
            ctx, m, reason="Not needed"
        ),
        Action.ANSWER_CANCELLATION: lambda ctx: milestones.answer_cancellation(ctx, m, accept=True),
        Action.OPEN_DISPUTE: lambda ctx: disputes.open_dispute(ctx, m, reason="Late"),
        Form.MAKE_OFFER: lambda ctx: disputes.make_offer(
            ctx, _open_dispute(ctx, m), to_freelancer=0
        ),
        Form.WITHDRAW_DISPUTE: lambda ctx: disputes.withdraw(ctx, _open_dispute(ctx, m)),
        Form.LEAVE_FEEDBACK: lambda ctx: feedback.leave_feedback(ctx, m, rating=5),
    }


@dataclass(frozen=True)
class Situation:
    name: str
    milestone_id: str
    viewers: dict[
        str, User
    ]  # "client", "freelancer", "staff", "staff who is the client", "outsider"


def _situations(
    world: World, client: User, freelancer: User, viewers: dict[str, User]
) -> list[Situation]:
    """A milestone in every status (and the variations the guards care about) between these two."""
    awarded = world.project(client, freelancer)
    unawarded = world.project(client)
    made: list[Situation] = []

    def milestone(name: str, project: Project = awarded, **terms: Any) -> str:
        milestone_id = world.milestone(client, project, AMOUNT, title=name, **terms).id
        if name != "draft":
            world.act(client, milestones.fund, milestone_id)
        return milestone_id

    def add(name: str, milestone_id: str, without_freelancer: bool = False) -> None:
        shown = {
            label: user
            for label, user in viewers.items()
            if not (without_freelancer and label == "freelancer")
        }
        made.append(Situation(name, milestone_id, shown))

    def submitted(name: str, **terms: Any) -> str:
        milestone_id = milestone(name, **terms)
        world.act(freelancer, milestones.submit, milestone_id, note="Done")
        return milestone_id

    add("draft", milestone("draft"))
    draft = world.milestone(client, unawarded, AMOUNT, title="draft").id
    add("draft, no freelancer", draft, without_freelancer=True)
    add("funded", milestone("funded"))
    asked = milestone("cancellation requested")
    world.act(client, milestones.request_cancellation, asked, reason="Plans changed")
    add("funded, cancellation requested", asked)
    add("funded, no freelancer", milestone("funded", unawarded), without_freelancer=True)
    add("submitted", submitted("submitted"))
    asked = submitted("submitted, cancellation requested")
    world.act(client, milestones.request_cancellation, asked, reason="Plans changed")
    add("submitted, cancellation requested", asked)
    changes = submitted("changes requested")
    world.act(client, milestones.request_changes, changes, reason="Broken")
    add("changes requested", changes)
    approved = submitted("approved", release_delay_days=3)
    world.act(client, milestones.approve, approved)
    add("approved, release delayed", approved)
    released = milestone("released")
    world.act(client, milestones.release, released)
    add("released", released)
    rated = milestone("rated")
    world.act(client, milestones.release, rated)
    world.act(client, feedback.leave_feedback, rated, rating=4)
    add("released, rated by the client", rated)
    cancelled = world.milestone(client, awarded, AMOUNT, title="cancelled").id
    world.act(client, milestones.cancel, cancelled)
    add("cancelled", cancelled)
    dropped = milestone("cancelled", unawarded)
    world.act(client, milestones.cancel, dropped)
    add("cancelled, no freelancer", dropped, without_freelancer=True)
    disputed = milestone("disputed")
    world.act(client, disputes.open_dispute, disputed, reason="Late")
    add("disputed by the client, no offers", disputed)
    offered = submitted("offered")
    dispute = world.act(freelancer, disputes.open_dispute, offered, reason="Unpaid")
    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=6_000)
    world.act(client, disputes.make_offer, dispute.id, to_freelancer=2_000)
    add("disputed by the freelancer, offers both ways", offered)
    asked = milestone("disputed, cancellation requested")
    world.act(client, milestones.request_cancellation, asked, reason="Plans changed")
    world.act(freelancer, disputes.open_dispute, asked, reason="No")
    add("disputed, cancellation requested", asked)
    withdrawn = milestone("withdrawn")
    dispute = world.act(client, disputes.open_dispute, withdrawn, reason="Late")
    world.act(client, disputes.withdraw, dispute.id)
    add("funded again, dispute withdrawn", withdrawn)
    settled = milestone("settled")
    dispute = world.act(client, disputes.open_dispute, settled, reason="Late")
    offer = world.act(client, disputes.make_offer, dispute.id, to_freelancer=5_000)
    world.act(freelancer, disputes.accept_offer, dispute.id, offer.id)
    add("resolved", settled)
    return made


def _offered(world: World, user: User, milestone_id: str) -> tuple[set[Action | Form], Any]:
    """What the milestone page offers ``user`` (nothing: the page does not exist for them)."""
    try:
        page = world.act(user, page_view.milestone_page, milestone_id)
    except NotFound:
        return set(), None
    return set(page.actions) | set(page.forms), page


def _latest_dispute_id(world: World, milestone_id: str) -> str | None:
    with world.db.read_only() as session:
        return session.scalar(
            select(Dispute.id)
            .where(Dispute.milestone_id == milestone_id)
            .order_by(Dispute.created_at.desc(), Dispute.id.desc())
            .limit(1)
        )


def _resolve_offered(world: World, user: User, dispute_id: str) -> bool:
    """Whether the staff dispute page offers ``user`` the resolve form (non-staff: no such page)."""
    try:
        detail = world.act(user, queue.dispute_detail, dispute_id)
    except PermissionDenied:
        return False
    return detail.is_open and detail.resolve_refused is None


def _check(world: World, situation: Situation, label: str, user: User) -> set[str]:
    """Assert offered <=> accepted for every action of one viewer; return what was offered."""
    milestone_id = situation.milestone_id
    offered, page = _offered(world, user, milestone_id)
    where = (situation.name, label)
    if page is not None:
        assert world.act(user, available_actions, milestone_id) == page.actions, where
    for action, call in _calls(milestone_id).items():
        assert (action in offered) == _accepts(world, user, call), (*where, action)
    # Accepting an offer: offer by offer, and the form exactly when some offer may be accepted.
    lines = page.dispute.offers if page is not None and page.dispute is not None else []
    for line in lines:

        def accept(ctx: Context, offer_id: str = line.offer.id) -> Any:
            return disputes.accept_offer(ctx, _open_dispute(ctx, milestone_id), offer_id)

        assert line.may_accept == _accepts(world, user, accept), (*where, line.offer.maker_role)
    accepts_some = any(line.may_accept for line in lines)
    assert (Form.ACCEPT_OFFER in offered) == accepts_some, (*where, Form.ACCEPT_OFFER)
    # Resolving, from the staff dispute page.
    dispute_id = _latest_dispute_id(world, milestone_id)
    if dispute_id is not None:
        shown = _resolve_offered(world, user, dispute_id)
        accepted = _accepts(
            world,
            user,
            lambda ctx: dispute_forms.resolve_with_freelancer_part(
                ctx, dispute_id, to_freelancer="0"
            ),
        )
        assert shown == accepted, (*where, "resolve")
        if shown:
            return {str(name) for name in offered} | {"resolve"}
    return {str(name) for name in offered}


def test_every_page_offers_an_action_exactly_when_its_service_accepts_it(world: World) -> None:
    client, freelancer = world.user("client"), world.user("freelancer")
    staff, outsider = world.user("staff", staff=True), world.user("outsider")
    staff_client, their_freelancer = world.user("staff", staff=True), world.user("freelancer")
    for owner in (client, staff_client):
        world.deposit(owner, 1_000_000)
    situations = _situations(
        world,
        client,
        freelancer,
        {"client": client, "freelancer": freelancer, "staff": staff, "outsider": outsider},
    )
    # The same situations where the client is a staff member: a party first, staff second.
    situations += _situations(
        world, staff_client, their_freelancer, {"staff who is the client": staff_client}
    )

    offered: dict[str, set[str]] = {}
    for situation in situations:
        for label, user in situation.viewers.items():
            offered.setdefault(label, set()).update(_check(world, situation, label, user))

    # The walk reached every action: each was offered to somebody somewhere (and refused elsewhere).
    everything = {str(name) for name in [*Action, *Form, "resolve"]}
    assert set().union(*offered.values()) == everything
    assert offered["outsider"] == set()
    assert "resolve" in offered["staff"]
    assert "resolve" not in offered["staff who is the client"]
    assert offered["staff who is the client"] >= {str(Action.FUND), str(Action.RELEASE)}
