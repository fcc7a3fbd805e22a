"""``ledger verify``: a healthy ledger passes; every kind of tampering with the stored money is caught.

The tampering tests edit the database behind the services' back, the way a bad migration, a manual fix in
a SQL console or an attacker would, and are marked ``tampers`` so that the teardown does not verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from milepost.audit.models import MilestoneEvent
from milepost.cli import app
from milepost.disputes import service as disputes
from milepost.kit.db import Database
from milepost.ledger import verify_hashes
from milepost.ledger.models import Account, EntryKind, JournalEntry, Posting
from milepost.ledger.service import user_account
from milepost.ledger.verify import VerifyReport
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.users.models import User
from milepost.wallets import service as wallets
from tests.world import World


@dataclass
class Busy:
    client: User
    freelancer: User
    staff: User
    released: Milestone  # paid in two parts
    resolved: Milestone  # disputed, split by staff
    draft: Milestone


def busy(world: World) -> Busy:
    """A ledger with a bit of everything: deposits, funding, a partial and a final release, a dispute
    split by staff, a payout."""
    client, freelancer, project = world.parties(wallet=1_000_000)
    staff = world.user("staff", staff=True)
    released = world.milestone(client, project, 100_000)
    world.act(client, milestones.fund, released.id)
    world.act(client, milestones.release, released.id, amount=33_335)
    world.act(freelancer, milestones.submit, released.id, note="Done", evidence=[])
    world.act(client, milestones.approve, released.id)
    resolved = world.milestone(client, project, 50_000)
    world.act(client, milestones.fund, resolved.id)
    dispute = world.act(freelancer, disputes.open_dispute, resolved.id, reason="Unpaid")
    world.act(staff, disputes.resolve, dispute.id, to_freelancer=20_005, to_client=29_995)
    draft = world.milestone(client, project, 10_000)
    world.act(freelancer, wallets.create_payout, amount=10_000, currency="USD")
    return Busy(client, freelancer, staff, world.get(released.id), world.get(resolved.id), draft)


def entry_of(db: Database, kind: EntryKind, milestone_id: str | None = None) -> JournalEntry:
    with db.read_only() as session:
        query = select(JournalEntry).where(JournalEntry.kind == kind)
        if milestone_id is not None:
            query = query.where(JournalEntry.milestone_id == milestone_id)
        entry = session.scalars(query.order_by(JournalEntry.id)).first()
        assert entry is not None
        return entry


def postings_of(db: Database, entry_id: str) -> dict[str, Posting]:
    """The entry's postings by account key."""
    with db.read_only() as session:
        rows = session.execute(
            select(Account.key, Posting)
            .join(Posting, Posting.account_id == Account.id)
            .where(Posting.entry_id == entry_id)
        ).all()
        return {key: posting for key, posting in rows}


def run_sql(db: Database, sql: str, **params: object) -> int:
    with db.engine.begin() as connection:
        return connection.execute(text(sql), params).rowcount


def problems_matching(report: VerifyReport, *fragments: str) -> list[str]:
    return [p for p in report.problems if any(fragment in p for fragment in fragments)]


# Healthy ------------------------------------------------------------------------------------------------


def test_a_healthy_ledger_with_activity_verifies(world: World) -> None:
    b = busy(world)
    report = world.verify()
    assert report.ok, report.problems
    assert report.entries >= 8 and report.accounts >= 6
    assert report.milestones == 3 and report.events >= 10
    # The money it vouches for is what happened: 10% fee on each milestone's released total.
    assert world.get(b.released.id).fee_amount == 10_000
    assert world.get(b.resolved.id).fee_amount == 2_001  # 2000.5 rounds half up
    assert world.balance(b.freelancer) == 90_000 + 18_004 - 10_000
    assert world.balance(b.client) == 1_000_000 - 150_000 + 29_995


def test_an_empty_ledger_verifies(world: World) -> None:
    report = world.verify()
    assert report.ok and report.entries == 0 and report.accounts == 0


