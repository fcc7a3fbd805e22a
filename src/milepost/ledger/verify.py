"""``ledger verify``: recompute every balance from the postings and check every invariant.

Checks, each reported as a readable problem:
- every journal entry has at least two postings, each in its account's currency, sums to zero per
  currency, and matches its hash (all read in one pass with the entry, verify_hashes.py);
- every account's cached balance equals the sum of its postings, and no user, escrow or clearing
  account is negative;
- every milestone's funded amount equals released + refunded + what its escrow account holds, and its
  fee equals the fee postings of its entries;
- every project's kept totals (planned, in escrow, released) equal its milestones' sums;
- every milestone's event chain is intact, and every project's own trail (offers, milestone requests,
  pauses: audit/project_trail.py), each ending at the head kept on its row;
- a ledger entry and the audit event of the same change name each other, and are of one change: the
  same milestone, the same moment, an action that records that kind of entry (the link is made after
  the entry's hash and MAC, so neither covers it; these facts are covered by both rows' hashes);
- each user's pending account (money not cleared yet) holds exactly what their deposits have not
  cleared;
- the platform's loss account holds exactly what reversed deposits (not given back) could not recover;
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

How it reads, so that its memory stays flat however large the ledger grows: the sums (balances against
their postings, escrow and fees against the milestones' columns, the two sides of each entry-event link)
are computed by the database, which sends back only the rows that may fail; the hashes and MACs, which
only Python can recompute, are checked while the rows stream past in batches (verify_hashes.py), one
entry with its postings (whose count, currencies and sums are checked there too, from the same row), or
one milestone with its events, at a time. On a large ledger those checks can be spread over worker
processes (``workers``: the command line uses every core), which run while this process has the
database compute the sums. Each check is one function of the session
and the report; problems are listed check by check, in the same order however the work was spread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Row, Select, and_, func, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from milepost.audit.models import MilestoneEvent
from milepost.audit.project_trail import check_project_trails
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
from milepost.ledger.verify_hashes import (
    SPREAD_FROM,
    Check,
    Pending,
    here,
    ranges,
    spread_over,
    stream,
    submit,
)
from milepost.milestones.models import Milestone
from milepost.projects.models import Project, ProjectTotals
from milepost.settings import get_settings
from milepost.wallets.models import Deposit, DepositReversal, DepositStatus, Payout, PayoutStatus


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


class Progress(Protocol):
    """Who watches a run (the command line's progress bar): told each stage as it starts, with how many
    rows it will read when that is known, and how many it has read since the last call."""

    def stage(self, name: str, total: int | None = None) -> None: ...

    def advance(self, rows: int) -> None: ...


class _Unwatched:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass


def verify_ledger(
    session: Session,
    keys: KeyRing | None = None,
    progress: Progress | None = None,
    *,
    workers: int = 1,
) -> VerifyReport:
    """Check everything; the MACs with ``keys`` (default: the ledger keys of the settings). With
    ``workers`` > 1 and a ledger of ``SPREAD_FROM`` rows or more in a database other processes can open,
    the hash checks run in that many worker processes."""
    keys = ledger_keys(get_settings()) if keys is None else keys
    progress = progress or _Unwatched()
    report = VerifyReport(macs_checked=keys.configured)
    if not keys.configured:
        report.notes.append(NOT_CONFIGURED_NOTE)
    # On SQLite the file's own check comes first in the report, but runs once the hash checks have
    # started in their worker processes: it reads the whole file on one core, and the other is theirs.
    file_checked = session.get_bind().dialect.name != "sqlite"
    try:
        with _hash_checks(session, keys, workers) as (totals, hashes):
            if not file_checked:
                progress.stage("SQLite quick_check")
                report.problems.extend(sqlite_quick_check(session.connection()))
                file_checked = True
            # What the database sums comes first, while the worker processes hash.
            _check_accounts(session, report, progress)
            _check_milestones(session, report, progress)
            _check_projects(session, report, progress)
            progress.stage("project trails")
            report.problems.extend(check_project_trails(session, keys))
            _check_links(session, report, progress)
            _check_transfers(session, report, progress)
            report.entries = _collect(report, Check.SEALS, totals, hashes, progress)
            report.milestones = _collect(report, Check.TRAILS, totals, hashes, progress)
    except DBAPIError as error:
        # A damaged file can fail the reads themselves: that is a finding, not a crash of the check.
        first_line = str(error.orig).strip().splitlines()[0]
        if not file_checked:  # the counts that come before it failed: say what is damaged first
            report.problems.extend(sqlite_quick_check(session.connection()))
        report.problems.append(f"the ledger could not be read to the end: {first_line}")
    if any(problem.endswith(UNSIGNED) for problem in report.problems):
        report.notes.append(
            "rows without a MAC: if they were written before MILEPOST_LEDGER_KEY was set, sign them "
            "once with 'milepost ledger sign'"
        )
    return report


def _count(session: Session, model: type[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


@contextmanager
def _hash_checks(
    session: Session, keys: KeyRing, workers: int
) -> Iterator[tuple[dict[Check, int], dict[Check, Pending]]]:
    """The hash checks, cut into ranges: started now in worker processes (so that they run while this
    process goes on with the sums), or to be run here when collected."""
    totals = {Check.SEALS: _count(session, JournalEntry), Check.TRAILS: _count(session, Milestone)}
    url = session.connection().engine.url
    in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    if workers < 2 or sum(totals.values()) < SPREAD_FROM or in_memory:
        parts = {check: ranges(session, check, totals[check]) for check in Check}
        yield totals, {check: here(session, parts[check], keys) for check in Check}
        return
    # The worker processes start before the ranges are cut (one pass over each id index), so that
    # they import while this process reads. The audit trails go first: a range of milestones takes
    # about three times as long to check as a range of entries, and with the longer tasks queued first
    # the processes finish closer together (the last task left to one of them is a short one).
    pool = spread_over(url.render_as_string(hide_password=False), workers)
    try:
        yield (
            totals,
            {
                check: submit(pool, ranges(session, check, totals[check]), keys)
                for check in (Check.TRAILS, Check.SEALS)
            },
        )
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()


def _collect(
    report: VerifyReport,
    check: Check,
    totals: dict[Check, int],
    hashes: dict[Check, Pending],
    progress: Progress,
) -> int:
    """The problems of one hash check, range by range, in order; how many rows it read."""
    progress.stage(check.value, totals[check])
    rows = 0
    for found in hashes[check]:
        rows += found.rows
        report.events += found.events
        report.problems += found.problems
        progress.advance(found.rows)
    return rows


# Sums ---------------------------------------------------------------------------------------------------


def _check_accounts(session: Session, report: VerifyReport, progress: Progress) -> None:
    """Every account's cached balance against the sum of its postings, and the protected kinds never
    below zero: summed by the database, which sends back only the accounts that fail."""
    progress.stage("account balances")
    report.accounts = _count(session, Account)
    sums = (
        select(Posting.account_id, func.sum(Posting.amount).label("total"))
        .group_by(Posting.account_id)
        .subquery()
    )
    total = func.coalesce(sums.c.total, 0)
    failing = (
        select(Account.key, Account.kind, Account.balance, total.label("total"))
        .outerjoin(sums, sums.c.account_id == Account.id)
        .where(or_(Account.balance != total, and_(Account.kind.in_(NON_NEGATIVE_KINDS), total < 0)))
        .order_by(Account.key)
    )
    for key, kind, balance, summed in stream(session, failing):
        recomputed = int(summed)
        if balance != recomputed:
            report.problems.append(
                f"account {key} says {balance} but its postings sum to {recomputed}"
            )
        if kind in NON_NEGATIVE_KINDS and recomputed < 0:
            report.problems.append(f"account {key} is negative: {recomputed}")


def _check_milestones(session: Session, report: VerifyReport, progress: Progress) -> None:
    """Every milestone's funded amount against released + refunded + its escrow, and its fee against the
    fee postings of its entries: summed by the database, which sends back the failures.

    The escrow is its accounts' balances rather than a second sum of their postings: ``_check_accounts``
    has compared every balance with its postings already, so a milestone whose postings and balance
    disagree is reported there, and a milestone whose amounts disagree with its escrow is reported here
    either way (on PostgreSQL, at 1M postings without statistics, the second pass over every posting
    took about 1.2 s of the database's 2.9 s for this query)."""
    progress.stage("milestone amounts")
    escrow = (
        select(Account.milestone_id, func.sum(Account.balance).label("held"))
        .where(Account.kind == AccountKind.ESCROW)
        .group_by(Account.milestone_id)
        .subquery()
    )
    fees = (
        select(JournalEntry.milestone_id, func.sum(Posting.amount).label("fee"))
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.kind == AccountKind.PLATFORM_FEE, JournalEntry.milestone_id.is_not(None))
        .group_by(JournalEntry.milestone_id)
        .subquery()
    )
    held, fee = func.coalesce(escrow.c.held, 0), func.coalesce(fees.c.fee, 0)
    m = Milestone
    failing = (
        select(
            m.id,
            m.funded_amount,
            m.released_amount,
            m.refunded_amount,
            m.fee_amount,
            held.label("held"),
            fee.label("fee"),
        )
        .outerjoin(escrow, escrow.c.milestone_id == m.id)
        .outerjoin(fees, fees.c.milestone_id == m.id)
        .where(
            or_(
                m.funded_amount != m.released_amount + m.refunded_amount + held, m.fee_amount != fee
            )
        )
        .order_by(m.id)
    )
    for row in stream(session, failing):
        report.problems += _milestone_problems(row)


def _check_projects(session: Session, report: VerifyReport, progress: Progress) -> None:
    """Every project's kept totals (``ProjectTotals``) against its milestones: summed by the database,
    which sends back the projects whose figures differ."""
    progress.stage("project totals")
    m, kept = Milestone, ProjectTotals
    summed = {
        "planned_amount": m.planned_share,
        "in_escrow_amount": m.escrow_balance,
        "released_amount": m.released_amount,
    }
    sums = (
        select(m.project_id, *(func.sum(value).label(column) for column, value in summed.items()))
        .group_by(m.project_id)
        .subquery()
    )
    actual = {column: func.coalesce(sums.c[column], 0) for column in summed}
    failing = (
        select(
            Project.id,
            kept.project_id.label("kept"),
            *(getattr(kept, column) for column in summed),
            *(value.label(f"summed_{column}") for column, value in actual.items()),
        )
        .outerjoin(kept, kept.project_id == Project.id)
        .outerjoin(sums, sums.c.project_id == Project.id)
        .where(
            or_(
                kept.project_id.is_(None),
                *(getattr(kept, column) != value for column, value in actual.items()),
            )
        )
        .order_by(Project.id)
    )
    for row in stream(session, failing):
        if row.kept is None:
            report.problems.append(f"project {row.id} has no totals row")
            continue
        report.problems.append(
            f"project {row.id}: its totals say {row.planned_amount} planned, "
            f"{row.in_escrow_amount} in escrow and {row.released_amount} released, but its "
            f"milestones add up to {int(row.summed_planned_amount)}, "
            f"{int(row.summed_in_escrow_amount)} and {int(row.summed_released_amount)}"
        )


def _milestone_problems(row: Row[*tuple[Any, ...]]) -> list[str]:
    problems = []
    held = int(row.held)
    accounted = row.released_amount + row.refunded_amount + held
    if row.funded_amount != accounted:
        problems.append(
            f"milestone {row.id}: funded {row.funded_amount} but released "
            f"{row.released_amount} + refunded {row.refunded_amount} + escrow {held} = {accounted}"
        )
    if row.fee_amount != int(row.fee):
        problems.append(
            f"milestone {row.id}: fee says {row.fee_amount} but fee postings sum to {int(row.fee)}"
        )
    return problems


# Entry-event links --------------------------------------------------------------------------------------


def _check_links(session: Session, report: VerifyReport, progress: Progress) -> None:
    """The link between an entry and its event is not under either hash (it is made after the entry's),
    so it is checked against what both hashes cover: each side names the other, of the same milestone,
    at the same moment (one unit of work), with an action that records that kind of entry. A link
    re-pointed by hand would have to find another such event, and a change has one.

    The database joins each side to the row it names and sends back only the pairs that may fail (a
    superset); the rule itself is decided here, on those."""
    progress.stage("entry-event links")
    entry, event = JournalEntry, MilestoneEvent
    one_change = or_(
        *(
            and_(entry.kind == kind, event.action.in_(actions))
            for kind, actions in ENTRY_ACTIONS.items()
        )
    )
    for row in stream(
        session,
        select(
            entry.id,
            entry.kind,
            entry.milestone_id,
            entry.created_at,
            entry.event_id,
            event.id.label("event_found"),
            event.entry_id.label("names_back"),
            event.milestone_id.label("event_milestone_id"),
            event.created_at.label("event_created_at"),
            event.action,
        )
        .outerjoin(event, event.id == entry.event_id)
        .where(entry.milestone_id.is_not(None), entry.event_id.is_not(None))
        .where(
            or_(
                event.id.is_(None),
                event.entry_id.is_(None),
                event.entry_id != entry.id,
                event.milestone_id != entry.milestone_id,
                event.created_at != entry.created_at,
                ~one_change,
            )
        )
        .order_by(entry.id),
    ):
        report.problems += _link_problems(row)
    for event_id, entry_id in stream(
        session,
        select(event.id, event.entry_id)
        .outerjoin(entry, and_(entry.id == event.entry_id, entry.milestone_id.is_not(None)))
        .where(event.entry_id.is_not(None))
        .where(or_(entry.id.is_(None), entry.event_id.is_(None), entry.event_id != event.id))
        .order_by(event.id),
    ):
        report.problems.append(
            f"event {event_id} names entry {entry_id}, which does not name it back"
        )


def _link_problems(row: Row[*tuple[Any, ...]]) -> list[str]:
    """What is wrong with one entry's side of its link, if anything."""
    if row.event_found is None or row.names_back != row.id:
        return [f"entry {row.id} names event {row.event_id}, which does not name it back"]
    kind = str(row.kind)
    if (row.event_milestone_id, row.event_created_at) != (row.milestone_id, row.created_at) or (
        row.action not in ENTRY_ACTIONS.get(EntryKind(kind), ())
    ):
        return [
            f"entry {row.id} ({kind}) and event {row.event_found} ({row.action}) name each "
            "other but are not of one change (milestone, time or action differ)"
        ]
    return []


# Transfers ----------------------------------------------------------------------------------------------


def _check_transfers(session: Session, report: VerifyReport, progress: Progress) -> None:
    progress.stage("payouts and deposits")
    # Each account kept for rows elsewhere must hold exactly what those rows come to.
    pending_payouts = _totals(
        session,
        select(Payout.provider, Payout.currency, func.sum(Payout.amount))
        .where(Payout.status == PayoutStatus.PENDING)
        .group_by(Payout.provider, Payout.currency),
    )
    clearing = _totals(
        session,
        select(Account.provider, Account.currency, Account.balance).where(
            Account.kind == AccountKind.PAYOUT_CLEARING
        ),
    )
    for (provider, currency), held, waiting in _mismatches(clearing, pending_payouts):
        report.problems.append(
            f"payout clearing for {provider} holds {held} {currency} but pending payouts "
            f"come to {waiting}"
        )
    uncleared = _totals(
        session,
        select(Deposit.user_id, Deposit.currency, func.sum(Deposit.uncleared))
        .where(Deposit.uncleared > 0)
        .group_by(Deposit.user_id, Deposit.currency),
    )
    not_cleared = _totals(
        session,
        select(Account.user_id, Account.currency, Account.balance).where(
            Account.kind == AccountKind.PENDING, Account.balance != 0
        ),
    )
    for (user_id, currency), held, owed in _mismatches(not_cleared, uncleared):
        report.problems.append(
            f"user {user_id}'s money not cleared holds {held} {currency} but their deposits "
            f"not cleared come to {owed}"
        )
    lost = _totals(
        session,
        select(DepositReversal.currency, func.sum(DepositReversal.loss))
        .where(DepositReversal.reinstated_at.is_(None))  # a won dispute made its loss good
        .group_by(DepositReversal.currency),
    )
    recorded = _totals(
        session,
        select(Account.currency, -Account.balance).where(Account.kind == AccountKind.PLATFORM_LOSS),
    )
    for (currency,), held, owed in _mismatches(recorded, lost):
        report.problems.append(
            f"the platform's losses in {currency} come to {held} but the "
            f"reversed deposits' losses to {owed}"
        )
    for deposit_id in session.scalars(
        select(Deposit.id).where(
            Deposit.status == DepositStatus.REJECTED, Deposit.entry_id.is_not(None)
        )
    ):
        report.problems.append(f"deposit {deposit_id} was rejected but has a ledger entry")


def _totals(session: Session, query: Select[*tuple[Any, ...]]) -> dict[tuple[str, ...], int]:
    """A query's rows as {its first columns: its last column} (a missing owner read as "")."""
    return {
        tuple(part or "" for part in row[:-1]): int(row[-1] or 0) for row in session.execute(query)
    }


def _mismatches(
    held: dict[tuple[str, ...], int], owed: dict[tuple[str, ...], int]
) -> list[tuple[tuple[str, ...], int, int]]:
    """The keys on which two totals differ (0 where one has none), with both figures."""
    return [
        (key, held.get(key, 0), owed.get(key, 0))
        for key in sorted(set(held) | set(owed))
        if held.get(key, 0) != owed.get(key, 0)
    ]


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
