"""Keyed MACs (``MILEPOST_LEDGER_KEY``): tampering that recomputes every plain hash, as an intruder with
write access to the database but not the key would, is still caught by ``ledger verify``.

The tampering tests are marked ``tampers``: they corrupt the ledger on purpose.
"""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, event, select, text, update
from typer.testing import CliRunner

from milepost.audit.models import MilestoneEvent
from milepost.audit.service import GENESIS_HASH, event_hash
from milepost.cli import app
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.macs import NOT_CONFIGURED_NOTE, KeyRing
from milepost.ledger.models import Account, EntryKind, JournalEntry, Posting
from milepost.ledger.service import entry_hash, user_account
from milepost.ledger.signing import sign_ledger
from milepost.ledger.verify import VerifyReport, verify_as_staff, verify_ledger
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.settings import Settings
from milepost.users.models import User
from tests.ledger.test_verify import Busy, busy, entry_of, postings_of
from tests.world import World

K1 = "k1:" + "1" * 40
K2 = "k2:" + "2" * 40
RING_K1 = KeyRing.parse(K1)
RING_K2_K1 = KeyRing.parse(K2, K1)
RING_K2 = KeyRing.parse(K2)
NO_KEY = KeyRing()


def keyed_world(db: Database, key: str = K1, old: str | None = None) -> World:
    return World(
        db, Settings(fee_bps=1000, providers="sandbox,manual", ledger_key=key, ledger_old_keys=old)
    )


def verify(db: Database, keys: KeyRing) -> VerifyReport:
    with db.read_only() as session:
        return verify_ledger(session, keys)


def rows(db: Database) -> tuple[list[JournalEntry | MilestoneEvent], list[MilestoneEvent]]:
    """Every journal entry and every audit event; the first list is typed to hold both, so that
    ``[*entries, *events]`` is a list of rows with ``mac`` and ``mac_key_id``."""
    with db.read_only() as session:
        return (
            list[JournalEntry | MilestoneEvent](session.scalars(select(JournalEntry))),
            list(session.scalars(select(MilestoneEvent))),
        )


# An intruder's tools: change a row, then recompute every plain hash so that the old checks pass --------


def rechain(db: Database, milestone_id: str) -> None:
    """Renumber a milestone's events and recompute every plain hash and link, and its head."""
    with db.unit_of_work() as session:
        events = list(
            session.scalars(
                select(MilestoneEvent)
                .where(MilestoneEvent.milestone_id == milestone_id)
                .order_by(MilestoneEvent.seq)
            )
        )
        prev = GENESIS_HASH
        for seq, item in enumerate(events, start=1):
            item.seq, item.prev_hash = seq, prev
            item.hash = prev = event_hash(item)
            # One at a time, in seq order, so that each number is free when it is taken: the flush
            # orders its UPDATEs by id, and ids made in the same millisecond need not follow seq.
            session.flush()
        milestone = session.get(Milestone, milestone_id)
        assert milestone is not None
        milestone.event_count, milestone.last_event_hash = len(events), prev
        milestone.last_event_mac = events[-1].mac if events else None


def rehash_entry(db: Database, entry_id: str) -> None:
    with db.unit_of_work() as session:
        entry = session.get(JournalEntry, entry_id)
        assert entry is not None
        recorded = session.execute(
            select(Account.key, Posting.amount, Posting.currency)
            .join(Posting, Posting.account_id == Account.id)
            .where(Posting.entry_id == entry_id)
        ).all()
        entry.hash = entry_hash(
            entry, [(key, amount, currency) for key, amount, currency in recorded]
        )


def shift(db: Database, entry_id: str, from_key: str, to_key: str, amount: int) -> None:
    """Move money between two postings of an entry, balances adjusted, and recompute its hash."""
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
    rehash_entry(db, entry_id)


def event_of(db: Database, milestone_id: str, action: str) -> MilestoneEvent:
    with db.read_only() as session:
        return session.scalars(
            select(MilestoneEvent).where(
                MilestoneEvent.milestone_id == milestone_id, MilestoneEvent.action == action
            )
        ).one()


def funded_event(db: Database, milestone_id: str) -> MilestoneEvent:
    with db.read_only() as session:
        return session.scalars(
            select(MilestoneEvent).where(
                MilestoneEvent.milestone_id == milestone_id, MilestoneEvent.action == "funded"
            )
        ).one()


