"""The milestone lifecycle of PRODUCT.md, transition by transition, for every role, on both backends.

The matrix: a milestone is brought to each state through the services, then each action is tried as
the client, the freelancer, staff (not a party) and an outsider (not a party, not staff). What is allowed
must move the milestone and the money exactly as the lifecycle table says and append exactly the
expected events; everything else must be refused with the right error and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milepost.audit import service as audit
from milepost.disputes import service as disputes
from milepost.kit.errors import (
    InsufficientFunds,
    InvalidState,
    MilepostError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from milepost.milestones import service as milestones
from milepost.users.models import User
from tests.world import World

AMOUNT = 100_000
FEE = 10_000  # the world's platform fee is 10%
PART = 30_000
PART_FEE = 3_000
LINK = [{"type": "link", "url": "https://example.com/pr/1"}]

STATES = [
    "draft",
    "funded",
    "submitted",
    "changes_requested",
    "approved",
    "released",
    "cancelled",
    "disputed",
    "resolved",
]
IN_PROGRESS = {"funded", "submitted", "changes_requested"}
ROLES = ["client", "freelancer", "staff", "outsider"]


# Building a milestone in a given state, through the services ----------------------------------------


@dataclass
class People:
    world: World
    client: User
    freelancer: User
    staff: User
    outsider: User

    def user(self, role: str) -> User:
        return {
            "client": self.client,
            "freelancer": self.freelancer,
            "staff": self.staff,
            "outsider": self.outsider,
        }[role]


def people(world: World) -> People:
    """A client with money in the wallet, a freelancer, a staff member and an outsider."""
    client = world.user("client")
    world.deposit(client, 10_000_000)
    return People(
        world,
        client,
        world.user("freelancer"),
        world.user("staff", staff=True),
        world.user("outsider"),
    )


@dataclass
class Case:
    people: People
    milestone_id: str

    @property
    def world(self) -> World:
        return self.people.world

    @property
    def client(self) -> User:
        return self.people.client

    @property
    def freelancer(self) -> User:
        return self.people.freelancer

    def user(self, role: str) -> User:
        return self.people.user(role)

    @property
    def escrow_key(self) -> str:
        return f"escrow:{self.milestone_id}:USD"

    def money(self) -> dict[str, int]:
        return {
            "client": self.world.balance(self.client),
            "freelancer": self.world.balance(self.freelancer),
            "escrow": self.world.account_balance(self.escrow_key),
            "fee": self.world.account_balance("platform_fee:USD"),
        }

    def events(self) -> list[Any]:
        return self.world.act(self.people.staff, audit.list_events, self.milestone_id)


def build(
    world: World,
    state: str,
    *,
    who: People | None = None,
    with_freelancer: bool = True,
    **terms: Any,
) -> Case:
    """A milestone of AMOUNT in ``state``, reached through the services the way users would.

    Each call makes a new project; pass ``who`` to reuse the people of an earlier call."""
    p = who or people(world)
    client, freelancer, staff = p.client, p.freelancer, p.staff
    project = world.project(client, freelancer if with_freelancer else None)
    # An approved milestone only stays approved while it waits out a release delay.
    terms.setdefault("release_delay_days", 3 if state == "approved" else 0)
    mid = world.milestone(client, project, AMOUNT, **terms).id
    case = Case(p, mid)
    if state == "draft":
        return case
    world.act(client, milestones.fund, mid)
    if state == "cancelled":
        world.act(freelancer, milestones.cancel, mid, reason="Cannot do it")
    if state in ("funded", "cancelled"):
        return case
    world.act(freelancer, milestones.submit, mid, note="Done", evidence=LINK)
    if state == "changes_requested":
        world.act(client, milestones.request_changes, mid, reason="Header is broken")
    elif state in ("approved", "released"):
        world.act(client, milestones.approve, mid)
    elif state in ("disputed", "resolved"):
        dispute = world.act(freelancer, disputes.open_dispute, mid, reason="No answer")
        if state == "resolved":
            world.act(staff, disputes.resolve, dispute.id, to_freelancer=60_000, to_client=40_000)
    assert str(world.get(mid).status) == state
    return case


# The actions, and the lifecycle table written out ---------------------------------------------------

ACTIONS = [
    "edit",
    "fund",
    "submit",
    "request_changes",
    "approve",
    "release",
    "release_part",
    "request_release",
    "cancel",
    "request_cancellation",
    "accept_cancellation",
    "decline_cancellation",
    "open_dispute",
]


def do(case: Case, action: str, user: User | None, **options: Any) -> Any:
    world, mid = case.world, case.milestone_id
    calls: dict[str, tuple[Any, dict[str, Any]]] = {
        "edit": (milestones.update_terms, {"title": "Renamed"}),
        "fund": (milestones.fund, {}),
        "submit": (milestones.submit, {"note": "Fixed", "evidence": LINK}),
        "request_changes": (milestones.request_changes, {"reason": "Still broken"}),
        "approve": (milestones.approve, {}),
        "release": (milestones.release, {}),
        "release_part": (milestones.release, {"amount": PART}),
        "request_release": (milestones.request_release, {}),
        "cancel": (milestones.cancel, {"reason": "Plans changed"}),
        "request_cancellation": (milestones.request_cancellation, {"reason": "Plans changed"}),
        "accept_cancellation": (milestones.answer_cancellation, {"accept": True}),
        "decline_cancellation": (milestones.answer_cancellation, {"accept": False}),
        "open_dispute": (disputes.open_dispute, {"reason": "Not what we agreed"}),
    }
    function, kwargs = calls[action]
    return world.act(user, function, mid, **kwargs, **options)


def prepare(case: Case, action: str, state: str) -> None:
    """Answering a cancellation needs a pending request (else it is refused as `no_request`)."""
    if action in ("accept_cancellation", "decline_cancellation") and state in IN_PROGRESS:
        case.world.act(
            case.client, milestones.request_cancellation, case.milestone_id, reason="Plans changed"
        )


# Who may ever take each action (PRODUCT.md's table) and the code anyone else gets (state.py).
WHO = {
    "edit": ({"client"}, "only_client_can_edit"),
    "fund": ({"client"}, "only_client_can_fund"),
    "submit": ({"freelancer"}, "only_freelancer_can_submit"),
    "request_changes": ({"client"}, "only_client_can_review"),
    "approve": ({"client"}, "only_client_can_review"),
    "release": ({"client"}, "only_client_can_release"),
    "release_part": ({"client"}, "only_client_can_release"),
    "request_release": ({"freelancer"}, "only_freelancer_can_request_release"),
    "cancel": ({"client", "freelancer", "staff"}, "not_allowed_to_cancel"),
    "request_cancellation": ({"client"}, "only_client_can_request_cancellation"),
    "accept_cancellation": ({"freelancer"}, "only_freelancer_can_answer"),
    "decline_cancellation": ({"freelancer"}, "only_freelancer_can_answer"),
    "open_dispute": ({"client", "freelancer"}, "only_parties_can_dispute"),
}
# From which states each action may be taken.
FROM = {
    "edit": {"draft"},
    "fund": {"draft"},
    "submit": {"funded", "changes_requested"},
    "request_changes": {"submitted"},
    "approve": {"submitted"},
    "release": IN_PROGRESS | {"approved"},
    "release_part": IN_PROGRESS | {"approved"},
    "request_release": {"submitted", "changes_requested", "approved"},
    "cancel": {"draft"} | IN_PROGRESS,
    "request_cancellation": IN_PROGRESS,
    "accept_cancellation": IN_PROGRESS,
    "decline_cancellation": IN_PROGRESS,
    "open_dispute": IN_PROGRESS | {"approved"},
}


def refusal(action: str, state: str, role: str) -> tuple[type[MilepostError], int, str] | None:
    """The error ``role`` gets for ``action`` in ``state``, or None if it is allowed."""
    if role == "outsider":
        return NotFound, 404, "not_found"  # not a party: the milestone does not exist for them
    roles, code = WHO[action]
    if role not in roles:
        return PermissionDenied, 403, code
    if state not in FROM[action]:
        return InvalidState, 409, "invalid_state"
    if action == "cancel":
        if state == "draft" and role == "freelancer":
            return PermissionDenied, 403, "only_client_can_cancel"
        if state in IN_PROGRESS and role == "client":  # the project has a freelancer
            return PermissionDenied, 403, "only_freelancer_can_cancel"
    return None


NO_MONEY = {"client": 0, "freelancer": 0, "escrow": 0, "fee": 0}
FUND = {"client": -AMOUNT, "freelancer": 0, "escrow": AMOUNT, "fee": 0}
RELEASE_ALL = {"client": 0, "freelancer": AMOUNT - FEE, "escrow": -AMOUNT, "fee": FEE}
RELEASE_PART = {"client": 0, "freelancer": PART - PART_FEE, "escrow": -PART, "fee": PART_FEE}
REFUND = {"client": AMOUNT, "freelancer": 0, "escrow": -AMOUNT, "fee": 0}

# One event: (action, from status, to status, amount).
Event = tuple[str, str, str, int | None]


def outcome(action: str, state: str) -> tuple[str, dict[str, int], list[Event]]:
    """What an allowed action does: the resulting state, the money moved, the events appended."""
    s = state
    outcomes: dict[str, tuple[str, dict[str, int], list[Event]]] = {
        "edit": ("draft", NO_MONEY, [("terms_edited", s, "draft", None)]),
        "fund": ("funded", FUND, [("funded", s, "funded", AMOUNT)]),
        "submit": ("submitted", NO_MONEY, [("submitted", s, "submitted", None)]),
        "request_changes": (
            "changes_requested",
            NO_MONEY,
            [("changes_requested", s, "changes_requested", None)],
        ),
        # No release delay: approved, then released at once.
        "approve": (
            "released",
            RELEASE_ALL,
            [("approved", s, "approved", None), ("released", "approved", "released", AMOUNT)],
        ),
        "release": ("released", RELEASE_ALL, [("released", s, "released", AMOUNT)]),
        "release_part": (s, RELEASE_PART, [("released_part", s, s, PART)]),
        "request_release": (s, NO_MONEY, [("release_requested", s, s, None)]),
        "cancel": (
            "cancelled",
            NO_MONEY if s == "draft" else REFUND,
            [("cancelled", s, "cancelled", 0 if s == "draft" else AMOUNT)],
        ),
        "request_cancellation": (s, NO_MONEY, [("cancellation_requested", s, s, None)]),
        "accept_cancellation": (
            "cancelled",
            REFUND,
            [("cancellation_accepted", s, "cancelled", AMOUNT)],
        ),
        "decline_cancellation": (s, NO_MONEY, [("cancellation_declined", s, s, None)]),
        "open_dispute": ("disputed", NO_MONEY, [("dispute_opened", s, "disputed", None)]),
    }
    return outcomes[action]


ALLOWED = [
    (action, state, role)
    for action in ACTIONS
    for state in STATES
    for role in ROLES
    if refusal(action, state, role) is None
]


def test_the_table_allows_what_product_md_lists() -> None:
    """A guard on the table above: the allowed moves are exactly the lifecycle's rows."""
    assert len(ALLOWED) == 42
    assert {(a, s) for a, s, _ in ALLOWED if a == "cancel"} == {
        ("cancel", state) for state in ("draft", "funded", "submitted", "changes_requested")
    }
    assert {r for a, s, r in ALLOWED if a == "cancel" and s == "draft"} == {"client", "staff"}
    assert {r for a, s, r in ALLOWED if a == "cancel" and s == "funded"} == {
        "freelancer",
        "staff",
    }


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in before}