# Tampering ----------------------------------------------------------------------------------------------


@pytest.mark.tampers
def test_a_changed_posting_amount_is_caught(world: World, db: Database) -> None:
    b = busy(world)
    entry = entry_of(db, EntryKind.RELEASE, b.released.id)
    posting = postings_of(db, entry.id)[user_account(b.freelancer.id, "USD").key]
    assert run_sql(
        db, "UPDATE ledger_postings SET amount = amount + 1 WHERE id = :id", id=posting.id
    )

    report = world.verify()
    assert not report.ok
    assert problems_matching(report, f"entry {entry.id} does not balance: USD sums to 1")
    assert problems_matching(report, f"entry {entry.id} does not match its hash")
    assert problems_matching(
        report, f"account {user_account(b.freelancer.id, 'USD').key} says 98004 but"
    )


@pytest.mark.tampers
def test_a_changed_cached_balance_is_caught(world: World, db: Database) -> None:
    b = busy(world)
    key = user_account(b.client.id, "USD").key
    assert run_sql(db, "UPDATE ledger_accounts SET balance = balance + 500 WHERE key = :k", k=key)

    report = world.verify()
    assert report.problems == [f"account {key} says {879_995 + 500} but its postings sum to 879995"]


@pytest.mark.tampers
def test_a_changed_milestone_released_amount_is_caught(world: World, db: Database) -> None:
    b = busy(world)
    assert run_sql(
        db,
        "UPDATE milestones SET released_amount = released_amount - 1 WHERE id = :id",
        id=b.released.id,
    )

    report = world.verify()
    project = b.released.project_id
    assert report.problems == [
        f"milestone {b.released.id}: funded 100000 but released 99999 + refunded 0 + escrow 0 "
        "= 99999",
        # The project's kept total of what was released no longer matches its milestones either.
        f"project {project}: its totals say 160000 planned, 0 in escrow and 120005 released, but "
        "its milestones add up to 160000, 1 and 120004",
    ]


@pytest.mark.tampers
@pytest.mark.parametrize("change", ["data", "amount", "actor", "status"])
def test_a_changed_event_breaks_the_chain(world: World, db: Database, change: str) -> None:
    b = busy(world)
    with db.read_only() as session:
        event = session.scalars(
            select(MilestoneEvent).where(
                MilestoneEvent.milestone_id == b.released.id, MilestoneEvent.action == "funded"
            )
        ).one()
    values: Any = {
        "data": {"late_fee": 1},
        "amount": (event.amount or 0) - 1,
        "actor": {"actor_id": b.freelancer.id},
        "status": {"to_status": "released"},
    }[change]
    changes = {change: values} if change in ("data", "amount") else values
    with db.unit_of_work() as session:
        session.execute(
            update(MilestoneEvent).where(MilestoneEvent.id == event.id).values(**changes)
        )

    report = world.verify()
    assert report.problems == [
        f"milestone {b.released.id} event {event.seq}: event content was altered"
    ]