# Signing ------------------------------------------------------------------------------------------------


def test_with_a_key_every_entry_and_event_is_signed_and_verifies(db: Database) -> None:
    busy(keyed_world(db))
    entries, events = rows(db)
    assert entries and events
    assert all(row.mac and row.mac_key_id == "k1" for row in [*entries, *events])
    report = verify(db, RING_K1)
    assert report.ok, report.problems
    assert report.macs_checked and report.notes == []


def test_without_a_key_nothing_is_signed_and_verify_says_the_macs_were_not_checked(
    world: World, db: Database
) -> None:
    busy(world)
    entries, events = rows(db)
    assert all(row.mac is None and row.mac_key_id is None for row in [*entries, *events])
    report = verify(db, NO_KEY)
    assert report.ok and not report.macs_checked
    assert report.notes == [NOT_CONFIGURED_NOTE]
    assert NOT_CONFIGURED_NOTE == "keyed MACs not checked: MILEPOST_LEDGER_KEY is not set"


def test_signing_adds_no_statement_to_a_money_operation(db: Database) -> None:
    """The MACs are made in Python before the insert, from rows the operation reads anyway."""

    def statements(world: World) -> list[int]:
        client, _freelancer, project = world.parties()
        counts = []
        for action in ("fund", "release"):
            milestone = world.milestone(client, project, 10_000)
            if action == "release":
                world.act(client, milestones.fund, milestone.id)
            seen: list[str] = []

            def count(*args: Any, seen: list[str] = seen) -> None:
                seen.append(args[2])

            event.listen(db.engine, "before_cursor_execute", count)
            try:
                if action == "fund":
                    world.act(client, milestones.fund, milestone.id)
                else:
                    world.act(client, milestones.release, milestone.id)
            finally:
                event.remove(db.engine, "before_cursor_execute", count)
            counts.append(len(seen))
        return counts

    statements(World(db))  # the first release also creates the platform's fee account
    unsigned = statements(World(db))
    signed = statements(keyed_world(db))
    assert signed == unsigned


# Tampering that recomputes the plain hashes --------------------------------------------------------------


@pytest.mark.tampers
@pytest.mark.parametrize("change", ["amount", "data", "actor_id"])
def test_a_rewritten_event_with_its_plain_hashes_recomputed_is_caught_by_its_mac(
    db: Database, change: str
) -> None:
    world = keyed_world(db)
    b = busy(world)
    target = funded_event(db, b.released.id)
    values: Any = {
        "amount": {"amount": (target.amount or 0) - 1},
        "data": {"data": {"late_fee": 1}},
        "actor_id": {"actor_id": b.freelancer.id},
    }[change]
    with db.unit_of_work() as session:
        session.execute(
            update(MilestoneEvent).where(MilestoneEvent.id == target.id).values(**values)
        )
    rechain(db, b.released.id)

    assert verify(db, NO_KEY).ok  # the plain hashes alone no longer show it
    problems = verify(db, RING_K1).problems
    # The event itself, and every later one (its hash covers the changed one's through the links).
    with db.read_only() as session:
        count = session.get(Milestone, b.released.id).event_count  # type: ignore[union-attr]
    assert problems == [
        f"milestone {b.released.id} event {seq}: event does not match its MAC: it was rewritten"
        for seq in range(target.seq, count + 1)
    ]


@pytest.mark.tampers
def test_an_event_deleted_and_the_chain_renumbered_is_caught_by_the_next_mac(
    db: Database,
) -> None:
    b = busy(keyed_world(db))
    # An event that moved no money: one that did is named by its ledger entry, and deleting it shows
    # without the key (tests/ledger/test_links.py).
    target = event_of(db, b.released.id, "submitted")
    with db.unit_of_work() as session:
        session.execute(delete(MilestoneEvent).where(MilestoneEvent.id == target.id))
    rechain(db, b.released.id)

    assert verify(db, NO_KEY).ok
    problems = verify(db, RING_K1).problems
    # Every later event was renumbered (its hash changed) and the first one's previous MAC is gone.
    assert problems
    assert all(p.startswith(f"milestone {b.released.id} event ") for p in problems)
    assert all(p.endswith("does not match its MAC: it was rewritten") for p in problems)