@pytest.mark.parametrize("action", ACTIONS)
def test_allowed_transitions(world: World, action: str) -> None:
    """Each (state, role) allowed to take ``action``, on a fresh milestone in that state."""
    who = people(world)
    rows = [(state, role) for a, state, role in ALLOWED if a == action]
    assert rows
    for state, role in rows:
        case = build(world, state, who=who)
        prepare(case, action, state)
        user = case.user(role)
        money_before, events_before = case.money(), len(case.events())

        do(case, action, user)

        where = f"{role} doing {action} on a {state} milestone"
        to_state, money, expected_events = outcome(action, state)
        milestone = world.get(case.milestone_id)
        assert str(milestone.status) == to_state, where
        assert _delta(money_before, case.money()) == money, where
        new_events = case.events()[events_before:]
        assert [(e.action, e.from_status, e.to_status, e.amount) for e in new_events] == (
            expected_events
        ), where
        assert all((e.actor_id, e.actor_role) == (user.id, role) for e in new_events), where
        if to_state in ("released", "cancelled"):
            assert (milestone.escrow_balance, milestone.cancellation_requested) == (0, False)
            assert milestone.ended_at is not None, where


@pytest.mark.parametrize("state", STATES)
def test_refused_transitions(world: World, state: str) -> None:
    """Every role that may not take an action in ``state`` is refused, and nothing changes."""
    case = build(world, state)
    before = world.snapshot()
    tried = 0
    for action in ACTIONS:
        for role in ROLES:
            expected = refusal(action, state, role)
            if expected is None:
                continue
            where = f"{role} doing {action} on a {state} milestone"
            with pytest.raises(MilepostError) as refused:
                do(case, action, case.user(role))
            error = refused.value
            assert (type(error), error.status, error.code) == expected, where
            assert world.snapshot() == before, where
            tried += 1
    assert tried == len(ACTIONS) * len(ROLES) - sum(1 for _, s, _ in ALLOWED if s == state)