@pytest.mark.tampers
def test_an_event_deleted_from_the_middle_of_a_chain_is_caught(world: World, db: Database) -> None:
    b = busy(world)
    with db.read_only() as session:
        seqs = session.scalars(
            select(MilestoneEvent.seq)
            .where(MilestoneEvent.milestone_id == b.released.id)
            .order_by(MilestoneEvent.seq)
        ).all()
    assert len(seqs) >= 4
    middle = seqs[len(seqs) // 2]
    with db.unit_of_work() as session:
        session.execute(
            delete(MilestoneEvent).where(
                MilestoneEvent.milestone_id == b.released.id, MilestoneEvent.seq == middle
            )
        )

    report = world.verify()
    assert not report.ok
    assert problems_matching(
        report, f"milestone {b.released.id} event {middle + 1}: link to previous event broken"
    )
    assert problems_matching(report, f"event {middle + 1}: expected event {middle}")


@pytest.mark.tampers
@pytest.mark.parametrize("how_many", [1, "all"])
@pytest.mark.parametrize("range_rows", [None, 1])
def test_events_deleted_from_the_end_of_a_chain_are_caught(
    world: World,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    how_many: int | str,
    range_rows: int | None,
) -> None:
    """Also with every milestone a range of its own: the range bounds the join to the events too, and
    a milestone left without any must still be read."""
    if range_rows is not None:
        monkeypatch.setattr(verify_hashes, "RANGE_ROWS", range_rows)
    b = busy(world)
    with db.read_only() as session:
        seqs = session.scalars(
            select(MilestoneEvent.seq).where(MilestoneEvent.milestone_id == b.released.id)
        ).all()
    doomed = sorted(seqs) if how_many == "all" else [max(seqs)]
    with db.unit_of_work() as session:
        session.execute(
            delete(MilestoneEvent).where(
                MilestoneEvent.milestone_id == b.released.id, MilestoneEvent.seq.in_(doomed)
            )
        )

    report = world.verify()
    assert not report.ok
    assert problems_matching(
        report,
        f"milestone {b.released.id}: its audit trail should hold {len(seqs)} events",
    )
    assert problems_matching(report, f"but holds {len(seqs) - len(doomed)} ending in")


def _shift(db: Database, entry_id: str, from_key: str, to_key: str, amount: int) -> None:
    """Move ``amount`` between two postings of one entry, and the cached balances with them, so that
    the entry still sums to zero and every balance still matches its postings."""
    postings = postings_of(db, entry_id)
    with db.engine.begin() as connection:
        for key, delta in ((from_key, -amount), (to_key, amount)):
            connection.execute(
                text("UPDATE ledger_postings SET amount = amount + :d WHERE id = :id"),
                {"d": delta, "id": postings[key].id},
            )
            connection.execute(
                text("UPDATE ledger_accounts SET balance = balance + :d WHERE key = :k"),
                {"d": delta, "k": key},
            )


@pytest.mark.tampers
def test_a_balanced_edit_of_a_deposit_is_caught_by_the_hash(world: World, db: Database) -> None:
    b = busy(world)
    entry = entry_of(db, EntryKind.DEPOSIT)
    # Pretend the client deposited 1,000 more than they did.
    _shift(db, entry.id, "external:sandbox:USD", user_account(b.client.id, "USD").key, 100_000)

    report = world.verify()
    assert report.problems == [f"entry {entry.id} does not match its hash: it was altered"]


@pytest.mark.tampers
def test_a_balanced_edit_of_a_dispute_split_is_caught_by_the_hash(
    world: World, db: Database
) -> None:
    b = busy(world)
    entry = entry_of(db, EntryKind.DISPUTE_SPLIT, b.resolved.id)
    # Give the freelancer 5,000 of what staff awarded the client: every sum still adds up.
    _shift(
        db,
        entry.id,
        user_account(b.client.id, "USD").key,
        user_account(b.freelancer.id, "USD").key,
        5_000,
    )

    report = world.verify()
    assert report.problems == [f"entry {entry.id} does not match its hash: it was altered"]


@pytest.mark.tampers
def test_a_posting_moved_to_another_account_is_caught_by_the_hash(
    world: World, db: Database
) -> None:
    """Redirect a release to someone else's wallet, cached balances adjusted: only the hash knows."""
    b = busy(world)
    thief = world.user("thief")
    world.deposit(thief, 1)
    entry = entry_of(db, EntryKind.RELEASE, b.released.id)
    victim_key = user_account(b.freelancer.id, "USD").key
    thief_key = user_account(thief.id, "USD").key
    posting = postings_of(db, entry.id)[victim_key]
    with db.engine.begin() as connection:
        thief_account = connection.execute(
            text("SELECT id FROM ledger_accounts WHERE key = :k"), {"k": thief_key}
        ).scalar_one()
        connection.execute(
            text("UPDATE ledger_postings SET account_id = :a WHERE id = :id"),
            {"a": thief_account, "id": posting.id},
        )
        for key, delta in ((victim_key, -posting.amount), (thief_key, posting.amount)):
            connection.execute(
                text("UPDATE ledger_accounts SET balance = balance + :d WHERE key = :k"),
                {"d": delta, "k": key},
            )

    report = world.verify()
    assert report.problems == [f"entry {entry.id} does not match its hash: it was altered"]


# The database's own guard -------------------------------------------------------------------------------


@pytest.mark.tampers
def test_a_payout_failed_or_a_deposit_rejected_behind_the_ledgers_back_is_caught(
    world: World, db: Database
) -> None:
    user = world.user()
    world.deposit(user, 30_000)
    account = world.destination(user)
    payout = world.act(
        user,
        wallets.create_payout,
        amount=12_000,
        currency="USD",
        provider="manual",
        destination_id=account.id,
    )
    assert world.verify().ok
    # Marked failed without the money going back to the wallet: it would be nowhere.
    assert run_sql(db, "UPDATE payouts SET status = 'failed' WHERE id = :id", id=payout.id)
    deposit = world.act(user, wallets.create_deposit, amount=5_000, currency="USD")
    assert run_sql(db, "UPDATE deposits SET status = 'rejected' WHERE id = :id", id=deposit.id)

    report = world.verify()
    assert report.problems == [
        "payout clearing for manual holds 12000 USD but pending payouts come to 0",
        f"deposit {deposit.id} was rejected but has a ledger entry",
    ]


def test_the_database_refuses_a_negative_user_balance(world: World, db: Database) -> None:
    b = busy(world)
    key = user_account(b.client.id, "USD").key
    with pytest.raises(IntegrityError) as raised:
        run_sql(db, "UPDATE ledger_accounts SET balance = -1 WHERE key = :k", k=key)
    assert "ck_ledger_accounts_balance_not_negative" in str(raised.value)
    assert world.balance(b.client) == 879_995  # unchanged
    # The outside world's account is negative by design (money came in from it).
    assert world.account_balance("external:sandbox:USD") == -1_000_000 + 10_000


@pytest.mark.parametrize("kind", ["escrow", "payout_clearing"])
def test_the_database_refuses_negative_escrow_and_clearing(
    world: World, db: Database, kind: str
) -> None:
    busy(world)
    with pytest.raises(IntegrityError) as raised:
        run_sql(db, "UPDATE ledger_accounts SET balance = -5 WHERE kind = :kind", kind=kind)
    assert "ck_ledger_accounts_balance_not_negative" in str(raised.value)
    assert world.verify().ok


# The command line ---------------------------------------------------------------------------------------


def test_cli_verify_says_ok_on_a_healthy_ledger(world: World, db_url: str) -> None:
    busy(world)
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "ledger OK" in result.stdout
    assert "3 milestones" in result.stdout


@pytest.mark.tampers
def test_cli_verify_exits_1_and_lists_the_problems(world: World, db: Database, db_url: str) -> None:
    b = busy(world)
    run_sql(
        db,
        "UPDATE milestones SET fee_amount = fee_amount - 1 WHERE id = :id",
        id=b.released.id,
    )
    key = user_account(b.client.id, "USD").key
    run_sql(db, "UPDATE ledger_accounts SET balance = balance + 7 WHERE key = :k", k=key)

    result = CliRunner().invoke(app, ["ledger", "verify", "--db", db_url])
    assert result.exit_code == 1
    assert "ledger OK" not in result.output
    assert "ledger has 2 problem(s):" in result.stderr
    assert f"  - account {key} says 880002 but its postings sum to 879995" in result.stderr
    assert (
        f"  - milestone {b.released.id}: fee says 9999 but fee postings sum to 10000"
        in result.stderr
    )


def test_cli_verify_refuses_a_database_without_a_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", f"sqlite:///{tmp_path}/none.db"])
    assert result.exit_code == 1
    assert "has no schema yet" in result.stderr