@pytest.mark.tampers
def test_a_rewritten_posting_with_its_entry_hash_recomputed_is_caught_by_its_mac(
    db: Database,
) -> None:
    b = busy(keyed_world(db))
    entry = entry_of(db, EntryKind.DEPOSIT)
    # Pretend the client deposited 1,000 more, balances adjusted and the entry's hash recomputed.
    shift(db, entry.id, "external:sandbox:USD", user_account(b.client.id, "USD").key, 100_000)

    assert verify(db, NO_KEY).ok
    assert verify(db, RING_K1).problems == [
        f"entry {entry.id} does not match its MAC: it was rewritten"
    ]


@pytest.mark.tampers
def test_a_rewritten_memo_is_caught_by_the_mac_though_the_plain_hash_leaves_it_out(
    db: Database,
) -> None:
    busy(keyed_world(db))
    entry = entry_of(db, EntryKind.DEPOSIT)
    with db.unit_of_work() as session:
        session.execute(
            update(JournalEntry).where(JournalEntry.id == entry.id).values(memo="refund")
        )
    assert verify(db, NO_KEY).ok
    assert verify(db, RING_K1).problems == [
        f"entry {entry.id} does not match its MAC: it was rewritten"
    ]


@pytest.mark.tampers
def test_a_removed_mac_is_a_problem(db: Database) -> None:
    b = busy(keyed_world(db))
    entry = entry_of(db, EntryKind.RELEASE, b.released.id)
    target = funded_event(db, b.resolved.id)
    with db.unit_of_work() as session:
        session.execute(
            update(JournalEntry)
            .where(JournalEntry.id == entry.id)
            .values(mac=None, mac_key_id=None)
        )
        session.execute(
            update(MilestoneEvent)
            .where(MilestoneEvent.id == target.id)
            .values(mac=None, mac_key_id=None)
        )
    report = verify(db, RING_K1)
    assert f"entry {entry.id} has no MAC" in report.problems
    assert f"milestone {b.resolved.id} event {target.seq}: event has no MAC" in report.problems
    assert any("milepost ledger sign" in note for note in report.notes)


@pytest.mark.tampers
def test_a_forged_mac_is_caught(db: Database) -> None:
    busy(keyed_world(db))
    entry = entry_of(db, EntryKind.DEPOSIT)
    with db.unit_of_work() as session:
        session.execute(
            update(JournalEntry).where(JournalEntry.id == entry.id).values(mac="0" * 64)
        )
    assert verify(db, RING_K1).problems == [
        f"entry {entry.id} does not match its MAC: it was rewritten"
    ]


# Rotation -----------------------------------------------------------------------------------------------


@pytest.mark.tampers  # the last step removes the old key on purpose
def test_rows_signed_with_a_retired_key_verify_while_it_is_listed_and_fail_once_removed(
    db: Database,
) -> None:
    b = busy(keyed_world(db, K1))
    # Rotated: k2 signs from now on, k1 is listed as retired.
    rotated = keyed_world(db, K2, K1)
    rotated.act(b.client, milestones.fund, b.draft.id)
    entries, events = rows(db)
    assert {row.mac_key_id for row in [*entries, *events]} == {"k1", "k2"}
    assert verify(db, RING_K2_K1).ok

    problems = verify(db, RING_K2).problems
    assert problems
    assert all("signed with ledger key 'k1', which is not configured" in p for p in problems)


def test_sign_rotate_re_signs_with_the_current_key_so_the_old_one_can_go(db: Database) -> None:
    b = busy(keyed_world(db, K1))
    keyed_world(db, K2, K1).act(b.client, milestones.fund, b.draft.id)

    report = sign_ledger(db, RING_K2_K1, rotate=True)
    assert report.refused == [] and report.entries_signed > 0 and report.events_signed > 0
    entries, events = rows(db)
    assert {row.mac_key_id for row in [*entries, *events]} == {"k2"}
    assert verify(db, RING_K2).ok
    # Work goes on with the new key alone.
    keyed_world(db, K2).act(b.freelancer, milestones.submit, b.draft.id, note="Done", evidence=[])
    assert verify(db, RING_K2).ok