# Cancelling ----------------------------------------------------------------------------------------


def test_client_may_cancel_a_funded_milestone_while_the_project_has_no_freelancer(
    world: World,
) -> None:
    case = build(world, "funded", with_freelancer=False)
    assert world.balance(case.client) == 10_000_000 - AMOUNT

    world.act(case.client, milestones.cancel, case.milestone_id, reason="Nobody was hired")

    milestone = world.get(case.milestone_id)
    assert str(milestone.status) == "cancelled"
    assert milestone.refunded_amount == AMOUNT
    assert world.balance(case.client) == 10_000_000
    assert world.account_balance(case.escrow_key) == 0
    [*_, event] = case.events()
    assert (event.action, event.actor_role, event.amount) == ("cancelled", "client", AMOUNT)


def test_without_a_freelancer_a_cancellation_request_is_refused_as_cancel_directly(
    world: World,
) -> None:
    case = build(world, "funded", with_freelancer=False)
    before = world.snapshot()
    with pytest.raises(InvalidState) as refused:
        world.act(case.client, milestones.request_cancellation, case.milestone_id, reason="Changed")
    assert (refused.value.status, refused.value.code) == (409, "cancel_directly")
    assert world.snapshot() == before


def test_without_a_freelancer_nothing_can_be_released(world: World) -> None:
    case = build(world, "funded", with_freelancer=False)
    before = world.snapshot()
    with pytest.raises(InvalidState) as refused:
        world.act(case.client, milestones.release, case.milestone_id)
    assert refused.value.code == "no_freelancer"
    assert world.snapshot() == before


