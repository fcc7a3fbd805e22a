"""The milestone page's read model: it offers a form exactly when the service would accept it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from milepost.disputes import service as disputes
from milepost.feedback import service as feedback
from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, MilepostError
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.milestones.state import Action
from milepost.users.models import User
from milepost.web import uploads
from milepost.web.forms import milestone as milestone_forms
from milepost.web.views import milestone as page_view
from milepost.web.views.milestone import Form
from tests.world import World


class _Accepted(Exception):
    """Raised after a service call went through, so that its unit of work rolls back."""


def _accepts(world: World, user: User, action: Callable[[Context], Any]) -> bool:
    """Whether the service takes ``action`` from ``user`` now; nothing it does is kept."""
    try:
        with world.db.unit_of_work() as session:
            ctx = Context(session, session.get(User, user.id), settings=world.settings)
            action(ctx)
            raise _Accepted
    except _Accepted:
        return True
    except MilepostError:
        return False


def _dispute_id(ctx: Context, milestone_id: str) -> str:
    return milestone_forms.open_dispute_id(ctx, milestone_id)


def _checks(milestone_id: str) -> dict[Action | Form, Callable[[Context], Any]]:
    """Each new form of the page, as the page handler would call its service."""
    return {
        Action.REQUEST_CANCELLATION: lambda ctx: milestones.request_cancellation(
            ctx, milestone_id, reason="No longer needed"
        ),
        Action.ANSWER_CANCELLATION: lambda ctx: milestones.answer_cancellation(
            ctx, milestone_id, accept=False
        ),
        Action.OPEN_DISPUTE: lambda ctx: disputes.open_dispute(
            ctx, milestone_id, reason="Not delivered"
        ),
        Form.MAKE_OFFER: lambda ctx: disputes.make_offer(
            ctx, _dispute_id(ctx, milestone_id), to_freelancer=0
        ),
        Form.WITHDRAW_DISPUTE: lambda ctx: disputes.withdraw(ctx, _dispute_id(ctx, milestone_id)),
        Form.LEAVE_FEEDBACK: lambda ctx: feedback.leave_feedback(ctx, milestone_id, rating=5),
    }


def _situations(world: World) -> list[tuple[str, Milestone, list[User]]]:
    """Milestones in every situation the new forms care about, with the people who look at them."""
    staff = world.user("staff", staff=True)
    client, freelancer, project = world.parties()
    people = [client, freelancer, staff]
    made: list[tuple[str, Milestone, list[User]]] = []

    def milestone(name: str, **terms: Any) -> Milestone:
        return world.milestone(client, project, 10_000, title=name, **terms)

    made.append(("draft", milestone("draft"), people))
    funded = milestone("funded")
    world.act(client, milestones.fund, funded.id)
    made.append(("funded", funded, people))
    asked = milestone("cancellation asked")
    world.act(client, milestones.fund, asked.id)
    world.act(client, milestones.request_cancellation, asked.id, reason="Plans changed")
    made.append(("cancellation requested", asked, people))
    submitted = milestone("submitted")
    world.act(client, milestones.fund, submitted.id)
    world.act(freelancer, milestones.submit, submitted.id, note="Done")
    made.append(("submitted", submitted, people))
    approved = milestone("approved", release_delay_days=3)
    world.act(client, milestones.fund, approved.id)
    world.act(freelancer, milestones.submit, approved.id, note="Done")
    world.act(client, milestones.approve, approved.id)
    made.append(("approved, release delayed", approved, people))
    disputed = milestone("disputed")
    world.act(client, milestones.fund, disputed.id)
    world.act(client, disputes.open_dispute, disputed.id, reason="Late")
    made.append(("disputed, no offers", disputed, people))
    offered = milestone("offered")
    world.act(client, milestones.fund, offered.id)
    dispute = world.act(freelancer, disputes.open_dispute, offered.id, reason="Unpaid")
    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=6_000)
    world.act(client, disputes.make_offer, dispute.id, to_freelancer=2_000)
    made.append(("disputed, offers both ways", offered, people))
    released = milestone("released")
    world.act(client, milestones.fund, released.id)
    world.act(client, milestones.release, released.id, amount=10_000)
    made.append(("released", released, people))
    rated = milestone("rated")
    world.act(client, milestones.fund, rated.id)
    world.act(client, milestones.release, rated.id, amount=10_000)
    world.act(client, feedback.leave_feedback, rated.id, rating=4)
    made.append(("released, rated by the client", rated, people))
    settled = milestone("settled")
    world.act(client, milestones.fund, settled.id)
    settled_dispute = world.act(client, disputes.open_dispute, settled.id, reason="Late")
    offer = world.act(client, disputes.make_offer, settled_dispute.id, to_freelancer=5_000)
    world.act(freelancer, disputes.accept_offer, settled_dispute.id, offer.id)
    made.append(("resolved", settled, people))

    # A project nobody has been awarded yet: no freelancer to ask, dispute with or rate.
    unawarded = world.project(client)
    early = world.milestone(client, unawarded, 10_000, title="early")
    world.act(client, milestones.fund, early.id)
    made.append(("funded, no freelancer", early, [client, staff]))
    dropped = world.milestone(client, unawarded, 10_000, title="dropped")
    world.act(client, milestones.cancel, dropped.id)
    made.append(("cancelled, no freelancer", dropped, [client, staff]))
    return made


def test_the_page_offers_each_new_form_exactly_when_the_service_would_take_it(
    world: World,
) -> None:
    offered_anything: set[str] = set()
    for situation, milestone, people in _situations(world):
        for person in people:
            page = world.act(person, page_view.milestone_page, milestone.id)
            for form, call in _checks(milestone.id).items():
                shown = form in page.offered
                assert shown == _accepts(world, person, call), (situation, page.role, form)
                if shown:
                    offered_anything.add(form)
            # Accepting: per offer, and the form exactly when some offer may be accepted.
            lines = page.dispute.offers if page.dispute is not None else []
            for line in lines:
                accepts = _accepts(
                    world,
                    person,
                    # (mypy cannot infer a lambda with defaults; they bind this loop's values)
                    lambda ctx, offer_id=line.offer.id, milestone_id=milestone.id: (  # type: ignore[misc]
                        disputes.accept_offer(ctx, _dispute_id(ctx, milestone_id), offer_id)
                    ),
                )
                assert line.may_accept == accepts, (situation, page.role, line.offer.maker_role)
            assert (Form.ACCEPT_OFFER in page.forms) == any(line.may_accept for line in lines)
    # Every new form turned up somewhere, so none of the checks above passed by never showing it.
    assert offered_anything == set(_checks("").keys())


def test_the_page_shows_deliveries_the_checklist_receipts_and_the_dispute(world: World) -> None:
    client, freelancer, milestone = world.funded(
        acceptance_criteria=["Exports invoices as CSV"], required_evidence=["Test report"]
    )
    world.act(freelancer, milestones.submit, milestone.id, note="First go")
    world.act(client, milestones.request_changes, milestone.id, reason="No CSV")
    world.act(
        freelancer,
        milestones.submit,
        milestone.id,
        note="CSV export of invoices added",
        evidence=[{"type": "link", "url": "https://example.com/csv-export"}],
    )
    page = world.act(client, page_view.milestone_page, milestone.id)
    assert [revision.revision for revision in page.submissions] == [2, 1]  # newest first
    assert page.submissions[1].changes_requested is not None
    assert page.review is not None and page.review.submission is not None
    assert page.review.submission.revision == 2
    [criterion] = page.review.criteria
    assert criterion.met and "invoices" in criterion.evidence[0].matched_words
    [required] = page.review.required_evidence
    assert not required.found  # nothing like a test report among the links, files or texts
    assert page.review.suggestion is not None
    assert page.review.suggestion.decision == "request_changes"
    assert page.review_time_left is not None and page.review_time_left.startswith(
        "13 days 23 hours"
    )
    assert page.receipts == [] and page.dispute is None

    world.act(client, milestones.release, milestone.id, amount=40_000)
    dispute = world.act(freelancer, disputes.open_dispute, milestone.id, reason="Pay the rest")
    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=45_000)
    page = world.act(client, page_view.milestone_page, milestone.id)
    assert page.review is None  # no longer under review
    [receipt] = page.receipts
    assert receipt.amount_released == 40_000 and receipt.net_to_freelancer == 36_000
    assert page.dispute is not None and page.dispute.dispute.opener_role == "freelancer"
    [line] = page.dispute.offers
    assert (line.offer.to_freelancer, line.to_client, line.may_accept) == (45_000, 15_000, True)


def test_duration_text() -> None:
    assert page_view.duration_text(14 * 86_400) == "14 days"
    assert page_view.duration_text(86_400 + 2 * 3_600 + 59) == "1 day 2 hours"
    assert page_view.duration_text(3_600 + 45 * 60) == "1 hour 45 minutes"
    assert page_view.duration_text(59) == "no time"


def test_a_forms_links_are_evidence_items_one_per_line(world: World) -> None:
    freelancer = world.user("freelancer")
    links = " https://a.example/1 \n\n https://a.example/2\n"
    assert world.act(freelancer, uploads.links_and_files, links, []) == [
        {"type": "link", "url": "https://a.example/1"},
        {"type": "link", "url": "https://a.example/2"},
    ]
    assert world.act(freelancer, uploads.links_and_files, "  ", []) == []


def test_open_dispute_id_needs_an_open_dispute(world: World) -> None:
    client, _freelancer, milestone = world.funded()
    with pytest.raises(InvalidState):
        world.act(client, milestone_forms.open_dispute_id, milestone.id)
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Late")
    assert world.act(client, milestone_forms.open_dispute_id, milestone.id) == dispute.id