# Turning the key on for an existing ledger ----------------------------------------------------------------


def test_rows_written_before_the_key_are_signed_once_by_ledger_sign(
    world: World, db: Database
) -> None:
    b = busy(world)  # no key yet
    # The key is turned on: new rows are signed, old ones are not yet.
    keyed = keyed_world(db)
    keyed.act(b.client, milestones.fund, b.draft.id)
    report = verify(db, RING_K1)
    assert not report.ok
    assert all(p.endswith("has no MAC") for p in report.problems)
    assert any("milepost ledger sign" in note for note in report.notes)

    signed = sign_ledger(db, RING_K1)
    assert signed.refused == []
    entries, events = rows(db)
    assert signed.entries_signed == len(entries) - 1  # the funding was signed when written
    assert all(row.mac_key_id == "k1" for row in [*entries, *events])
    assert verify(db, RING_K1).ok
    assert sign_ledger(db, RING_K1).entries_signed == 0  # once is enough
    # The chains keep growing, signed, after it.
    keyed.act(b.freelancer, milestones.submit, b.draft.id, note="Done", evidence=[])
    assert verify(db, RING_K1).ok


@pytest.mark.tampers
def test_ledger_sign_does_not_launder_a_row_that_fails_its_plain_hash(
    world: World, db: Database
) -> None:
    b = busy(world)
    entry = entry_of(db, EntryKind.DEPOSIT)
    target = funded_event(db, b.released.id)
    with db.unit_of_work() as session:
        session.execute(update(JournalEntry).where(JournalEntry.id == entry.id).values(memo="x"))
        session.execute(
            update(Posting)
            .where(Posting.entry_id == entry.id, Posting.amount > 0)
            .values(amount=Posting.amount + 1)
        )
        session.execute(
            update(MilestoneEvent).where(MilestoneEvent.id == target.id).values(amount=1)
        )

    report = sign_ledger(db, RING_K1)
    assert f"entry {entry.id} does not match its hash: not signed" in report.refused
    assert any(
        line.startswith(f"milestone {b.released.id}:") and "not signed" in line
        for line in report.refused
    )
    with db.read_only() as session:
        stored = session.get(JournalEntry, entry.id)
        assert stored is not None and stored.mac is None
    after = verify(db, RING_K1).problems
    assert f"entry {entry.id} has no MAC" in after
    assert f"entry {entry.id} does not match its hash: it was altered" in after


# Where verify is asked ----------------------------------------------------------------------------------


def staff_report(db: Database, settings: Settings) -> VerifyReport:
    world = World(db, settings)
    staff = world.user("staff", staff=True)
    with db.read_only() as session:
        actor = session.get(User, staff.id)
        return verify_as_staff(Context(session, actor, settings=settings))


def test_the_api_verification_checks_the_macs_with_the_servers_key(db: Database) -> None:
    settings = Settings(providers="sandbox,manual", ledger_key=K1)
    busy(World(db, settings))
    report = staff_report(db, settings)
    assert report.ok and report.macs_checked and report.notes == []
    unkeyed = staff_report(db, Settings())
    assert unkeyed.ok and not unkeyed.macs_checked
    assert unkeyed.notes == [NOT_CONFIGURED_NOTE]