def test_cancelling_after_a_partial_release_refunds_only_the_remainder(world: World) -> None:
    case = build(world, "submitted")
    world.act(case.client, milestones.release, case.milestone_id, amount=PART)
    before = case.money()

    world.act(case.freelancer, milestones.cancel, case.milestone_id, reason="Stopping here")

    milestone = world.get(case.milestone_id)
    assert str(milestone.status) == "cancelled"
    assert (milestone.released_amount, milestone.refunded_amount) == (PART, AMOUNT - PART)
    assert milestone.fee_amount == PART_FEE
    assert _delta(before, case.money()) == {
        "client": AMOUNT - PART,
        "freelancer": 0,
        "escrow": -(AMOUNT - PART),
        "fee": 0,
    }
    # Released money stays released: the freelancer keeps the part less its fee.
    assert world.balance(case.freelancer) == PART - PART_FEE


# Cancellation requests -------------------------------------------------------------------------------


def test_accepted_cancellation_request_refunds_the_client(world: World) -> None:
    case = build(world, "submitted")
    mid = case.milestone_id
    world.act(case.client, milestones.request_cancellation, mid, reason="Budget cut")
    pending = world.get(mid)
    assert (str(pending.status), pending.cancellation_requested) == ("submitted", True)
    assert pending.cancellation_reason == "Budget cut"
    client_before = world.balance(case.client)

    world.act(case.freelancer, milestones.answer_cancellation, mid, accept=True)

    done = world.get(mid)
    assert (str(done.status), done.cancellation_requested) == ("cancelled", False)
    assert done.refunded_amount == AMOUNT
    assert world.balance(case.client) == client_before + AMOUNT
    assert world.balance(case.freelancer) == 0
    [*_, event] = case.events()
    assert (event.action, event.actor_id, event.data["reason"]) == (
        "cancellation_accepted",
        case.freelancer.id,
        "Budget cut",
    )


