"""A ledger entry and the audit event of the same change name each other (``event_id``, ``entry_id``):
written together by the services, filled in for existing rows by migration 0014, checked by ``ledger
verify``, and used by receipts instead of pairing by time.

The tampering tests are marked ``tampers``: they corrupt the ledger on purpose.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from milepost.audit.models import MilestoneEvent
from milepost.kit.db import Database
from milepost.ledger.models import ENTRY_ACTIONS, EntryKind, JournalEntry
from milepost.ledger.verify import verify_ledger
from milepost.milestones import service as milestones
from milepost.receipts import service as receipts
from tests.ledger.test_macs import _alembic
from tests.ledger.test_verify import busy, problems_matching, run_sql
from tests.world import World


def links(db: Database) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """(entry id -> event id, event id -> entry id) of every entry and event."""
    with db.read_only() as session:
        entries = session.execute(select(JournalEntry.id, JournalEntry.event_id))
        events = session.execute(select(MilestoneEvent.id, MilestoneEvent.entry_id))
        return {row[0]: row[1] for row in entries}, {row[0]: row[1] for row in events}


def test_every_change_that_moves_a_milestones_money_links_its_entry_and_its_event(
    world: World, db: Database
) -> None:
    done = busy(world)
    with db.read_only() as session:
        entries = list(session.scalars(select(JournalEntry).order_by(JournalEntry.id)))
        events = {event.id: event for event in session.scalars(select(MilestoneEvent))}
    linked = [entry for entry in entries if entry.milestone_id is not None]
    assert sorted(str(entry.kind) for entry in linked) == sorted(
        ["fund", "fund", "release", "release", "dispute_split"]
    )
    for entry in linked:
        assert entry.event_id is not None, entry.kind
        event = events[entry.event_id]
        assert event.entry_id == entry.id
        assert (event.milestone_id, event.created_at) == (entry.milestone_id, entry.created_at)
        assert event.action in ENTRY_ACTIONS[entry.kind]
    # Deposits and payouts belong to no milestone and no event; events that moved no money name no entry.
    assert all(entry.event_id is None for entry in entries if entry.milestone_id is None)
    named = {entry.event_id for entry in linked}
    assert all(event.entry_id is None for event in events.values() if event.id not in named)
    assert {events[event_id].action for event_id in named if event_id} == {
        "funded",
        "released_part",
        "released",
        "dispute_resolved",
    }
    assert done.released.status == "released"


def test_a_refund_links_its_entry_to_the_cancellation(world: World, db: Database) -> None:
    _client, freelancer, milestone = world.funded(40_000)
    world.act(freelancer, milestones.cancel, milestone.id, reason="Plans changed")
    entries, events = links(db)
    with db.read_only() as session:
        refund = session.scalars(
            select(JournalEntry).where(JournalEntry.kind == EntryKind.REFUND)
        ).one()
        event = session.get(MilestoneEvent, refund.event_id)
    assert event is not None and event.action == "cancelled" and event.entry_id == refund.id
    assert entries[refund.id] == event.id and events[event.id] == refund.id


def test_each_receipt_names_the_event_of_its_own_release_even_at_one_instant(
    world: World,
) -> None:
    """Receipts used to pair entries and events by their time; two releases at the same instant (one
    clock tick, two requests) now each keep their own event."""
    client, freelancer, milestone = world.funded(90_000)
    instant = world.get(milestone.id).updated_at
    world.act(client, milestones.release, milestone.id, amount=30_000, now=instant)
    world.act(client, milestones.release, milestone.id, amount=60_000, now=instant)
    first, second = world.act(freelancer, receipts.list_receipts, milestone.id)
    assert (first.amount_released, second.amount_released) == (30_000, 60_000)
    with world.db.read_only() as session:
        for receipt in (first, second):
            event = session.get(MilestoneEvent, receipt.event_id)
            assert event is not None and event.entry_id == receipt.entry_id
            assert event.amount == receipt.amount_released
    assert (first.event_action, second.event_action) == ("released_part", "released")
    assert first.partial and not second.partial


# Verify --------------------------------------------------------------------------------------------------


@pytest.mark.tampers
def test_an_entry_pointed_at_another_event_is_caught(world: World, db: Database) -> None:
    done = busy(world)
    with db.read_only() as session:
        fund = session.scalars(
            select(JournalEntry).where(
                JournalEntry.kind == EntryKind.FUND, JournalEntry.milestone_id == done.released.id
            )
        ).one()
        other = session.scalars(
            select(MilestoneEvent).where(
                MilestoneEvent.milestone_id == done.released.id,
                MilestoneEvent.action == "released",
            )
        ).one()
    run_sql(db, "UPDATE ledger_entries SET event_id = :e WHERE id = :id", e=other.id, id=fund.id)
    with db.read_only() as session:
        report = verify_ledger(session)
    assert problems_matching(report, f"entry {fund.id}", "does not name it back")
    assert problems_matching(report, f"event {fund.event_id}", "does not name it back")


@pytest.mark.tampers
def test_a_link_re_pointed_on_both_sides_to_another_change_is_caught(
    world: World, db: Database
) -> None:
    """Neither hash covers the link, but both cover what it must agree with: one milestone, one
    moment, and an action that records that kind of entry."""
    done = busy(world)
    with db.read_only() as session:
        fund, release = (
            session.scalars(
                select(JournalEntry).where(
                    JournalEntry.kind == kind, JournalEntry.milestone_id == done.released.id
                )
            ).first()
            for kind in (EntryKind.FUND, EntryKind.RELEASE)
        )
    assert fund is not None and release is not None
    # Swap the two links, both sides of each, so that every row names one that names it back.
    run_sql(
        db,
        "UPDATE ledger_entries SET event_id = NULL WHERE id IN (:a, :b)",
        a=fund.id,
        b=release.id,
    )
    run_sql(
        db, "UPDATE ledger_entries SET event_id = :e WHERE id = :id", e=release.event_id, id=fund.id
    )
    run_sql(
        db, "UPDATE ledger_entries SET event_id = :e WHERE id = :id", e=fund.event_id, id=release.id
    )
    run_sql(
        db,
        "UPDATE milestone_events SET entry_id = :n WHERE id = :id",
        n=fund.id,
        id=release.event_id,
    )
    run_sql(
        db,
        "UPDATE milestone_events SET entry_id = :n WHERE id = :id",
        n=release.id,
        id=fund.event_id,
    )
    with db.read_only() as session:
        report = verify_ledger(session)
    assert problems_matching(report, f"entry {fund.id} (fund)", "not of one change")
    assert problems_matching(report, f"entry {release.id} (release)", "not of one change")


# The migration ------------------------------------------------------------------------------------------


def test_the_migration_links_existing_entries_and_events_as_the_services_do(
    world: World, db: Database, db_url: str
) -> None:
    """Rows written before 0014 get the links the services would have made: the same pairs."""
    client, freelancer, project = world.parties()
    cancelled = world.milestone(client, project, 20_000)
    world.act(client, milestones.fund, cancelled.id)
    world.act(freelancer, milestones.cancel, cancelled.id, reason="Changed our minds")
    done = busy(world)

    def receipt_events() -> dict[str, str | None]:
        return {
            receipt.entry_id: receipt.event_id
            for milestone in (done.released, done.resolved)
            for receipt in world.act(done.client, receipts.list_receipts, milestone.id)
        }

    made = links(db)
    assert any(made[0].values()) and any(made[1].values())
    before = receipt_events()
    assert len(before) == 3 and all(before.values())
    db.engine.dispose()
    _alembic(db_url, "downgrade", "0013")
    try:
        with db.engine.connect() as connection:
            for table, column in (("ledger_entries", "event_id"), ("milestone_events", "entry_id")):
                assert column not in list(connection.execute(text(f"SELECT * FROM {table}")).keys())
    finally:
        db.engine.dispose()
        _alembic(db_url, "upgrade", "head")
    assert links(db) == made
    assert receipt_events() == before
    with db.read_only() as session:
        assert verify_ledger(session).ok


@pytest.mark.tampers
def test_a_money_event_deleted_and_its_chain_rebuilt_is_caught_even_without_the_key(
    db: Database,
) -> None:
    """Without a ledger key, a deleted event with its chain renumbered and rehashed passes the plain
    hashes; one that moved money is still missed by its entry."""
    from tests.ledger.test_macs import event_of, rechain

    done = busy(World(db))
    target = event_of(db, done.released.id, "funded")
    run_sql(db, "DELETE FROM milestone_events WHERE id = :id", id=target.id)
    rechain(db, done.released.id)
    with db.read_only() as session:
        report = verify_ledger(session)
    assert report.problems == [
        f"entry {target.entry_id} names event {target.id}, which does not name it back"
    ]
