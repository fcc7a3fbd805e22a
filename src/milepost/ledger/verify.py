"""``ledger verify``: recompute every balance from the postings and check every invariant.

Checks, each reported as a readable problem:
- every journal entry has at least two postings, sums to zero per currency, and matches its hash;
- every posting is in its account's currency;
- every account's cached balance equals the sum of its postings, and no user, escrow or clearing
  account is negative;
- every milestone's funded amount equals released + refunded + what its escrow account holds, and its
  fee equals the fee postings of its entries;
- every milestone's event chain is intact;
- on SQLite, the file itself passes ``PRAGMA quick_check`` (a damaged page can hide rows from every query
  through it, so the checks above could pass on a file that is losing data).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from milepost.audit.models import GENESIS_EVENT_HASH, MilestoneEvent
from milepost.audit.service import check_chain
from milepost.kit.context import Context
from milepost.kit.errors import PermissionDenied
from milepost.kit.storage import sqlite_quick_check
from milepost.ledger.models import NON_NEGATIVE_KINDS, Account, AccountKind, JournalEntry, Posting
from milepost.ledger.service import entry_hash
from milepost.milestones.models import Milestone


@dataclass
class VerifyReport:
    accounts: int = 0
    entries: int = 0
    milestones: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_ledger(session: Session) -> VerifyReport:
    report = VerifyReport()
    if session.get_bind().dialect.name == "sqlite":
        report.problems.extend(sqlite_quick_check(session.connection()))
    try:
        accounts = {account.id: account for account in session.scalars(select(Account))}
        report.accounts = len(accounts)
        _check_entries(session, accounts, report)
        _check_accounts(session, accounts, report)
        _check_milestones(session, report)
        _check_events(session, report)
    except DBAPIError as error:
        # A damaged file can fail the reads themselves: that is a finding, not a crash of the check.
        first_line = str(error.orig).strip().splitlines()[0]
        report.problems.append(f"the ledger could not be read to the end: {first_line}")
    return report


def _check_entries(session: Session, accounts: dict[str, Account], report: VerifyReport) -> None:
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
        sums: dict[str, int] = defaultdict(int)
        for posting in postings:
            sums[posting.currency] += posting.amount
            account = accounts.get(posting.account_id)
            if account is not None and account.currency != posting.currency:
                report.problems.append(
                    f"posting {posting.id} is in {posting.currency} but account {account.key} "
                    f"is in {account.currency}"
                )
        for currency, total in sorted(sums.items()):
            if total != 0:
                report.problems.append(
                    f"entry {entry.id} does not balance: {currency} sums to {total}"
                )
        recorded = [
            (accounts[p.account_id].key, p.amount, p.currency)
            for p in postings
            if p.account_id in accounts
        ]
        if entry_hash(entry, recorded) != entry.hash:
            report.problems.append(f"entry {entry.id} does not match its hash: it was altered")


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


def _check_events(session: Session, report: VerifyReport) -> None:
    by_milestone: dict[str, list[MilestoneEvent]] = defaultdict(list)
    for event in session.scalars(
        select(MilestoneEvent).order_by(MilestoneEvent.milestone_id, MilestoneEvent.seq)
    ):
        by_milestone[event.milestone_id].append(event)
        report.events += 1
    for events in by_milestone.values():
        for problem in check_chain(events):
            report.problems.append(
                f"milestone {problem.milestone_id} event {problem.seq}: {problem.message}"
            )
    # The head kept on each milestone must be the chain's last event: this catches events deleted from
    # the end of a chain (or a whole chain), which the links alone cannot show.
    for milestone_id, count, head in session.execute(
        select(Milestone.id, Milestone.event_count, Milestone.last_event_hash)
    ):
        events = by_milestone.get(milestone_id, [])
        last_hash = events[-1].hash if events else GENESIS_EVENT_HASH
        if count != len(events) or head != last_hash:
            report.problems.append(
                f"milestone {milestone_id}: its audit trail should hold {count} events ending in "
                f"{head[:12]}..., but holds {len(events)} ending in {last_hash[:12]}... "
                "(events were removed or added)"
            )


def verify_as_staff(ctx: Context) -> VerifyReport:
    """Verification over the API is for staff only."""
    if not ctx.require_actor().is_staff:
        raise PermissionDenied("Only staff can verify the ledger.", code="staff_only")
    return verify_ledger(ctx.session)