def test_declined_cancellation_request_leaves_the_milestone_funded(world: World) -> None:
    case = build(world, "funded")
    mid = case.milestone_id
    world.act(case.client, milestones.request_cancellation, mid, reason="Budget cut")
    money = case.money()

    world.act(case.freelancer, milestones.answer_cancellation, mid, accept=False)

    milestone = world.get(mid)
    assert (str(milestone.status), milestone.cancellation_requested) == ("funded", False)
    assert milestone.cancellation_reason is None
    assert case.money() == money
    # The work goes on: the freelancer can still deliver.
    world.act(case.freelancer, milestones.submit, mid, note="Done", evidence=LINK)
    assert str(world.get(mid).status) == "submitted"


def test_a_second_cancellation_request_while_one_is_pending_is_refused(world: World) -> None:
    case = build(world, "funded")
    world.act(case.client, milestones.request_cancellation, case.milestone_id, reason="First")
    before = world.snapshot()
    with pytest.raises(InvalidState) as refused:
        world.act(case.client, milestones.request_cancellation, case.milestone_id, reason="Second")
    assert (refused.value.status, refused.value.code) == (409, "already_requested")
    assert world.snapshot() == before
    assert world.get(case.milestone_id).cancellation_reason == "First"


def test_answering_without_a_request_and_requesting_without_a_reason_are_refused(
    world: World,
) -> None:
    case = build(world, "funded")
    before = world.snapshot()
    for accept in (True, False):
        with pytest.raises(InvalidState) as refused:
            world.act(
                case.freelancer, milestones.answer_cancellation, case.milestone_id, accept=accept
            )
        assert (refused.value.status, refused.value.code) == (409, "no_request")
        assert world.snapshot() == before
    for reason in (None, "  "):
        with pytest.raises(ValidationFailed) as invalid:
            world.act(
                case.client, milestones.request_cancellation, case.milestone_id, reason=reason
            )
        assert invalid.value.param == "reason"
        assert world.snapshot() == before


# Approval and the release delay ---------------------------------------------------------------------


def test_approve_with_a_release_delay_stays_approved_until_it_matures(world: World) -> None:
    case = build(world, "submitted", release_delay_days=3)
    mid = case.milestone_id
    approved_at = datetime(2030, 1, 10, 9, 0, tzinfo=UTC)
    money = case.money()

    world.act(case.client, milestones.approve, mid, now=approved_at)

    milestone = world.get(mid)
    assert str(milestone.status) == "approved"
    assert milestone.release_due_at == approved_at + timedelta(days=3)
    assert milestone.review_due_at is None
    assert case.money() == money  # nothing moves until the delay has passed

    before = world.snapshot()
    for early in (approved_at, approved_at + timedelta(days=3) - timedelta(seconds=1)):
        with pytest.raises(InvalidState) as refused:
            world.act(None, milestones.release_matured, mid, now=early)
        assert refused.value.code == "not_due"
        assert world.snapshot() == before

    world.act(None, milestones.release_matured, mid, now=approved_at + timedelta(days=3))

    released = world.get(mid)
    assert str(released.status) == "released"
    assert _delta(money, case.money()) == RELEASE_ALL
    [*_, event] = case.events()
    assert (event.action, event.actor_id, event.actor_role, event.amount) == (
        "released",
        None,
        "system",
        AMOUNT,
    )

    # Maturing again releases nothing twice.
    before = world.snapshot()
    with pytest.raises(InvalidState):
        world.act(None, milestones.release_matured, mid, now=approved_at + timedelta(days=4))
    assert world.snapshot() == before


