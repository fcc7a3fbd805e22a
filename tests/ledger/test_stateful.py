"""Random sequences of everything that moves money, by random people, on SQLite and PostgreSQL.

A Hypothesis state machine plays two clients, two freelancers, a staff member and an outsider against the
service layer: deposits and payouts (sandbox and manual), projects, proposals, bonuses, milestones (fund,
submit, request changes, approve, release in parts, cancel, cancellation requests), disputes (offers,
acceptance, withdrawal, staff splits, the response deadline) and delayed releases. Any action may be
refused (wrong person, wrong state, not enough money): a refused action must change nothing. An action that
succeeds must move exactly the money it should, no more. After every step the ledger verifies, every
currency sums to zero, the money inside the platform (wallets + escrow + fees + payout clearing) equals
what came in from outside minus what went out, and every milestone's funded amount is released + refunded
+ what its escrow holds, with the fee exactly the fee on everything released.

Runs are short by default (CI: 15 examples of up to 25 steps per backend). For a long hunt:

    MILEPOST_HYPOTHESIS_PROFILE=long .venv/bin/pytest -q tests/ledger/test_stateful.py -p no:cacheprovider
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any, NamedTuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import insert, select

from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute
from milepost.kit.db import Database
from milepost.kit.errors import MilepostError
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.milestones.state import IN_PROGRESS, TERMINAL, MilestoneStatus
from milepost.money import fee_on
from milepost.projects import service as projects
from milepost.projects.models import Project
from milepost.settings import Settings
from milepost.users.models import User
from milepost.wallets import service as wallets
from tests.conftest import empty_tables
from tests.world import World

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much]
settings.register_profile(
    "milepost-stateful-ci",
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "milepost-stateful-long",
    max_examples=400,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=_QUIET,
)
PROFILE = (
    "milepost-stateful-long"
    if os.environ.get("MILEPOST_HYPOTHESIS_PROFILE") == "long"
    else "milepost-stateful-ci"
)

S = MilestoneStatus
CURRENCIES = ["USD", "JPY"]
MONEY_HOLDING = IN_PROGRESS | {S.APPROVED}  # where release and open dispute are allowed
# Positions in the milestone tuple of World.snapshot().
STATUS, FUNDED, RELEASED, REFUNDED, FEE, _LATE_FEE, CANCEL_REQUESTED, _TITLE, AMOUNT = range(9)

index = st.integers(min_value=0, max_value=63)
small_or_large = st.one_of(st.integers(1, 20), st.integers(1, 50_000), st.integers(1, 2_000_000))
ROLES = ["client", "freelancer", "staff", "outsider", "other client"]


def by(role: str) -> st.SearchStrategy[str]:
    """Who acts, relative to the target's project: mostly ``role``, sometimes anybody else."""
    return st.sampled_from([role] * 5 + ROLES)


class ProjectRef(NamedTuple):
    id: str
    client: str
    freelancer: str | None
    currency: str


def user_key(user_id: str, currency: str) -> str:
    return f"user:{user_id}:{currency}"


def escrow_key(milestone_id: str, currency: str) -> str:
    return f"escrow:{milestone_id}:{currency}"


def fee_key(currency: str) -> str:
    return f"platform_fee:{currency}"


def external_key(provider: str, currency: str) -> str:
    return f"external:{provider}:{currency}"


def clearing_key(provider: str, currency: str) -> str:
    return f"payout_clearing:{provider}:{currency}"


