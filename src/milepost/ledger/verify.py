"""``ledger verify``: recompute every balance from the postings and check every invariant.

Checks, each reported as a readable problem:
- every journal entry has at least two postings, sums to zero per currency, and matches its hash;
- every posting is in its account's currency;
- every account's cached balance equals the sum of its postings, and no user, escrow or clearing
  account is negative;
- every milestone's funded amount equals released + refunded + what its escrow account holds, and its
  fee equals the fee postings of its entries;
- every milestone's event chain is intact;
- a ledger entry and the audit event of the same change name each other, and are of one change: the
  same milestone, the same moment, an action that records that kind of entry (the link is made after
  the entry's hash and MAC, so neither covers it; these facts are covered by both rows' hashes);
- each provider's payout clearing account holds exactly its pending payouts (a failed payout's money
  went back, a paid one's went out), and no rejected deposit was credited.
- with a ledger key configured (``MILEPOST_LEDGER_KEY``, kit/macs.py), every entry and every event carries
  a keyed MAC that verifies with a listed key. A row without one is a problem too: nothing in the
  database can tell a row written before the key from one whose MAC an intruder removed, so rows written
  before the key are signed once with ``milepost ledger sign``. Without a key the MACs are not checked,
  and the report says so.

What the MACs show that the plain hashes cannot: an intruder with write access to the database but not
the key can recompute a SHA-256, not an HMAC.
- Audit events are chained per milestone, each MAC covering the previous event's MAC: rewriting an event,
  inserting one, or deleting or reordering events in a chain fails a MAC even when every plain hash and
  link is recomputed. Cutting events off the end of a chain and setting the milestone's head back to an
  earlier event leaves a consistent shorter chain; only a copy of the head kept elsewhere shows that.
- Journal entries are signed one by one (the entry, its postings as account key, amount and currency, its
  memo and actor), not chained: a chain across entries would make every money operation in the system
  wait on one head row. A rewritten or forged entry or posting fails its MAC; a whole entry deleted with
  its postings (and the balances adjusted to match) does not, though the milestone checks above notice
  when it moved escrow money, and the audit chain records every funding and release.
- on SQLite, the file itself passes ``PRAGMA quick_check`` (a damaged page can hide rows from every query
  through it, so the checks above could pass on a file that is losing data).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from milepost.audit.models import GENESIS_EVENT_HASH, MilestoneEvent
from milepost.audit.service import check_chain
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.macs import NOT_CONFIGURED_NOTE, UNSIGNED, KeyRing, ledger_keys
from milepost.kit.storage import sqlite_quick_check
from milepost.ledger.models import (
    ENTRY_ACTIONS,
    NON_NEGATIVE_KINDS,
    Account,
    AccountKind,
    EntryKind,
    JournalEntry,
    Posting,
)
from milepost.ledger.service import entry_hash, entry_mac_message
from milepost.milestones.models import Milestone
from milepost.settings import get_settings
from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutStatus


@dataclass
class VerifyReport:
    accounts: int = 0
    entries: int = 0
    milestones: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)
    # Whether the keyed MACs were checked (a ledger key is configured), and what the reader should know
    # that is not a problem.
    macs_checked: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_ledger(session: Session, keys: KeyRing | None = None) -> VerifyReport:
    """Check everything; the MACs with ``keys`` (default: the ledger keys of the settings)."""
    keys = ledger_keys(get_settings()) if keys is None else keys
    report = VerifyReport(macs_checked=keys.configured)
    if not keys.configured:
        report.notes.append(NOT_CONFIGURED_NOTE)
    if session.get_bind().dialect.name == "sqlite":
        report.problems.extend(sqlite_quick_check(session.connection()))
    try:
        accounts = {account.id: account for account in session.scalars(select(Account))}
        report.accounts = len(accounts)
        _check_entries(session, accounts, report, keys)
        _check_accounts(session, accounts, report)
        _check_milestones(session, report)
        _check_events(session, report, keys)
        _check_links(session, report)
        _check_transfers(session, accounts, report)
    except DBAPIError as error:
        # A damaged file can fail the reads themselves: that is a finding, not a crash of the check.
        first_line = str(error.orig).strip().splitlines()[0]
        report.problems.append(f"the ledger could not be read to the end: {first_line}")
    if any(problem.endswith(UNSIGNED) for problem in report.problems):
        report.notes.append(
            "rows without a MAC: if they were written before MILEPOST_LEDGER_KEY was set, sign them "
            "once with 'milepost ledger sign'"
        )
    return report


def _check_entries(
    session: Session, accounts: dict[str, Account], report: VerifyReport, keys: KeyRing
) -> None:
    postings_by_entry: dict[str, list[Posting]] = defaultdict(list)
    for posting in session.scalars(select(Posting).order_by(Posting.id)):
        postings_by_entry[posting.entry_id].append(posting)
    for entry in session.scalars(
        select(JournalEntry).execution_options(populate_existing=True).order_by(JournalEntry.id)
    ):
        report.entries += 1
        postings = postings_by_entry.get(entry.id, [])
        if len(postings) < 2:
            report.problems.append(
                f"entry {entry.id} has {len(postings)} posting(s); needs two or more"
            )
        report.problems += _balance_problems(entry, postings, accounts)
        recorded = [
            (accounts[p.account_id].key, p.amount, p.currency)
            for p in postings
            if p.account_id in accounts
        ]
        if entry_hash(entry, recorded) != entry.hash:
            report.problems.append(f"entry {entry.id} does not match its hash: it was altered")
        if keys.configured:
            problem = keys.check(entry.mac_key_id, entry.mac, entry_mac_message(entry))
            if problem is not None:
                report.problems.append(f"entry {entry.id} {problem}")


def _balance_problems(
    entry: JournalEntry, postings: list[Posting], accounts: dict[str, Account]
) -> list[str]:
    """An entry's postings each in their account's currency, and summing to zero in every currency."""
    problems: list[str] = []
    sums: dict[str, int] = defaultdict(int)
    for posting in postings:
        sums[posting.currency] += posting.amount
        account = accounts.get(posting.account_id)
        if account is not None and account.currency != posting.currency:
            problems.append(
                f"posting {posting.id} is in {posting.currency} but account {account.key} "
                f"is in {account.currency}"
            )
    problems += [
        f"entry {entry.id} does not balance: {currency} sums to {total}"
        for currency, total in sorted(sums.items())
        if total != 0
    ]
    return problems


def _check_accounts(session: Session, accounts: dict[str, Account], report: VerifyReport) -> None:
    sums = dict(
        session.execute(
            select(Posting.account_id, func.sum(Posting.amount)).group_by(Posting.account_id)
        ).all()
    )
    for account in accounts.values():
        recomputed = int(sums.get(account.id) or 0)
        if account.balance != recomputed:
            report.problems.append(
                f"account {account.key} says {account.balance} but its postings sum to {recomputed}"
            )
        if account.kind in NON_NEGATIVE_KINDS and recomputed < 0:
            report.problems.append(f"account {account.key} is negative: {recomputed}")


def _check_milestones(session: Session, report: VerifyReport) -> None:
    escrow = dict(
        session.execute(
            select(Account.milestone_id, func.sum(Posting.amount))
            .join(Posting, Posting.account_id == Account.id)
            .where(Account.kind == AccountKind.ESCROW)
            .group_by(Account.milestone_id)
        ).all()
    )
    fees = dict(
        session.execute(
            select(JournalEntry.milestone_id, func.sum(Posting.amount))
            .join(Posting, Posting.entry_id == JournalEntry.id)
            .join(Account, Account.id == Posting.account_id)
            .where(Account.kind == AccountKind.PLATFORM_FEE, JournalEntry.milestone_id.is_not(None))
            .group_by(JournalEntry.milestone_id)
        ).all()
    )
    for milestone in session.scalars(select(Milestone).order_by(Milestone.id)):
        report.milestones += 1
        held = int(escrow.get(milestone.id) or 0)
        accounted = milestone.released_amount + milestone.refunded_amount + held
        if milestone.funded_amount != accounted:
            report.problems.append(
                f"milestone {milestone.id}: funded {milestone.funded_amount} but released "
                f"{milestone.released_amount} + refunded {milestone.refunded_amount} + escrow {held} "
                f"= {accounted}"
            )
        fee = int(fees.get(milestone.id) or 0)
        if milestone.fee_amount != fee:
            report.problems.append(
                f"milestone {milestone.id}: fee says {milestone.fee_amount} but fee postings sum to {fee}"
            )


def _check_events(session: Session, report: VerifyReport, keys: KeyRing) -> None:
    by_milestone: dict[str, list[MilestoneEvent]] = defaultdict(list)
    for event in session.scalars(
        select(MilestoneEvent).order_by(MilestoneEvent.milestone_id, MilestoneEvent.seq)
    ):
        by_milestone[event.milestone_id].append(event)
        report.events += 1
    for events in by_milestone.values():
        for problem in check_chain(events, keys):
            report.problems.append(
                f"milestone {problem.milestone_id} event {problem.seq}: {problem.message}"
            )
    # The head kept on each milestone must be the chain's last event: this catches events deleted from
    # the end of a chain (or a whole chain), which the links alone cannot show.
    for milestone_id, count, head, head_mac in session.execute(
        select(
            Milestone.id, Milestone.event_count, Milestone.last_event_hash, Milestone.last_event_mac
        )
    ):
        events = by_milestone.get(milestone_id, [])
        last_hash = events[-1].hash if events else GENESIS_EVENT_HASH
        last_mac = events[-1].mac if events else None
        if head_mac != last_mac:
            report.problems.append(
                f"milestone {milestone_id}: its audit trail's head MAC is not its last event's "
                "(events were removed or added, or the head rewritten)"
            )
        if count != len(events) or head != last_hash:
            report.problems.append(
                f"milestone {milestone_id}: its audit trail should hold {count} events ending in "
                f"{head[:12]}..., but holds {len(events)} ending in {last_hash[:12]}... "
                "(events were removed or added)"
            )


@dataclass(frozen=True)
class _Linked:
    """One side of an entry-event link, with the facts of its row that its hash covers."""

    id: str
    milestone_id: str | None
    created_at: datetime
    names: str | None  # the other side's id
    kind: str  # the entry's kind, or the event's action


def _check_links(session: Session, report: VerifyReport) -> None:
    """The link between an entry and its event is not under either hash (it is made after the entry's),
    so it is checked against what both hashes cover: each side names the other, of the same milestone,
    at the same moment (one unit of work), with an action that records that kind of entry. A link
    re-pointed by hand would have to find another such event, and a change has one."""
    entries = {
        row.id: _Linked(row.id, row.milestone_id, row.created_at, row.event_id, str(row.kind))
        for row in session.execute(
            select(
                JournalEntry.id,
                JournalEntry.milestone_id,
                JournalEntry.created_at,
                JournalEntry.event_id,
                JournalEntry.kind,
            ).where(JournalEntry.milestone_id.is_not(None))
        )
    }
    events = {
        row.id: _Linked(row.id, row.milestone_id, row.created_at, row.entry_id, row.action)
        for row in session.execute(
            select(
                MilestoneEvent.id,
                MilestoneEvent.milestone_id,
                MilestoneEvent.created_at,
                MilestoneEvent.entry_id,
                MilestoneEvent.action,
            ).where(MilestoneEvent.entry_id.is_not(None))
        )
    }
    for entry in sorted(entries.values(), key=lambda linked: linked.id):
        if entry.names is None:
            continue
        event = events.get(entry.names)
        if event is None or event.names != entry.id:
            report.problems.append(
                f"entry {entry.id} names event {entry.names}, which does not name it back"
            )
        elif (event.milestone_id, event.created_at) != (entry.milestone_id, entry.created_at) or (
            event.kind not in ENTRY_ACTIONS.get(EntryKind(entry.kind), ())
        ):
            report.problems.append(
                f"entry {entry.id} ({entry.kind}) and event {event.id} ({event.kind}) name each "
                "other but are not of one change (milestone, time or action differ)"
            )
    for event in sorted(events.values(), key=lambda linked: linked.id):
        assert event.names is not None
        if entries.get(event.names) is None or entries[event.names].names != event.id:
            report.problems.append(
                f"event {event.id} names entry {event.names}, which does not name it back"
            )


def _check_transfers(session: Session, accounts: dict[str, Account], report: VerifyReport) -> None:
    pending = {
        (provider, currency): int(total or 0)
        for provider, currency, total in session.execute(
            select(Payout.provider, Payout.currency, func.sum(Payout.amount))
            .where(Payout.status == PayoutStatus.PENDING)
            .group_by(Payout.provider, Payout.currency)
        )
    }
    clearing: dict[tuple[str, str], int] = {
        (account.provider or "", account.currency): account.balance
        for account in accounts.values()
        if account.kind is AccountKind.PAYOUT_CLEARING
    }
    for provider, currency in sorted(set(pending) | set(clearing), key=str):
        held, waiting = clearing.get((provider, currency), 0), pending.get((provider, currency), 0)
        if held != waiting:
            report.problems.append(
                f"payout clearing for {provider} holds {held} {currency} but pending payouts "
                f"come to {waiting}"
            )
    for deposit_id in session.scalars(
        select(Deposit.id).where(
            Deposit.status == DepositStatus.REJECTED, Deposit.entry_id.is_not(None)
        )
    ):
        report.problems.append(f"deposit {deposit_id} was rejected but has a ledger entry")


def verify_as_staff(ctx: Context) -> VerifyReport:
    """Verification over the API is for staff only."""
    ctx.require_staff("verify the ledger")
    return verify_ledger(ctx.session, ledger_keys(ctx.settings))


def record_verification(db: Database, report: VerifyReport, *, started_at: datetime) -> None:
    """Keep what a run of ``milepost ledger verify`` found (its time, result and problem count), for the
    metrics (``milepost_ledger_last_verification_*``) and whoever asks when the ledger last verified."""
    from milepost.kit.ids import new_id
    from milepost.kit.time import utcnow
    from milepost.ledger.models import LedgerVerification

    with db.unit_of_work() as session:
        session.add(
            LedgerVerification(
                id=new_id("lv"),
                started_at=started_at,
                finished_at=utcnow(),
                ok=report.ok,
                problems=len(report.problems),
                entries=report.entries,
                macs_checked=report.macs_checked,
            )
        )