def test_release_matured_refuses_a_milestone_that_is_not_waiting_out_a_delay(
    world: World,
) -> None:
    case = build(world, "submitted")
    before = world.snapshot()
    with pytest.raises(InvalidState) as refused:
        world.act(
            None,
            milestones.release_matured,
            case.milestone_id,
            now=datetime(2099, 1, 1, tzinfo=UTC),
        )
    assert refused.value.code == "invalid_state"
    assert world.snapshot() == before


def test_the_client_may_release_an_approved_milestone_before_the_delay_ends(world: World) -> None:
    case = build(world, "approved")
    money = case.money()
    world.act(case.client, milestones.release, case.milestone_id)
    assert str(world.get(case.milestone_id).status) == "released"
    assert _delta(money, case.money()) == RELEASE_ALL


def test_automatic_approval_when_the_review_period_lapses(world: World) -> None:
    case = build(world, "submitted")
    money = case.money()
    world.act(None, milestones.approve, case.milestone_id, automatic=True)
    assert str(world.get(case.milestone_id).status) == "released"
    assert _delta(money, case.money()) == RELEASE_ALL
    approved, released = case.events()[-2:]
    assert (approved.action, approved.actor_id, approved.actor_role) == (
        "auto_approved",
        None,
        "system",
    )
    assert (released.action, released.from_status, released.to_status) == (
        "released",
        "approved",
        "released",
    )


# Partial releases -----------------------------------------------------------------------------------


def test_partial_releases_keep_the_state_until_the_escrow_is_empty(world: World) -> None:
    who = people(world)
    for state in ("funded", "submitted", "changes_requested", "approved"):
        case = build(world, state, who=who)
        mid = case.milestone_id
        freelancer_before = world.balance(case.freelancer)
        for part in (33_333, 33_333):
            world.act(case.client, milestones.release, mid, amount=part)
            assert str(world.get(mid).status) == state
        world.act(case.client, milestones.release, mid, amount=AMOUNT - 66_666)

        done = world.get(mid)
        assert str(done.status) == "released", state
        assert (done.released_amount, done.escrow_balance) == (AMOUNT, 0)
        # The fee is on the cumulative amount: 3,333 + 3,334 + 3,333 is 10% of the whole.
        assert done.fee_amount == FEE
        assert world.balance(case.freelancer) - freelancer_before == AMOUNT - FEE
        last_three = case.events()[-3:]
        assert [(e.action, e.from_status, e.to_status, e.amount) for e in last_three] == [
            ("released_part", state, state, 33_333),
            ("released_part", state, state, 33_333),
            ("released", state, "released", AMOUNT - 66_666),
        ]
        assert [e.data["fee"] for e in last_three] == [3_333, 3_334, 3_333]


def test_releasing_more_than_the_escrow_or_a_bad_amount_is_refused(world: World) -> None:
    case = build(world, "submitted")
    world.act(case.client, milestones.release, case.milestone_id, amount=PART)
    before = world.snapshot()
    for amount in (AMOUNT - PART + 1, AMOUNT, 10**12):
        with pytest.raises(InsufficientFunds) as refused:
            world.act(case.client, milestones.release, case.milestone_id, amount=amount)
        assert (refused.value.status, refused.value.code) == (402, "insufficient_funds")
        assert world.snapshot() == before
    # Money in the message is written as people read it, in the milestone's currency.
    assert str(refused.value) == "The escrow holds $700.00; cannot release $10,000,000,000.00."
    for bad in (0, -5, 1.5, "100", True, 10**12 + 1):
        with pytest.raises(ValidationFailed) as invalid:
            world.act(case.client, milestones.release, case.milestone_id, amount=bad)
        assert (invalid.value.code, invalid.value.param) == ("invalid_amount", "amount"), bad
        assert world.snapshot() == before
    # The exact remainder is fine, and ends the milestone.
    world.act(case.client, milestones.release, case.milestone_id, amount=AMOUNT - PART)
    assert str(world.get(case.milestone_id).status) == "released"


