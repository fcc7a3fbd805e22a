"""Reputation figures for a hand-built history, against the definitions in reputation/service.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from milepost.kit.errors import AuthenticationFailed, NotFound
from milepost.milestones.models import Milestone
from milepost.reputation import service as reputation
from milepost.reputation.schemas import ReputationOut
from tests.records.history import build, day
from tests.world import World


def profile(world: World, user_id: str, viewer: Any = None) -> dict[str, Any]:
    viewer = viewer or world.user("viewer")
    found = world.act(viewer, reputation.reputation, user_id, now=day(20))
    return ReputationOut.of(found).model_dump(mode="json")


def test_freelancer_figures(world: World) -> None:
    history = build(world)
    figures = profile(world, history.freelancer.id)
    # Ended after funding: m1, m2, m3, m4, m6, m8 (m5 was never funded; m9, m10 have not ended).
    # Completed: m1, m4, m6 released; m8 resolved with exactly half to the freelancer. Not: m2
    # (cancelled), m3 (resolved with 20_000 of 80_000).
    assert (figures["milestones_completed"], figures["milestones_ended"]) == (4, 6)
    assert figures["completion_rate"] == 0.6667
    # Net credits: m1 90_000 + m3 18_000 + m4 36_000 + m6 27_000 + m8 27_000 + bonus 9_000.
    assert figures["total_earned"] == [{"currency": "USD", "amount": 207_000}]
    assert figures["total_paid"] == []
    # Opened m8's dispute; lost m3's (less than half); m8's even split is not lost.
    assert figures["disputes"] == {"opened": 1, "lost": 1}
    assert (figures["rating_average"], figures["ratings"]) == (3.5, 2)  # 5 and 2
    # Never a client.
    assert figures["on_time_payment_rate"] is None
    assert (figures["payments_on_time"], figures["payments_assessed"]) == (0, 0)
    assert figures["object"] == "reputation"
    assert figures["user_id"] == history.freelancer.id


def test_client_figures(world: World) -> None:
    history = build(world)
    figures = profile(world, history.client.id)
    # Assessed: m1 (funded by 03-05, reviewed in 1 day), m3 (answered by a dispute within the review
    # period), m4 (funded after its fund-by date), m6 (approved 15 days after delivery, period 14), m8
    # (moved out of review by the freelancer's dispute in time), m9 (a draft past its fund-by date).
    # Not assessed: m2, m5 (no fund-by date, never delivered), m10 (review still within its period).
    assert (figures["payments_on_time"], figures["payments_assessed"]) == (3, 6)
    assert figures["on_time_payment_rate"] == 0.5
    # Gross: m1 100_000 + m3 20_000 + m4 40_000 + m6 30_000 + m8 30_000 + bonus 10_000.
    assert figures["total_paid"] == [{"currency": "USD", "amount": 230_000}]
    assert (
        figures["total_earned"] == []
    )  # refunds and the client's share of splits are not earnings
    assert figures["disputes"] == {"opened": 1, "lost": 0}  # m3's split went 60_000 to the client
    assert (figures["rating_average"], figures["ratings"]) == (4.0, 1)
    assert figures["completion_rate"] is None


def test_total_paid_is_what_was_funded_less_refunds_and_what_is_still_in_escrow(
    world: World,
) -> None:
    history = build(world)
    with world.db.read_only() as session:
        funded, refunded, escrow = session.execute(
            select(
                func.sum(Milestone.funded_amount),
                func.sum(Milestone.refunded_amount),
                func.sum(
                    Milestone.funded_amount - Milestone.released_amount - Milestone.refunded_amount
                ),
            ).where(Milestone.client_id == history.client.id)
        ).one()
    bonus = 10_000
    assert profile(world, history.client.id)["total_paid"] == [
        {"currency": "USD", "amount": funded - refunded - escrow + bonus}
    ]


def test_a_new_user_has_no_figures(world: World) -> None:
    newcomer = world.user("newcomer")
    assert profile(world, newcomer.id) == {
        "object": "reputation",
        "user_id": newcomer.id,
        "rating_average": None,
        "ratings": 0,
        "completion_rate": None,
        "milestones_completed": 0,
        "milestones_ended": 0,
        "on_time_payment_rate": None,
        "payments_on_time": 0,
        "payments_assessed": 0,
        "total_earned": [],
        "total_paid": [],
        "disputes": {"opened": 0, "lost": 0},
    }


def test_unknown_user_is_not_found_and_a_viewer_must_sign_in(world: World) -> None:
    with pytest.raises(NotFound):
        world.act(world.user("viewer"), reputation.reputation, "usr_nobody")
    with pytest.raises(AuthenticationFailed):
        world.act(None, reputation.reputation, world.user("someone").id)


def test_reputation_over_http(sign_up: Any) -> None:
    client, freelancer, stranger = sign_up("client"), sign_up("freelancer"), sign_up("stranger")
    client.ok("POST", "/v1/deposits", {"amount": 100_000, "currency": "USD"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": "USD", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "Design", "amount": 50_000}
    )
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    client.ok("POST", f"/v1/milestones/{milestone['id']}/release")
    client.ok("POST", f"/v1/milestones/{milestone['id']}/feedback", {"rating": 4})

    body = stranger.ok("GET", f"/v1/users/{freelancer.id}/reputation")
    assert body["object"] == "reputation"
    assert body["rating_average"] == 4.0
    assert body["completion_rate"] == 1.0
    assert body["total_earned"] == [{"currency": "USD", "amount": 45_000}]  # 50_000 less 10 %
    paid = stranger.ok("GET", f"/v1/users/{client.id}/reputation")["total_paid"]
    assert paid == [{"currency": "USD", "amount": 50_000}]

    missing = stranger.get("/v1/users/usr_nobody/reputation")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"
    anonymous = stranger.get(
        f"/v1/users/{client.id}/reputation", headers={"Authorization": "Bearer nope"}
    )
    assert anonymous.status_code == 401


def test_a_review_left_to_lapse_is_late_whether_or_not_the_system_approved_it(world: World) -> None:
    from milepost.kit.time import utcnow
    from tests.schedule.helpers import tick

    client, freelancer, lapsed = world.submitted()
    _, _, waiting = world.submitted()  # another client, whose review is simply overdue
    later = utcnow() + timedelta(days=15)
    with world.db.read_only() as session:
        waiting_client = session.get(Milestone, waiting.id)
        assert waiting_client is not None
        waiting_client_id = waiting_client.client_id

    def client_rate(user_id: str) -> tuple[int, int]:
        found = world.act(world.user("viewer"), reputation.reputation, user_id, now=later)
        return found.on_time_payment.numerator, found.on_time_payment.denominator

    # Within the period: nothing to judge yet.
    assert world.act(client, reputation.reputation, client.id).on_time_payment.denominator == 0
    # Past it, with nobody having decided: late.
    assert client_rate(client.id) == (0, 1)
    assert client_rate(waiting_client_id) == (0, 1)
    tick(world, later)
    assert world.get(lapsed.id).status == "released"
    assert client_rate(client.id) == (0, 1)  # auto-approved: the client did not review in time
    completion = world.act(client, reputation.reputation, freelancer.id, now=later).completion
    assert (completion.numerator, completion.denominator) == (1, 1)


def test_totals_are_per_currency_and_a_draft_cancelled_past_its_fund_by_date_was_late(
    world: World,
) -> None:
    from datetime import date

    from milepost.milestones import service as milestones
    from milepost.projects import service as projects
    from tests.records.history import day

    client, freelancer, usd = world.parties()
    world.deposit(client, 50_000, "JPY")
    jpy = world.project(client, freelancer, "JPY")
    world.act(client, projects.create_bonus, jpy.id, amount=1_005)  # fee round(100.5) = 101
    world.act(client, projects.create_bonus, usd.id, amount=2_000)
    late = world.milestone(client, usd, 5_000, fund_by=date(2030, 3, 2))
    world.act(client, milestones.cancel, late.id, now=day(3))  # 03-04: after its fund-by date
    early = world.milestone(client, usd, 5_000, fund_by=date(2030, 3, 9))
    world.act(client, milestones.cancel, early.id, now=day(3))  # before it: not judged

    freelancer_figures = profile(world, freelancer.id)
    assert freelancer_figures["total_earned"] == [
        {"currency": "JPY", "amount": 904},
        {"currency": "USD", "amount": 1_800},
    ]
    client_figures = profile(world, client.id)
    assert client_figures["total_paid"] == [
        {"currency": "JPY", "amount": 1_005},
        {"currency": "USD", "amount": 2_000},
    ]
    assert (client_figures["payments_on_time"], client_figures["payments_assessed"]) == (0, 1)
