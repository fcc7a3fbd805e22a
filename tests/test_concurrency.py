"""Races on the same money, on SQLite and PostgreSQL: exactly the money that exists moves, once.

Every racer runs in its own thread (or process) with its own unit of work, as concurrent requests would.
A racer either succeeds or gets a typed error; nothing else may escape, and nobody may hang.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select

from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.errors import (
    Conflict,
    InsufficientFunds,
    InvalidState,
    TransientConflict,
    ValidationFailed,
)
from milepost.ledger.models import EntryKind, JournalEntry
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.milestones.state import MilestoneStatus
from milepost.projects import service as projects
from milepost.settings import Settings
from milepost.users.models import User
from milepost.users.service import create_user
from tests.world import World

S = MilestoneStatus
# A race that has not finished by then is a hang (SQLite's busy timeout and PostgreSQL's lock timeout
# are both 30 s, so an honest queue never gets close).
DEADLINE_SECONDS = 45
OK = "ok"


def act_as(
    db: Database,
    settings: Settings,
    user_id: str,
    action: Callable[..., Any],
    *args: Any,
    **kw: Any,
) -> Any:
    """One request: its own unit of work, the actor loaded in it."""
    with db.unit_of_work() as session:
        actor = session.get(User, user_id)
        assert actor is not None
        return action(Context(session, actor, settings=settings), *args, **kw)


def race(work: Sequence[Callable[[], object]]) -> list[object]:
    """Start every callable at the same moment, each in its own thread; return what each returned
    (``OK``) or raised. Fails if any thread is still running at the deadline."""
    barrier = threading.Barrier(len(work))
    outcomes: list[object] = [None] * len(work)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=DEADLINE_SECONDS)
            work[index]()
            outcomes[index] = OK
        except BaseException as error:  # recorded and judged by the test
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(work))]
    deadline = time.monotonic() + DEADLINE_SECONDS
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = sum(thread.is_alive() for thread in threads)
    assert hung == 0, f"{hung} of {len(threads)} threads still running after {DEADLINE_SECONDS} s"
    return outcomes


def winners(outcomes: Sequence[object]) -> list[int]:
    return [index for index, outcome in enumerate(outcomes) if outcome == OK]


def assert_losers_typed(outcomes: Sequence[object], allowed: tuple[type[Exception], ...]) -> None:
    for outcome in outcomes:
        if outcome == OK:
            continue
        assert type(outcome) in allowed, f"untyped or unexpected error: {outcome!r}"


def entries(world: World, milestone_id: str, kind: EntryKind) -> int:
    with world.db.read_only() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(JournalEntry)
                .where(JournalEntry.milestone_id == milestone_id, JournalEntry.kind == kind)
            )
            or 0
        )


def escrow_of(world: World, milestone: Milestone) -> int:
    return world.account_balance(f"escrow:{milestone.id}:{milestone.currency}")


# Releases from one escrow ---------------------------------------------------------------------------------


def test_twenty_releases_race_for_one_escrow_and_exactly_the_escrow_moves(
    world: World, db: Database
) -> None:
    client, freelancer, milestone = world.submitted(amount=10_000)
    wallet_before = world.balance(client)

    outcomes = race(
        [
            lambda: act_as(
                db, world.settings, client.id, milestones.release, milestone.id, amount=1_000
            )
            for _ in range(20)
        ]
    )

    assert len(winners(outcomes)) == 10
    assert_losers_typed(outcomes, (InsufficientFunds, InvalidState, Conflict, TransientConflict))
    done = world.get(milestone.id)
    assert done.status is S.RELEASED
    assert (done.released_amount, done.fee_amount, done.escrow_balance) == (10_000, 1_000, 0)
    assert escrow_of(world, milestone) == 0
    assert world.balance(freelancer) == 9_000
    assert world.account_balance("platform_fee:USD") == 1_000
    assert world.balance(client) == wallet_before
    assert entries(world, milestone.id, EntryKind.RELEASE) == 10


@pytest.mark.parametrize("backend", ["postgres"])
def test_releases_from_separate_processes_move_only_the_money_in_escrow(
    world: World, db: Database
) -> None:
    """Separate processes, each with its own engine: 8 ask for 3,000 from an escrow of 10,000."""
    client, freelancer, milestone = world.submitted(amount=10_000)
    processes_count = 8
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes_count)
    results = context.Queue()
    processes = [
        context.Process(
            target=release_in_own_process,
            args=(db.url, client.id, milestone.id, 3_000, barrier, results),
            daemon=True,
        )
        for _ in range(processes_count)
    ]
    deadline = time.monotonic() + DEADLINE_SECONDS
    for process in processes:
        process.start()
    try:
        outcomes = [
            results.get(timeout=max(0.1, deadline - time.monotonic()))
            for _ in range(processes_count)
        ]
    finally:
        for process in processes:
            process.join(timeout=max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
    assert all(process.exitcode == 0 for process in processes)

    assert sorted(outcomes) == sorted([OK] * 3 + ["InsufficientFunds"] * 5), outcomes
    left = world.get(milestone.id)
    assert left.status is S.SUBMITTED
    assert (left.released_amount, left.fee_amount, left.escrow_balance) == (9_000, 900, 1_000)
    assert escrow_of(world, milestone) == 1_000
    assert world.balance(freelancer) == 8_100
    assert entries(world, milestone.id, EntryKind.RELEASE) == 3


def release_in_own_process(
    url: str,
    user_id: str,
    milestone_id: str,
    amount: int,
    barrier: Any,
    results: Any,
) -> None:
    """Runs in a spawned process: its own Database, then one release; reports the outcome's name."""
    from milepost import subscribers

    subscribers.install()  # a spawned process starts with nothing subscribed, like any other process
    database = Database(url)
    try:
        with database.engine.connect():
            pass  # connect before the start line, so that the race is on the money
        barrier.wait(timeout=DEADLINE_SECONDS)
        try:
            act_as(
                database,
                Settings(fee_bps=1000, providers="sandbox,manual"),
                user_id,
                milestones.release,
                milestone_id,
                amount=amount,
            )
            results.put(OK)
        except (InsufficientFunds, Conflict) as error:
            results.put(type(error).__name__)
        except BaseException as error:
            results.put(f"unexpected {type(error).__name__}: {error}")
    finally:
        database.dispose()