# Review: changes requested and resubmission ---------------------------------------------------------


def test_request_changes_stops_the_review_clock_and_a_resubmission_restarts_it(
    world: World,
) -> None:
    case = build(world, "funded", review_period_days=5)
    mid = case.milestone_id
    first = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
    world.act(case.freelancer, milestones.submit, mid, note="v1", evidence=LINK, now=first)
    assert world.get(mid).review_due_at == first + timedelta(days=5)

    world.act(
        case.client,
        milestones.request_changes,
        mid,
        reason="The logo is missing",
        unmet_criteria=[0],
        now=first + timedelta(days=2),
    )
    waiting = world.get(mid)
    assert (str(waiting.status), waiting.review_due_at) == ("changes_requested", None)
    [*_, event] = case.events()
    assert event.data == {"reason": "The logo is missing", "unmet_criteria": [0]}

    second = first + timedelta(days=4)
    submission = world.act(
        case.freelancer, milestones.submit, mid, note="v2 with logo", evidence=LINK, now=second
    )
    assert submission.revision == 2
    again = world.get(mid)
    assert (str(again.status), again.review_due_at) == ("submitted", second + timedelta(days=5))
    revisions = world.act(case.client, milestones.list_submissions, mid)
    assert [(s.revision, s.note) for s in revisions] == [(1, "v1"), (2, "v2 with logo")]
    [*_, event] = case.events()
    assert event.data["revision"] == 2


def test_a_delivery_needs_a_note_or_evidence(world: World) -> None:
    case = build(world, "funded")
    before = world.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        world.act(case.freelancer, milestones.submit, case.milestone_id, note=None, evidence=[])
    assert (refused.value.code, refused.value.param) == ("missing", "evidence")
    assert world.snapshot() == before


# The whole trail -----------------------------------------------------------------------------------


def test_a_milestone_life_leaves_one_event_per_change_in_order(world: World) -> None:
    case = build(world, "draft")
    mid = case.milestone_id
    world.act(case.client, milestones.update_terms, mid, amount=AMOUNT, title="Same amount")
    world.act(case.client, milestones.fund, mid)
    world.act(case.freelancer, milestones.submit, mid, note="v1", evidence=LINK)
    world.act(case.client, milestones.request_changes, mid, reason="Fix it")
    world.act(case.freelancer, milestones.submit, mid, note="v2", evidence=LINK)
    world.act(case.freelancer, milestones.request_release, mid)
    world.act(case.client, milestones.release, mid, amount=PART)
    world.act(case.client, milestones.approve, mid)

    trail = [
        (e.seq, e.action, e.actor_role, e.from_status, e.to_status, e.amount) for e in case.events()
    ]
    assert trail == [
        (1, "created", "client", None, "draft", AMOUNT),
        (2, "terms_edited", "client", "draft", "draft", None),
        (3, "funded", "client", "draft", "funded", AMOUNT),
        (4, "submitted", "freelancer", "funded", "submitted", None),
        (5, "changes_requested", "client", "submitted", "changes_requested", None),
        (6, "submitted", "freelancer", "changes_requested", "submitted", None),
        (7, "release_requested", "freelancer", "submitted", "submitted", None),
        (8, "released_part", "client", "submitted", "submitted", PART),
        (9, "approved", "client", "submitted", "approved", None),
        (10, "released", "client", "approved", "released", AMOUNT - PART),
    ]
    assert world.balance(case.freelancer) == AMOUNT - FEE
    assert world.account_balance("platform_fee:USD") == FEE
