"""``ledger verify``: the checks test_verify.py does not tamper with yet (an entry that lost postings, a
posting in the wrong currency, an account whose postings go negative, a fee, a head MAC), and how it
reads: in batches, whose boundaries may fall inside an entry or a milestone's chain without changing
what it finds, telling whoever watches how far it has got."""

from __future__ import annotations

import pytest

from milepost.kit.db import Database
from milepost.ledger import verify, verify_hashes
from milepost.ledger.cli import verify_progress
from milepost.ledger.models import EntryKind
from milepost.ledger.service import user_account
from milepost.ledger.verify import VerifyReport
from tests.ledger.test_verify import busy, entry_of, postings_of, problems_matching, run_sql
from tests.world import World

EXTERNAL = "external:sandbox:USD"


@pytest.mark.tampers
@pytest.mark.parametrize("left", [1, 0])
@pytest.mark.parametrize("range_rows", [None, 1])
def test_an_entry_that_lost_postings_is_caught(
    world: World, db: Database, monkeypatch: pytest.MonkeyPatch, left: int, range_rows: int | None
) -> None:
    """Also with every entry a range of its own: the range bounds the join to the postings too, and an
    entry left without any must still be read."""
    if range_rows is not None:
        monkeypatch.setattr(verify_hashes, "RANGE_ROWS", range_rows)
    busy(world)
    entry = entry_of(db, EntryKind.DEPOSIT)
    postings = postings_of(db, entry.id)
    doomed = [postings[EXTERNAL]] if left == 1 else list(postings.values())
    for posting in doomed:
        run_sql(db, "DELETE FROM ledger_postings WHERE id = :id", id=posting.id)
    report = world.verify()
    assert f"entry {entry.id} has {left} posting(s); needs two or more" in report.problems
    assert f"entry {entry.id} does not match its hash: it was altered" in report.problems
    if left == 1:
        assert f"entry {entry.id} does not balance: USD sums to 1000000" in report.problems
    assert problems_matching(report, f"account {EXTERNAL} says")


@pytest.mark.tampers
def test_a_posting_in_another_currency_than_its_account_is_caught(
    world: World, db: Database
) -> None:
    busy(world)
    entry = entry_of(db, EntryKind.DEPOSIT)
    posting = postings_of(db, entry.id)[EXTERNAL]
    run_sql(db, "UPDATE ledger_postings SET currency = 'EUR' WHERE id = :id", id=posting.id)

    report = world.verify()
    assert report.problems == [
        f"posting {posting.id} is in EUR but account {EXTERNAL} is in USD",
        f"entry {entry.id} does not balance: EUR sums to -1000000",
        f"entry {entry.id} does not balance: USD sums to 1000000",
        f"entry {entry.id} does not match its hash: it was altered",
    ]


@pytest.mark.tampers
def test_an_account_whose_postings_go_negative_is_caught(world: World, db: Database) -> None:
    """The database refuses a negative cached balance, so the postings are turned negative behind it."""
    user = world.user()
    world.deposit(user, 30_000)
    key = user_account(user.id, "USD").key
    run_sql(
        db,
        "UPDATE ledger_postings SET amount = -amount WHERE account_id = "
        "(SELECT id FROM ledger_accounts WHERE key = :k)",
        k=key,
    )
    report = world.verify()
    assert f"account {key} says 30000 but its postings sum to -30000" in report.problems
    assert f"account {key} is negative: -30000" in report.problems


@pytest.mark.tampers
def test_a_changed_milestone_fee_is_caught(world: World, db: Database) -> None:
    b = busy(world)
    run_sql(
        db, "UPDATE milestones SET fee_amount = fee_amount - 1 WHERE id = :id", id=b.released.id
    )

    assert world.verify().problems == [
        f"milestone {b.released.id}: fee says 9999 but fee postings sum to 10000"
    ]


@pytest.mark.tampers
def test_a_rewritten_head_mac_is_caught(world: World, db: Database) -> None:
    b = busy(world)
    run_sql(
        db,
        "UPDATE milestones SET last_event_mac = :mac WHERE id = :id",
        mac="f" * 64,
        id=b.draft.id,
    )

    assert world.verify().problems == [
        f"milestone {b.draft.id}: its audit trail's head MAC is not its last event's "
        "(events were removed or added, or the head rewritten)"
    ]


def tamper_one_entry_and_one_trail(world: World, db: Database) -> None:
    b = busy(world)
    entry = entry_of(db, EntryKind.RELEASE, b.released.id)
    run_sql(
        db,
        "UPDATE ledger_postings SET amount = amount + 1 WHERE id = :id",
        id=postings_of(db, entry.id)[user_account(b.freelancer.id, "USD").key].id,
    )
    run_sql(
        db,
        "UPDATE milestone_events SET amount = 1 WHERE milestone_id = :id AND seq = 2",
        id=b.resolved.id,
    )


@pytest.mark.tampers
@pytest.mark.parametrize(("batch", "range_rows"), [(1, 1), (2, 2), (3, 1000)])
def test_batch_and_range_boundaries_inside_an_entry_or_a_chain_change_nothing(
    world: World, db: Database, monkeypatch: pytest.MonkeyPatch, batch: int, range_rows: int
) -> None:
    tamper_one_entry_and_one_trail(world, db)
    whole = world.verify()

    monkeypatch.setattr(verify_hashes, "BATCH", batch)
    monkeypatch.setattr(verify_hashes, "RANGE_ROWS", range_rows)
    batched = world.verify()
    assert batched == whole
    assert len(whole.problems) == 4, whole.problems


@pytest.mark.tampers
def test_hash_checks_spread_over_processes_find_what_one_process_finds(
    world: World, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes, each with its own connection and ranges of two or three rows, report the same
    problems in the same order, and count the same rows, as the check run here."""
    tamper_one_entry_and_one_trail(world, db)
    whole = world.verify()

    monkeypatch.setattr(verify_hashes, "SPREAD_FROM", 0)
    monkeypatch.setattr(verify_hashes, "RANGE_ROWS", 2)
    monkeypatch.setattr(verify, "SPREAD_FROM", 0)
    recorder = Recorder()
    with db.read_only() as session:
        spread = verify.verify_ledger(session, progress=recorder, workers=2)
    assert spread == whole
    assert len(spread.problems) == 4, spread.problems
    assert spread.entries > 2 and spread.milestones > 2  # so there was more than one range each
    assert recorder.rows["journal entry hashes"] == spread.entries


class Recorder:
    def __init__(self) -> None:
        self.stages: list[tuple[str, int | None]] = []
        self.rows: dict[str, int] = {}

    def stage(self, name: str, total: int | None = None) -> None:
        self.stages.append((name, total))
        self.rows[name] = 0

    def advance(self, rows: int) -> None:
        self.rows[self.stages[-1][0]] += rows


def test_progress_is_told_every_stage_and_every_row(
    world: World, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy(world)
    monkeypatch.setattr(verify_hashes, "BATCH", 2)
    recorder = Recorder()
    with db.read_only() as session:
        report: VerifyReport = verify.verify_ledger(session, progress=recorder)
    assert report.ok
    totals = dict(recorder.stages)
    assert totals["journal entry hashes"] == report.entries == recorder.rows["journal entry hashes"]
    assert totals["audit trails"] == report.milestones == recorder.rows["audit trails"]
    assert "account balances" in totals and "payouts and deposits" in totals


def test_no_progress_bar_when_standard_error_is_not_a_terminal() -> None:
    with verify_progress() as progress:
        assert progress is None