def escrow_of(milestone: tuple[Any, ...]) -> int:
    return int(milestone[FUNDED] - milestone[RELEASED] - milestone[REFUNDED])


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, database: Database, cast: list[dict[str, Any]]) -> None:
        super().__init__()
        self.database = database
        self.cast = cast

    # Setup ----------------------------------------------------------------------------------------------

    @initialize(
        rate=st.sampled_from([1000, 0, 333, 2500, 10_000]),
        currencies=st.lists(st.sampled_from(CURRENCIES), min_size=2, max_size=2),
        amounts=st.lists(small_or_large, min_size=2, max_size=2),
    )
    def start(self, rate: int, currencies: list[str], amounts: list[int]) -> None:
        """An empty database, the cast, money in the clients' wallets, and milestones to act on: on an
        awarded project one partly released, one funded, one submitted; on an open project one funded."""
        empty_tables(self.database)
        self.rate = rate
        self.world = World(self.database, Settings(fee_bps=rate, providers="sandbox,manual"))
        self.clients, self.freelancers = self.users("client", 2), self.users("freelancer", 2)
        [self.staff] = self.users("staff", 1)
        [self.outsider] = self.users("outsider", 1)
        self.people = [*self.clients, *self.freelancers, self.staff, self.outsider]
        self.by_id = {person.id: person for person in self.people}
        # Everyone has a bank account for manual payouts.
        self.accounts = {person.id: self.world.destination(person).id for person in self.people}
        # What came in from the outside world and what went back out, per currency (our own record).
        self.came_in: Counter[str] = Counter()
        self.went_out: Counter[str] = Counter()
        self.pending_deposits: list[tuple[str, str, str, int]] = []  # id, user, currency, amount
        self.pending_payouts: list[tuple[str, str, str, int]] = []  # id, user, currency, amount
        self.projects: dict[str, ProjectRef] = {}
        self.milestone_projects: dict[str, str] = {}
        self.disputes: list[str] = []
        self.offers: list[tuple[str, str, int]] = []  # dispute id, offer id, to_freelancer
        self.proposals: list[str] = []
        self.state = self.world.snapshot()

        for client in self.clients:
            for currency in CURRENCIES:
                self.deposit(self.people.index(client), 10_000_000, currency, "sandbox")
        hired = [self.freelancers[0], None]
        for n, (client, currency, amount) in enumerate(
            zip(self.clients, currencies, amounts, strict=True)
        ):
            freelancer = hired[n]
            project = self.world.project(client, freelancer, currency)
            self.projects[project.id] = ProjectRef(
                project.id, client.id, project.freelancer_id, currency
            )
            # Hired: one funded and partly released, one funded, one submitted. Open: one funded.
            for step in range(3 if freelancer else 1):
                milestone = self.world.milestone(client, project, amount + step + 1)
                self.world.act(client, milestones.fund, milestone.id)
                if step == 0 and freelancer:
                    self.world.act(
                        client, milestones.release, milestone.id, amount=(amount + 1) // 2
                    )
                if step == 2:
                    self.world.act(
                        freelancer, milestones.submit, milestone.id, note="Done", evidence=[]
                    )
        self.state = self.world.snapshot()
        self.refresh_targets()
        assert self.world.verify().ok

    def users(self, role: str, count: int) -> list[User]:
        """The same people in every example: made through the service once (hashing a password is
        slow), then put back as they were after each example's tables are emptied."""
        rows = [row for row in self.cast if row["name"].lower() == role]
        if len(rows) < count:
            for _ in range(count):
                user = self.world.user(role, staff=role == "staff")
                self.cast.append({c.name: getattr(user, c.name) for c in User.__table__.columns})
            rows = [row for row in self.cast if row["name"].lower() == role]
        else:
            with self.database.unit_of_work() as session:
                session.execute(insert(User), rows)
        return [User(**row) for row in rows]

    # Helpers --------------------------------------------------------------------------------------------

    def person(self, i: int) -> User:
        return self.people[i % len(self.people)]

    def acting(self, role: str, project: ProjectRef) -> User:
        if role == "client":
            return self.by_id[project.client]
        if role == "freelancer":
            return self.by_id[project.freelancer or self.freelancers[0].id]
        if role == "staff":
            return self.staff
        if role == "outsider":
            return self.outsider
        return next(client for client in self.clients if client.id != project.client)

    def try_act(self, user: User | None, action: Any, *args: Any, **kwargs: Any) -> Any | None:
        """Run the action; if it is refused, check that nothing changed and return None."""
        before = self.state
        try:
            result = self.world.act(user, action, *args, **kwargs)
        except MilepostError:
            after = self.world.snapshot()
            assert after == before, f"a refused {action.__name__} changed something"
            return None
        self.before, self.state = before, self.world.snapshot()
        self.refresh_targets()
        return result

    def refresh_targets(self) -> None:
        """Milestones appear through create_milestone and accept_proposal, freelancers through
        accept_proposal: read them back."""
        with self.database.read_only() as session:
            for milestone_id, project_id in session.execute(
                select(Milestone.id, Milestone.project_id)
            ):
                self.milestone_projects.setdefault(milestone_id, project_id)
            for project_id, freelancer_id in session.execute(
                select(Project.id, Project.freelancer_id)
            ):
                if project_id in self.projects:
                    self.projects[project_id] = self.projects[project_id]._replace(
                        freelancer=freelancer_id
                    )

    def moved(self) -> dict[str, int]:
        """How the last successful action changed the account balances."""
        before, after = self.before["accounts"], self.state["accounts"]
        return {
            key: after.get(key, 0) - before.get(key, 0)
            for key in set(before) | set(after)
            if after.get(key, 0) != before.get(key, 0)
        }

    def money_moved(self, expected: dict[str, int]) -> None:
        """The last successful action changed the account balances by exactly ``expected``."""
        assert self.moved() == {key: delta for key, delta in expected.items() if delta}

    def has_milestones(self) -> bool:
        return bool(self.state["milestones"])

    def pick_milestone(self, i: int) -> tuple[str, tuple[Any, ...], ProjectRef]:
        """Mostly a milestone that is not over yet (index < 48), else any."""
        ids = sorted(self.state["milestones"])
        live = [m for m in ids if self.state["milestones"][m][STATUS] not in TERMINAL]
        if live and i < 48:
            ids = live
        milestone_id = ids[i % len(ids)]
        project = self.projects[self.milestone_projects[milestone_id]]
        return milestone_id, self.state["milestones"][milestone_id], project

    def milestone_now(self, milestone_id: str) -> tuple[Any, ...]:
        now: tuple[Any, ...] = self.state["milestones"][milestone_id]
        return now

    def pick_project(self, i: int) -> ProjectRef:
        return self.projects[sorted(self.projects)[i % len(self.projects)]]

    def pick_dispute(self, i: int) -> tuple[Dispute, tuple[Any, ...], ProjectRef]:
        with self.database.read_only() as session:
            dispute = session.get(Dispute, self.disputes[i % len(self.disputes)])
            assert dispute is not None
        project = self.projects[self.milestone_projects[dispute.milestone_id]]
        return dispute, self.state["milestones"][dispute.milestone_id], project

    def paid_out_of_escrow(
        self,
        milestone_id: str,
        before: tuple[Any, ...],
        project: ProjectRef,
        to_freelancer: int,
        to_client: int,
    ) -> None:
        """Escrow -> freelancer (less the fee on the cumulative release) and client, nothing else;
        the milestone's totals in step."""
        assert project.freelancer is not None
        fee = fee_on(before[RELEASED] + to_freelancer, self.rate) - before[FEE]
        expected: dict[str, int] = defaultdict(int)
        expected[escrow_key(milestone_id, project.currency)] -= to_freelancer + to_client
        expected[user_key(project.freelancer, project.currency)] += to_freelancer - fee
        expected[fee_key(project.currency)] += fee
        expected[user_key(project.client, project.currency)] += to_client
        self.money_moved(expected)
        after = self.milestone_now(milestone_id)
        assert after[RELEASED] == before[RELEASED] + to_freelancer
        assert after[REFUNDED] == before[REFUNDED] + to_client
        assert after[FEE] == before[FEE] + fee
        assert after[FUNDED] == before[FUNDED]

    # Wallets --------------------------------------------------------------------------------------------

    @rule(
        who=index,
        amount=st.one_of(small_or_large, st.sampled_from([0, -5])),
        currency=st.sampled_from(CURRENCIES),
        provider=st.sampled_from(["sandbox", "sandbox", "manual"]),
    )
    def deposit(self, who: int, amount: int, currency: str, provider: str) -> None:
        user = self.person(who)
        deposit = self.try_act(
            user, wallets.create_deposit, amount=amount, currency=currency, provider=provider
        )
        if deposit is None:
            assert amount <= 0, "a valid deposit was refused"
            return
        assert amount > 0
        if provider == "sandbox":
            self.came_in[currency] += amount
            self.money_moved(
                {user_key(user.id, currency): amount, external_key("sandbox", currency): -amount}
            )
        else:  # waits for staff to confirm the bank transfer
            self.money_moved({})
            self.pending_deposits.append((deposit.id, user.id, currency, amount))

    @precondition(lambda self: self.pending_deposits)
    @rule(who=index, which=index)
    def confirm_deposit(self, who: int, which: int) -> None:
        actor = self.person(who)
        pending = self.pending_deposits[which % len(self.pending_deposits)]
        deposit_id, user_id, currency, amount = pending
        if self.try_act(actor, wallets.confirm_deposit, deposit_id) is None:
            assert not actor.is_staff, "staff could not confirm a pending deposit"
            return
        assert actor.is_staff
        self.pending_deposits.remove(pending)
        self.came_in[currency] += amount
        self.money_moved(
            {user_key(user_id, currency): amount, external_key("manual", currency): -amount}
        )

    @precondition(lambda self: self.pending_deposits)
    @rule(who=index, which=index)
    def reject_deposit(self, who: int, which: int) -> None:
        actor = self.person(who)
        pending = self.pending_deposits[which % len(self.pending_deposits)]
        if self.try_act(actor, wallets.reject_deposit, pending[0], reason="Never arrived") is None:
            assert not actor.is_staff, "staff could not reject a pending deposit"
            return
        assert actor.is_staff
        self.pending_deposits.remove(pending)
        self.money_moved({})  # nothing was credited, so nothing goes back

    @rule(
        who=index,
        amount=st.one_of(small_or_large, st.just("everything")),
        currency=st.sampled_from(CURRENCIES),
        provider=st.sampled_from(["sandbox", "sandbox", "manual"]),
    )
    def payout(self, who: int, amount: int | str, currency: str, provider: str) -> None:
        user = self.person(who)
        available = self.state["accounts"].get(user_key(user.id, currency), 0)
        value: int = available if amount == "everything" else int(amount)
        payout = self.try_act(
            user,
            wallets.create_payout,
            amount=value,
            currency=currency,
            provider=provider,
            destination_id=self.accounts[user.id],
        )
        if payout is None:
            assert not 0 < value <= available, "a payout within the available balance was refused"
            return
        assert isinstance(value, int) and 0 < value <= available
        if provider == "sandbox":
            self.went_out[currency] += value
            self.money_moved(
                {user_key(user.id, currency): -value, external_key("sandbox", currency): value}
            )
        else:  # the money waits in clearing until staff mark the transfer sent
            self.money_moved(
                {user_key(user.id, currency): -value, clearing_key("manual", currency): value}
            )
            self.pending_payouts.append((payout.id, user.id, currency, value))

    @precondition(lambda self: self.pending_payouts)
    @rule(who=index, which=index)
    def mark_payout_paid(self, who: int, which: int) -> None:
        actor = self.person(who)
        pending = self.pending_payouts[which % len(self.pending_payouts)]
        payout_id, _user_id, currency, amount = pending
        if self.try_act(actor, wallets.mark_payout_paid, payout_id) is None:
            assert not actor.is_staff, "staff could not mark a pending payout paid"
            return
        assert actor.is_staff
        self.pending_payouts.remove(pending)
        self.went_out[currency] += amount
        self.money_moved(
            {clearing_key("manual", currency): -amount, external_key("manual", currency): amount}
        )

    @precondition(lambda self: self.pending_payouts)
    @rule(who=index, which=index)
    def fail_payout(self, who: int, which: int) -> None:
        actor = self.person(who)
        pending = self.pending_payouts[which % len(self.pending_payouts)]
        payout_id, user_id, currency, amount = pending
        if self.try_act(actor, wallets.fail_payout, payout_id, reason="Bounced") is None:
            assert not actor.is_staff, "staff could not fail a pending payout"
            return
        assert actor.is_staff
        self.pending_payouts.remove(pending)
        # The bounced transfer's money is back in the wallet; it never left the platform.
        self.money_moved(
            {user_key(user_id, currency): amount, clearing_key("manual", currency): -amount}
        )

    # Projects -------------------------------------------------------------------------------------------

    @rule(
        who=index,
        freelancer=st.one_of(
            st.none(),
            st.tuples(st.just("freelancer"), st.integers(0, 1)),
            st.tuples(st.just("anybody"), index),
        ),
        currency=st.sampled_from(CURRENCIES),
    )
    def create_project(self, who: int, freelancer: tuple[str, int] | None, currency: str) -> None:
        """Mostly a client's project, naming one of the freelancers, nobody (open), or anybody."""
        client = self.clients[who % 2] if who < 48 else self.person(who)
        if freelancer is None:
            named = None
        elif freelancer[0] == "freelancer":
            named = self.freelancers[freelancer[1]]
        else:
            named = self.person(freelancer[1])
        project = self.try_act(
            client,
            projects.create_project,
            title="Project",
            currency=currency,
            freelancer_id=None if named is None else named.id,
        )
        if project is None:
            assert named is not None and named.id == client.id
            return
        self.money_moved({})
        self.projects[project.id] = ProjectRef(
            project.id, client.id, project.freelancer_id, currency
        )

    @rule(who=index, which=index, amounts=st.lists(small_or_large, min_size=1, max_size=3))
    def propose(self, who: int, which: int, amounts: list[int]) -> None:
        project = self.pick_project(which)
        proposal = self.try_act(
            self.person(who),
            projects.create_proposal,
            project.id,
            amount=sum(amounts),
            milestones=[{"title": f"Part {n}", "amount": a} for n, a in enumerate(amounts)],
        )
        if proposal is None:
            return
        assert project.freelancer is None and self.person(who).id != project.client
        self.money_moved({})
        self.proposals.append(proposal.id)

    @precondition(lambda self: self.proposals)
    @rule(who=index, which=index)
    def accept_proposal(self, who: int, which: int) -> None:
        proposal_id = self.proposals[which % len(self.proposals)]
        project = self.try_act(self.person(who), projects.accept_proposal, proposal_id)
        if project is None:
            return
        assert self.person(who).id == project.client_id
        self.money_moved({})

    @rule(who=by("client"), which=index, amount=small_or_large)
    def bonus(self, who: str, which: int, amount: int) -> None:
        project = self.pick_project(which)
        actor = self.acting(who, project)
        if self.try_act(actor, projects.create_bonus, project.id, amount=amount) is None:
            return
        assert actor.id == project.client and project.freelancer is not None
        fee = fee_on(amount, self.rate)
        self.money_moved(
            {
                user_key(project.client, project.currency): -amount,
                user_key(project.freelancer, project.currency): amount - fee,
                fee_key(project.currency): fee,
            }
        )

    # Milestones -----------------------------------------------------------------------------------------

    @rule(who=by("client"), which=index, amount=small_or_large, delay=st.sampled_from([0, 0, 2]))
    def create_milestone(self, who: str, which: int, amount: int, delay: int) -> None:
        project = self.pick_project(which)
        actor = self.acting(who, project)
        milestone = self.try_act(
            actor,
            milestones.create_milestone,
            project.id,
            title="Milestone",
            amount=amount,
            acceptance_criteria=["It works"],
            release_delay_days=delay,
        )
        if milestone is None:
            assert actor.id != project.client, "the client could not create a milestone"
            return
        assert actor.id == project.client
        self.money_moved({})
        assert self.milestone_now(milestone.id)[STATUS] == S.DRAFT

    @precondition(has_milestones)
    @rule(who=by("client"), which=index)
    def fund(self, who: str, which: int) -> None:
        milestone_id, before, project = self.pick_milestone(which)
        actor = self.acting(who, project)
        available = self.state["accounts"].get(user_key(project.client, project.currency), 0)
        if self.try_act(actor, milestones.fund, milestone_id) is None:
            assert (
                actor.id != project.client
                or before[STATUS] != S.DRAFT
                or available < before[AMOUNT]
            ), "the client could not fund a draft they can afford"
            return
        assert actor.id == project.client and before[STATUS] == S.DRAFT
        assert before[AMOUNT] <= available
        after = self.milestone_now(milestone_id)
        assert after[STATUS] == S.FUNDED and after[FUNDED] == before[AMOUNT]
        self.money_moved(
            {
                user_key(project.client, project.currency): -before[AMOUNT],
                escrow_key(milestone_id, project.currency): before[AMOUNT],
            }
        )

    @precondition(has_milestones)
    @rule(who=by("freelancer"), which=index)
    def submit(self, who: str, which: int) -> None:
        milestone_id, before, project = self.pick_milestone(which)
        actor = self.acting(who, project)
        submission = self.try_act(
            actor,
            milestones.submit,
            milestone_id,
            note="Done",
            evidence=[{"type": "link", "url": "https://example.com/pr/1"}],
        )
        if submission is None:
            return
        assert actor.id == project.freelancer
        assert before[STATUS] in (S.FUNDED, S.CHANGES_REQUESTED)
        assert self.milestone_now(milestone_id)[STATUS] == S.SUBMITTED
        self.money_moved({})

    @precondition(has_milestones)
    @rule(who=by("client"), which=index)
    def request_changes(self, who: str, which: int) -> None:
        milestone_id, before, project = self.pick_milestone(which)
        actor = self.acting(who, project)
        if self.try_act(actor, milestones.request_changes, milestone_id, reason="No") is None:
            return
        assert actor.id == project.client and before[STATUS] == S.SUBMITTED
        assert self.milestone_now(milestone_id)[STATUS] == S.CHANGES_REQUESTED
        self.money_moved({})

    @precondition(has_milestones)
    @rule(who=by("client"), which=index)
    def approve(self, who: str, which: int) -> None:
        milestone_id, before, project = self.pick_milestone(which)
        actor = self.acting(who, project)
        if self.try_act(actor, milestones.approve, milestone_id) is None:
            return
        assert actor.id == project.client and before[STATUS] == S.SUBMITTED
        if self.milestone_now(milestone_id)[STATUS] == S.RELEASED:  # no delay: all goes at once
            self.paid_out_of_escrow(milestone_id, before, project, escrow_of(before), 0)
        else:
            assert self.milestone_now(milestone_id)[STATUS] == S.APPROVED
            self.money_moved({})

    @precondition(lambda self: S.APPROVED in {m[STATUS] for m in self.state["milestones"].values()})
    @rule(which=index)
    def release_matured(self, which: int) -> None:
        """The worker, days later, releases an approved milestone whose release delay has passed."""
        approved = sorted(k for k, m in self.state["milestones"].items() if m[STATUS] == S.APPROVED)
        milestone_id = approved[which % len(approved)]
        before = self.state["milestones"][milestone_id]
        project = self.projects[self.milestone_projects[milestone_id]]
        later = utcnow() + timedelta(days=3)
        if self.try_act(None, milestones.release_matured, milestone_id, now=later) is None:
            assert before[STATUS] != S.APPROVED, "a matured release was refused"
            return
        assert before[STATUS] == S.APPROVED
        self.paid_out_of_escrow(milestone_id, before, project, escrow_of(before), 0)
        assert self.milestone_now(milestone_id)[STATUS] == S.RELEASED

    @precondition(has_milestones)
    @rule(
        who=by("client"),
        which=index,
        amount=st.one_of(
            st.none(),
            small_or_large,
            st.sampled_from(["one", "a third", "half", "all-but-one", "all", "one too many"]),
        ),
    )
    def release(self, who: str, which: int, amount: int | str | None) -> None:
        """All that is left (None), a part of it, or more than the escrow holds."""
        milestone_id, before, project = self.pick_milestone(which)
        escrow = escrow_of(before)
        if isinstance(amount, str):
            amount = {
                "one": 1,
                "a third": escrow // 3,
                "half": escrow // 2,
                "all-but-one": escrow - 1,
                "all": escrow,
                "one too many": escrow + 1,
            }[amount]
        actor = self.acting(who, project)
        if self.try_act(actor, milestones.release, milestone_id, amount=amount) is None:
            assert not (
                actor.id == project.client
                and project.freelancer is not None
                and before[STATUS] in MONEY_HOLDING
                and (amount is None or 0 < int(amount) <= escrow)
            ), "the client could not release money the escrow holds"
            return
        assert actor.id == project.client and before[STATUS] in MONEY_HOLDING
        value = escrow if amount is None else amount
        assert isinstance(value, int) and 0 < value <= escrow
        self.paid_out_of_escrow(milestone_id, before, project, value, 0)
        status = self.milestone_now(milestone_id)[STATUS]
        assert status == (S.RELEASED if value == escrow else before[STATUS])

    @precondition(has_milestones)
    @rule(who=by("freelancer"), which=index)
    def cancel(self, who: str, which: int) -> None:
        milestone_id, before, project = self.pick_milestone(which)
        actor = self.acting(who, project)
        if self.try_act(actor, milestones.cancel, milestone_id) is None:
            return
        if before[STATUS] == S.DRAFT:
            assert actor.id == project.client or actor.is_staff
        else:
            # Money in escrow: the freelancer or staff, the client only while nobody is hired.
            assert before[STATUS] in IN_PROGRESS
            assert (
                actor.id == project.freelancer
                or actor.is_staff
                or (actor.id == project.client and project.freelancer is None)
            )
        escrow = escrow_of(before)
        self.money_moved(
            {
                escrow_key(milestone_id, project.currency): -escrow,
                user_key(project.client, project.currency): escrow,
            }
        )
        after = self.milestone_now(milestone_id)
        assert after[STATUS] == S.CANCELLED and after[REFUNDED] == before[REFUNDED] + escrow

    @precondition(has_milestones)
    @rule(who=by("client"), which=index)
    def request_cancellation(self, who: str, which: int) -> None:
        milestone_id, before, project = self.pick_milestone(which)
        actor = self.acting(who, project)
        if (
            self.try_act(actor, milestones.request_cancellation, milestone_id, reason="Stop")
            is None
        ):
            return
        assert actor.id == project.client and not before[CANCEL_REQUESTED]
        assert before[STATUS] in IN_PROGRESS
        self.money_moved({})
        assert self.milestone_now(milestone_id)[CANCEL_REQUESTED]

    @precondition(has_milestones)
    @rule(who=by("freelancer"), which=index, accept=st.booleans())
    def answer_cancellation(self, who: str, which: int, accept: bool) -> None:
        milestone_id, before, project = self.pick_milestone(which)
        actor = self.acting(who, project)
        if self.try_act(actor, milestones.answer_cancellation, milestone_id, accept=accept) is None:
            return
        assert actor.id == project.freelancer and before[CANCEL_REQUESTED]
        after = self.milestone_now(milestone_id)
        assert not after[CANCEL_REQUESTED]
        escrow = escrow_of(before)
        if accept:
            assert after[STATUS] == S.CANCELLED
            self.money_moved(
                {
                    escrow_key(milestone_id, project.currency): -escrow,
                    user_key(project.client, project.currency): escrow,
                }
            )
        else:
            assert after[STATUS] == before[STATUS]
            self.money_moved({})

    # Disputes -------------------------------------------------------------------------------------------

    @precondition(has_milestones)
    @rule(who=by("freelancer"), which=index)
    def open_dispute(self, who: str, which: int) -> None:
        milestone_id, before, project = self.pick_milestone(which)
        actor = self.acting(who, project)
        dispute = self.try_act(actor, disputes.open_dispute, milestone_id, reason="Unhappy")
        if dispute is None:
            return
        assert actor.id in (project.client, project.freelancer)
        assert before[STATUS] in MONEY_HOLDING
        assert self.milestone_now(milestone_id)[STATUS] == S.DISPUTED
        self.money_moved({})
        self.disputes.append(dispute.id)

    @precondition(lambda self: self.disputes)
    @rule(who=by("client"), which=index, share=st.integers(0, 100), within=st.booleans())
    def make_offer(self, who: str, which: int, share: int, within: bool) -> None:
        dispute, before, project = self.pick_dispute(which)
        escrow = escrow_of(before)
        to_freelancer = escrow * share // 100 if within else escrow + 1 + share
        actor = self.acting(who, project)
        offer = self.try_act(actor, disputes.make_offer, dispute.id, to_freelancer=to_freelancer)
        if offer is None:
            return
        assert actor.id in (project.client, project.freelancer)
        assert 0 <= to_freelancer <= escrow and before[STATUS] == S.DISPUTED
        self.money_moved({})
        self.offers.append((dispute.id, offer.id, to_freelancer))

    @precondition(lambda self: self.offers)
    @rule(who=by("freelancer"), which=index)
    def accept_offer(self, who: str, which: int) -> None:
        dispute_id, offer_id, to_freelancer = self.offers[which % len(self.offers)]
        dispute, before, project = self.pick_dispute(self.disputes.index(dispute_id))
        actor = self.acting(who, project)
        if self.try_act(actor, disputes.accept_offer, dispute_id, offer_id) is None:
            return
        assert actor.id in (project.client, project.freelancer) and before[STATUS] == S.DISPUTED
        escrow = escrow_of(before)
        self.paid_out_of_escrow(
            dispute.milestone_id, before, project, to_freelancer, escrow - to_freelancer
        )
        assert self.milestone_now(dispute.milestone_id)[STATUS] == S.RESOLVED

    @precondition(lambda self: self.disputes)
    @rule(who=by("freelancer"), which=index)
    def withdraw_dispute(self, who: str, which: int) -> None:
        dispute, before, project = self.pick_dispute(which)
        actor = self.acting(who, project)
        if self.try_act(actor, disputes.withdraw, dispute.id) is None:
            return
        assert actor.id == dispute.opened_by and before[STATUS] == S.DISPUTED
        assert self.milestone_now(dispute.milestone_id)[STATUS] == dispute.status_before
        self.money_moved({})

    @precondition(lambda self: self.disputes)
    @rule(
        who=by("staff"),
        which=index,
        share=st.integers(0, 100),
        off_by=st.sampled_from([0, 0, 1, -1]),
    )
    def staff_resolve(self, who: str, which: int, share: int, off_by: int) -> None:
        dispute, before, project = self.pick_dispute(which)
        escrow = escrow_of(before)
        to_freelancer = escrow * share // 100
        to_client = escrow - to_freelancer + off_by
        actor = self.acting(who, project)
        resolved = self.try_act(
            actor, disputes.resolve, dispute.id, to_freelancer=to_freelancer, to_client=to_client
        )
        if resolved is None:
            return
        assert actor.is_staff and off_by == 0 and before[STATUS] == S.DISPUTED
        self.paid_out_of_escrow(dispute.milestone_id, before, project, to_freelancer, to_client)
        assert self.milestone_now(dispute.milestone_id)[STATUS] == S.RESOLVED

    @precondition(lambda self: self.disputes)
    @rule(which=index)
    def resolve_unanswered(self, which: int) -> None:
        """The worker, after the response window: the opener's side gets the whole escrow."""
        dispute, before, project = self.pick_dispute(which)
        later = utcnow() + timedelta(days=8)
        if self.try_act(None, disputes.resolve_unanswered, dispute.id, now=later) is None:
            return
        assert before[STATUS] == S.DISPUTED and dispute.responded_at is None
        escrow = escrow_of(before)
        to_freelancer = escrow if dispute.opener_role == "freelancer" else 0
        self.paid_out_of_escrow(
            dispute.milestone_id, before, project, to_freelancer, escrow - to_freelancer
        )

    # After every step -----------------------------------------------------------------------------------

    @invariant()
    def ledger_verifies(self) -> None:
        report = self.world.verify()
        assert report.ok, "\n".join(report.problems)

    @invariant()
    def no_money_created_or_lost(self) -> None:
        totals: Counter[str] = Counter()
        inside: Counter[str] = Counter()  # wallets, escrow, fees, payout clearing
        outside: Counter[str] = Counter()  # the payment providers' side
        for key, balance in self.state["accounts"].items():
            currency = key.rsplit(":", 1)[1]
            totals[currency] += balance
            if key.startswith("external:"):
                outside[currency] += balance
            else:
                inside[currency] += balance
                assert balance >= 0, f"{key} is negative: {balance}"
        for currency in set(totals) | set(self.came_in) | set(self.went_out):
            assert totals[currency] == 0, f"{currency} does not sum to zero"
            held = self.came_in[currency] - self.went_out[currency]
            assert inside[currency] == held, (
                f"{currency}: wallets + escrow + fees + clearing hold {inside[currency]}, "
                f"but {self.came_in[currency]} came in and {self.went_out[currency]} went out"
            )
            assert outside[currency] == -held

    @invariant()
    def every_milestone_accounts_for_its_money(self) -> None:
        accounts = self.state["accounts"]
        for milestone_id, m in self.state["milestones"].items():
            currency = self.projects[self.milestone_projects[milestone_id]].currency
            escrow = accounts.get(escrow_key(milestone_id, currency), 0)
            assert m[FUNDED] == m[RELEASED] + m[REFUNDED] + escrow, (milestone_id, m, escrow)
            # A milestone paid in parts costs exactly what it would cost paid at once.
            assert m[FEE] == fee_on(m[RELEASED], self.rate), (milestone_id, m)
            if m[STATUS] in TERMINAL:
                assert escrow == 0, (m[STATUS], escrow)
            if m[STATUS] == S.DRAFT:
                assert m[FUNDED] == 0
            if m[STATUS] == S.RELEASED:
                assert m[REFUNDED] == 0 and m[RELEASED] == m[FUNDED]


def test_random_money_movements_keep_the_ledger_whole(db: Database) -> None:
    cast: list[dict[str, Any]] = []  # the people, made once per test and restored per example
    # Hypothesis calls the factory for each run: a lambda binds the database and the cast.
    run_state_machine_as_test(
        lambda: LedgerMachine(db, cast),  # type: ignore[arg-type]
        settings=settings.get_profile(PROFILE),
    )