# Funding from one wallet ----------------------------------------------------------------------------------


def test_twenty_fundings_race_for_a_wallet_holding_seven(world: World, db: Database) -> None:
    amount = 50_000
    client, _freelancer, project = world.parties(wallet=7 * amount)
    drafts = [world.milestone(client, project, amount, title=f"Part {n}") for n in range(20)]

    outcomes = race(
        [
            partial(act_as, db, world.settings, client.id, milestones.fund, milestone.id)
            for milestone in drafts
        ]
    )

    won = winners(outcomes)
    assert len(won) == 7
    assert_losers_typed(outcomes, (InsufficientFunds, Conflict, TransientConflict))
    assert any(isinstance(outcome, InsufficientFunds) for outcome in outcomes)
    assert all(
        outcome.status == 402 for outcome in outcomes if isinstance(outcome, InsufficientFunds)
    )
    assert world.balance(client) == 0
    for index, draft in enumerate(drafts):
        now = world.get(draft.id)
        if index in won:
            assert (now.status, now.funded_amount, escrow_of(world, draft)) == (
                S.FUNDED,
                amount,
                amount,
            )
        else:
            assert (now.status, now.funded_amount, escrow_of(world, draft)) == (S.DRAFT, 0, 0)


# Approve against cancel -----------------------------------------------------------------------------------


def test_approve_and_cancels_race_on_one_delivery_and_one_outcome_wins(
    world: World, db: Database
) -> None:
    staff = world.user("staff", staff=True)
    outcomes_seen = set()
    for _round in range(3):
        client, freelancer, milestone = world.submitted(amount=10_000)
        wallet_before = world.balance(client)

        def approve(c: User = client, m: Milestone = milestone) -> None:
            act_as(db, world.settings, c.id, milestones.approve, m.id)

        def cancel(u: User, m: Milestone = milestone) -> None:
            act_as(db, world.settings, u.id, milestones.cancel, m.id, reason="No longer needed")

        work: list[Callable[[], object]] = []
        for index in range(20):
            if index % 3 == 0:
                work.append(approve)
            elif index % 3 == 1:
                work.append(partial(cancel, freelancer))
            else:
                work.append(partial(cancel, staff))
        outcomes = race(work)

        won = winners(outcomes)
        assert len(won) == 1
        assert_losers_typed(outcomes, (InvalidState, Conflict, TransientConflict))
        done = world.get(milestone.id)
        assert done.escrow_balance == 0
        assert escrow_of(world, milestone) == 0
        if won[0] % 3 == 0:
            assert done.status is S.RELEASED
            assert world.balance(freelancer) == 9_000
            assert world.balance(client) == wallet_before
            assert (entries(world, done.id, EntryKind.RELEASE), done.refunded_amount) == (1, 0)
        else:
            assert done.status is S.CANCELLED
            assert world.balance(freelancer) == 0
            assert world.balance(client) == wallet_before + 10_000
            assert (entries(world, done.id, EntryKind.REFUND), done.released_amount) == (1, 0)
        assert entries(world, done.id, EntryKind.FUND) == 1
        outcomes_seen.add(done.status)
    assert outcomes_seen <= {S.RELEASED, S.CANCELLED}


# Opposite lock orders -------------------------------------------------------------------------------------