def test_cli_verify_without_a_key_says_so_and_passes(
    world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MILEPOST_LEDGER_KEY", raising=False)
    busy(world)
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert f"note: {NOT_CONFIGURED_NOTE}" in result.stdout
    assert "ledger OK" in result.stdout


@pytest.mark.tampers
def test_cli_sign_then_verify_with_the_key(
    world: World, db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    b: Busy = busy(world)
    runner = CliRunner()
    monkeypatch.setenv("MILEPOST_LEDGER_KEY", K1)
    before = runner.invoke(app, ["ledger", "verify", "--db", db_url])
    assert before.exit_code == 1
    assert "has no MAC" in before.stderr and "milepost ledger sign" in before.stdout

    signed = runner.invoke(app, ["ledger", "sign", "--db", db_url])
    assert signed.exit_code == 0, signed.output
    assert "with ledger key 'k1'" in signed.stdout
    after = runner.invoke(app, ["ledger", "verify", "--db", db_url])
    assert after.exit_code == 0, after.output
    assert "keyed MACs with ledger key 'k1'" in after.stdout and "ledger OK" in after.stdout

    # An intruder rewrites a posting and recomputes the hash: the CLI says so.
    entry = entry_of(db, EntryKind.DEPOSIT)
    shift(db, entry.id, "external:sandbox:USD", user_account(b.client.id, "USD").key, 100)
    tampered = runner.invoke(app, ["ledger", "verify", "--db", db_url])
    assert tampered.exit_code == 1
    assert f"  - entry {entry.id} does not match its MAC: it was rewritten" in tampered.stderr

    monkeypatch.delenv("MILEPOST_LEDGER_KEY")
    refused = runner.invoke(app, ["ledger", "sign", "--db", db_url])
    assert refused.exit_code == 1
    assert "MILEPOST_LEDGER_KEY is not set" in refused.stderr


def test_a_malformed_key_is_refused_when_the_settings_load() -> None:
    for bad in ("no-colon-" + "x" * 40, "k1:short", "bad id:" + "x" * 40):
        with pytest.raises(ValueError, match="MILEPOST_LEDGER_KEY"):
            Settings(ledger_key=bad)
    with pytest.raises(ValueError, match="listed twice"):
        Settings(ledger_key=K1, ledger_old_keys=K1)


# The migration --------------------------------------------------------------------------------------------


def _alembic(db_url: str, direction: str, revision: str) -> None:
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    import milepost

    config = Config()
    config.set_main_option("script_location", str(Path(milepost.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    getattr(command, direction)(config, revision)


def test_an_existing_ledger_stays_verifiable_across_the_migration(
    world: World, db: Database, db_url: str
) -> None:
    """Rows written before 0012 verify by their plain hashes, and are signed once the key is on."""
    busy(world)
    db.engine.dispose()
    _alembic(db_url, "downgrade", "0008")
    try:
        with db.engine.connect() as connection:
            columns = connection.execute(text("SELECT * FROM ledger_entries")).keys()
            assert "mac" not in columns
    finally:
        db.engine.dispose()
        _alembic(db_url, "upgrade", "head")
    assert verify(db, NO_KEY).ok
    assert sign_ledger(db, RING_K1).refused == []
    assert verify(db, RING_K1).ok


# Over HTTP ----------------------------------------------------------------------------------------------


def test_get_ledger_verify_reports_whether_the_macs_were_checked(
    db: Database, tmp_path: Any
) -> None:
    from tests.api.conftest import Client, LiveServer

    for settings, checked, notes in (
        (
            Settings(
                providers="sandbox,manual", files_dir=str(tmp_path), run_worker=False, ledger_key=K1
            ),
            True,
            [],
        ),
        (
            Settings(providers="sandbox,manual", files_dir=str(tmp_path), run_worker=False),
            False,
            [NOT_CONFIGURED_NOTE],
        ),
    ):
        world = World(db, settings)
        busy(world)
        staff = world.user("staff", staff=True)
        with LiveServer(db, settings) as url:
            token = Client(url).post(
                "/v1/tokens", {"email": staff.email, "password": "correct horse battery"}
            )
            assert token.status_code == 201, token.text
            report = Client(url, token.json()["token"]).ok("GET", "/v1/ledger/verify")
        assert (report["macs_checked"], report["notes"]) == (checked, notes)
        # Rows of the keyless round have no MAC: with the key they are problems, without it fine.
        assert report["ok"] is (not checked or report["problems"] == [])


@given(st.text(), st.sampled_from([K1, K2]))
def test_a_mac_is_hmac_sha256_of_the_key_id_and_the_message(message: str, key: str) -> None:
    # Rows signed before the signer was kept prepared must still verify: the MAC is what the standard
    # library's one-shot HMAC makes of "<key id>|<message>", whichever key signed and however often.
    key_id, _, secret = key.partition(":")
    expected = hmac.digest(secret.encode(), f"{key_id}|{message}".encode(), "sha256").hex()
    ring = KeyRing.parse(key)
    assert ring.sign(message) == (key_id, expected)
    assert ring.sign(message) == (key_id, expected)
    assert ring.check(key_id, expected, message) is None
    assert ring.check(key_id, expected, message + "x") == "does not match its MAC: it was rewritten"
