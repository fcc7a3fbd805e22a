"""Feedback: after a milestone ended, each party rates the other once, 1 to 5."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from milepost.disputes import service as disputes
from milepost.feedback import service as feedback
from milepost.feedback.models import Feedback
from milepost.kit.errors import Conflict, InvalidState, NotFound, PermissionDenied, ValidationFailed
from milepost.kit.ids import new_id
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.users.models import User
from tests.world import World


def released(world: World) -> tuple[User, User, str]:
    client, freelancer, milestone = world.submitted()
    world.act(client, milestones.approve, milestone.id)
    return client, freelancer, milestone.id


def count(world: World) -> int:
    with world.db.read_only() as session:
        return int(session.scalar(select(func.count()).select_from(Feedback)) or 0)


def test_rating_is_refused_until_the_milestone_has_ended(world: World) -> None:
    client, freelancer, milestone = world.submitted()
    for user in (client, freelancer):
        with pytest.raises(InvalidState) as refused:
            world.act(user, feedback.leave_feedback, milestone.id, rating=5)
        assert refused.value.code == "invalid_state"
    assert count(world) == 0


def test_each_party_rates_the_other_once(world: World) -> None:
    client, freelancer, milestone_id = released(world)
    by_client = world.act(client, feedback.leave_feedback, milestone_id, rating=5, comment="Great")
    by_freelancer = world.act(freelancer, feedback.leave_feedback, milestone_id, rating=4)
    assert (by_client.subject_id, by_client.author_role, by_client.comment) == (
        freelancer.id,
        "client",
        "Great",
    )
    assert (by_freelancer.subject_id, by_freelancer.author_role, by_freelancer.comment) == (
        client.id,
        "freelancer",
        "",
    )
    for user in (client, freelancer):
        with pytest.raises(Conflict) as twice:
            world.act(user, feedback.leave_feedback, milestone_id, rating=1)
        assert twice.value.status == 409
        assert twice.value.code == "already_rated"
    assert count(world) == 2
    listed = world.act(freelancer, feedback.list_feedback, milestone_id)
    assert [row.rating for row in listed] == [5, 4]


def test_the_database_refuses_a_second_rating_even_past_the_service(world: World) -> None:
    client, freelancer, milestone_id = released(world)
    world.act(client, feedback.leave_feedback, milestone_id, rating=3)
    with pytest.raises(IntegrityError), world.db.unit_of_work() as session:
        session.add(
            Feedback(
                id=new_id("fb"),
                milestone_id=milestone_id,
                author_id=client.id,
                author_role="client",
                subject_id=freelancer.id,
                rating=4,
                comment="",
                created_at=utcnow(),
            )
        )
    assert count(world) == 1


@pytest.mark.parametrize("rating", [0, 6, -1, 100, 3.5, "4", True, None])
def test_rating_must_be_a_whole_number_from_1_to_5(world: World, rating: Any) -> None:
    client, _, milestone_id = released(world)
    with pytest.raises(ValidationFailed) as refused:
        world.act(client, feedback.leave_feedback, milestone_id, rating=rating)
    assert refused.value.param == "rating"
    assert count(world) == 0


def test_both_ends_of_the_scale_are_accepted(world: World) -> None:
    client, freelancer, milestone_id = released(world)
    assert world.act(client, feedback.leave_feedback, milestone_id, rating=1).rating == 1
    assert world.act(freelancer, feedback.leave_feedback, milestone_id, rating=5).rating == 5


def test_comment_is_length_limited(world: World) -> None:
    client, _, milestone_id = released(world)
    with pytest.raises(ValidationFailed) as refused:
        world.act(client, feedback.leave_feedback, milestone_id, rating=4, comment="x" * 2001)
    assert refused.value.param == "comment"
    assert world.act(client, feedback.leave_feedback, milestone_id, rating=4, comment="x" * 2000)


def test_outsiders_do_not_see_the_milestone_and_staff_cannot_rate(world: World) -> None:
    _, _, milestone_id = released(world)
    with pytest.raises(NotFound):
        world.act(world.user("outsider"), feedback.leave_feedback, milestone_id, rating=5)
    with pytest.raises(NotFound):
        world.act(world.user("outsider"), feedback.list_feedback, milestone_id)
    with pytest.raises(PermissionDenied) as staff:
        world.act(world.user("staff", staff=True), feedback.leave_feedback, milestone_id, rating=5)
    assert staff.value.code == "only_parties_can_rate"
    assert count(world) == 0


def test_cancelled_and_resolved_milestones_can_be_rated(world: World) -> None:
    client, freelancer, cancelled = world.funded()
    world.act(freelancer, milestones.cancel, cancelled.id)
    assert world.act(client, feedback.leave_feedback, cancelled.id, rating=2).rating == 2

    client, freelancer, disputed = world.funded()
    dispute = world.act(client, disputes.open_dispute, disputed.id, reason="Late")
    staff = world.user("staff", staff=True)
    world.act(staff, disputes.resolve, dispute.id, to_freelancer=50_000, to_client=50_000)
    assert world.act(freelancer, feedback.leave_feedback, disputed.id, rating=3).rating == 3


# Over HTTP ---------------------------------------------------------------------------------------------


def _released_over_http(sign_up: Any) -> tuple[Any, Any, str]:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    client.ok("POST", "/v1/deposits", {"amount": 100_000, "currency": "USD"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": "USD", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "Design", "amount": 50_000}
    )
    milestone_id = milestone["id"]
    client.ok("POST", f"/v1/milestones/{milestone_id}/fund")
    return client, freelancer, milestone_id


def test_feedback_over_http(sign_up: Any) -> None:
    client, freelancer, milestone_id = _released_over_http(sign_up)
    path = f"/v1/milestones/{milestone_id}/feedback"

    early = client.post(path, {"rating": 5})
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "invalid_state"

    client.ok("POST", f"/v1/milestones/{milestone_id}/release")
    for body in ({"rating": 6}, {"rating": 0}, {"rating": "5"}, {"rating": 4.5}, {}):
        refused = client.post(path, body)
        assert refused.status_code == 422, body
        assert refused.json()["error"]["param"] == "rating", body
    unknown = client.post(path, {"rating": 5, "stars": 5})
    assert unknown.status_code == 422

    created = client.post(path, {"rating": 5, "comment": "On time, clean work"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["object"] == "feedback"
    assert (body["rating"], body["subject_id"], body["author_id"]) == (5, freelancer.id, client.id)

    again = client.post(path, {"rating": 4})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_rated"

    assert sign_up("outsider").post(path, {"rating": 1}).status_code == 404
    assert freelancer.post(path, {"rating": 4}).status_code == 201
    listed = freelancer.ok("GET", path)
    assert [row["rating"] for row in listed["data"]] == [5, 4]

    received = sign_up("stranger").ok("GET", f"/v1/users/{freelancer.id}/feedback")
    assert [(row["rating"], row["comment"]) for row in received["data"]] == [
        (5, "On time, clean work")
    ]
    assert received["has_more"] is False
    assert client.get("/v1/users/usr_nobody/feedback").status_code == 404


def test_two_racing_ratings_by_one_party_leave_one(world: World) -> None:
    from tests.test_concurrency import OK, race

    client, _, milestone_id = released(world)

    def rate(value: int) -> Any:
        return lambda: world.act(client, feedback.leave_feedback, milestone_id, rating=value) and OK

    outcomes = race([rate(value) for value in (1, 2, 3, 4)])
    assert outcomes.count(OK) == 1, outcomes
    assert all(isinstance(o, Conflict) for o in outcomes if o != OK), outcomes
    assert count(world) == 1