def test_opposite_order_releases_and_fundings_on_one_wallet_never_hang(
    world: World, db: Database
) -> None:
    """Two milestones funded from one client wallet; every round, one request releases from A then B,
    another from B then A (each in one unit of work, so they lock in opposite orders), a third releases
    A and then B in two requests, and a fourth funds a new milestone from the same wallet. A deadlock may
    cost a request a typed Conflict, never a hang; every unit of money is accounted for."""
    rounds, part = 4, 1_000
    client, freelancer, project = world.parties(wallet=1_000_000)
    a = world.milestone(client, project, 100_000, title="A")
    b = world.milestone(client, project, 100_000, title="B")
    world.act(client, milestones.fund, a.id)
    world.act(client, milestones.fund, b.id)
    extra = [world.milestone(client, project, 10_000, title=f"Extra {n}") for n in range(rounds)]

    def release(milestone_id: str) -> Callable[[Context], object]:
        return lambda ctx: milestones.release(ctx, milestone_id, amount=part)

    def both(first: str, second: str) -> None:
        def work(ctx: Context) -> None:
            release(first)(ctx)
            release(second)(ctx)

        act_as(db, world.settings, client.id, work)

    parts = {a.id: 0, b.id: 0}

    def separately() -> None:
        for milestone_id in (a.id, b.id):
            act_as(db, world.settings, client.id, release(milestone_id))
            parts[milestone_id] += 1  # only this thread counts here while the race runs

    funded = 0
    for round_index in range(rounds):
        started = time.monotonic()
        outcomes = race(
            [
                lambda: both(a.id, b.id),
                lambda: both(b.id, a.id),
                separately,
                partial(
                    act_as, db, world.settings, client.id, milestones.fund, extra[round_index].id
                ),
            ]
        )
        assert time.monotonic() - started < 10, "a round took far longer than a deadlock check"
        assert_losers_typed(outcomes, (Conflict, TransientConflict))
        # A request releasing from both is all or nothing.
        for outcome in outcomes[:2]:
            if outcome == OK:
                parts[a.id] += 1
                parts[b.id] += 1
        assert any(outcome == OK for outcome in outcomes[:3]), "no release got through"
        funded += outcomes[3] == OK
        for milestone in (a, b):
            assert world.get(milestone.id).released_amount == parts[milestone.id] * part
            assert escrow_of(world, milestone) == 100_000 - parts[milestone.id] * part
        assert world.get(extra[round_index].id).status is (
            S.FUNDED if outcomes[3] == OK else S.DRAFT
        )

    # The wallet and the freelancer account for every unit.
    assert world.balance(client) == 1_000_000 - 200_000 - funded * 10_000
    assert world.balance(freelancer) == (parts[a.id] + parts[b.id]) * part * 9 // 10
    assert world.verify().ok


def test_releases_on_one_project_and_new_milestones_on_it_keep_its_totals(
    world: World, db: Database
) -> None:
    """Six milestones of one project released at once (each under its own milestone's lock only), while
    two milestones are added to it (under the project's lock): every release adds to the project's kept
    totals at commit, none is lost, and nobody is left waiting on a deadlock."""
    client, freelancer, project = world.parties(wallet=1_000_000)
    funded = [world.milestone(client, project, 10_000, title=f"Part {n}") for n in range(6)]
    for milestone in funded:
        world.act(client, milestones.fund, milestone.id)

    outcomes = race(
        [
            *(
                partial(act_as, db, world.settings, client.id, milestones.release, milestone.id)
                for milestone in funded
            ),
            *(
                partial(
                    act_as,
                    db,
                    world.settings,
                    client.id,
                    milestones.create_milestone,
                    project.id,
                    title=f"Later {n}",
                    amount=5_000,
                    acceptance_criteria=["It works"],
                )
                for n in range(2)
            ),
        ]
    )

    assert outcomes == [OK] * 8
    with db.read_only() as session:
        totals = projects.milestone_totals(
            Context(session, session.get(User, client.id), settings=world.settings), project.id
        )
    assert (totals.planned, totals.in_escrow, totals.released) == (70_000, 0, 60_000)
    assert world.balance(freelancer) == 54_000
    assert world.verify().ok


# Sign-ups -------------------------------------------------------------------------------------------------


def test_simultaneous_sign_ups_with_one_email_make_one_account(db: Database) -> None:
    def sign_up(name: str) -> None:
        with db.unit_of_work() as session:
            create_user(session, email="same@example.com", name=name, password="x" * 12)

    outcomes = race([partial(sign_up, f"Person {i}") for i in range(10)])

    assert len(winners(outcomes)) == 1
    assert_losers_typed(outcomes, (ValidationFailed, Conflict, TransientConflict))
    assert all(
        outcome.code == "email_taken"
        for outcome in outcomes
        if isinstance(outcome, ValidationFailed)
    )
    with db.read_only() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1
