"""Statements: a user's ledger postings as CSV, oldest first, with a running balance per account.

The running balance starts from the account's balance just before the period (shown as an
``opening_balance`` line when there was history before it), so on a period that runs to today it ends at
the account's balance: for a user, the available balance ``GET /v1/balances`` shows.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, func, select

from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import InvalidRequest
from milepost.ledger.models import Account, JournalEntry, Posting

COLUMNS = (
    "date",
    "created_at",
    "entry_id",
    "entry_kind",
    "milestone_id",
    "account",
    "currency",
    "amount",
    "balance",
    "memo",
)
OPENING_BALANCE = "opening_balance"


@dataclass(frozen=True)
class StatementLine:
    day: date
    created_at: datetime | None  # None on an opening balance line
    entry_id: str
    entry_kind: str
    milestone_id: str | None
    account: str
    currency: str
    amount: int
    balance: int  # the account's balance after this line
    memo: str

    def row(self) -> list[str]:
        return [
            self.day.isoformat(),
            "" if self.created_at is None else self.created_at.isoformat(),
            self.entry_id,
            self.entry_kind,
            self.milestone_id or "",
            self.account,
            self.currency,
            str(self.amount),
            str(self.balance),
            self.memo,
        ]


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def check_period(start: date | None, end: date | None) -> None:
    if start is not None:
        validate.date_in_range(start, "from")
    if end is not None:
        validate.date_in_range(end, "to")  # the query adds a day to it
    if start is not None and end is not None and start > end:
        raise InvalidRequest("The period's start (from) is after its end (to).", param="from")


# The postings of a period are found one of two ways: by the entries' time (every account's entries of
# the period, through ix_ledger_entries_created_at_id, the statement's accounts picked out of them), or by
# account (each account's postings of all time, the period picked out of them). The first costs what the
# period holds, the second what the accounts ever held; an account's history only grows, so the first is
# taken whenever the period has fewer entries than this (counted up to this many, no further), and the
# second otherwise: never slower than reading the accounts' whole history, as statements used to.
BY_TIME_UP_TO = 10_000


def _few_entries_since(ctx: Context, since: datetime) -> bool:
    counted = select(JournalEntry.id).where(JournalEntry.created_at >= since).limit(BY_TIME_UP_TO)
    return int(ctx.session.scalar(select(func.count()).select_from(counted.subquery())) or 0) < (
        BY_TIME_UP_TO
    )


def _account(*, by_time: bool) -> ColumnElement[str]:
    """The posting's account, to filter or group by. Found by time, it is an expression
    (``account_id || ''``) that no index answers: otherwise a database without statistics (SQLite)
    would rather read every posting by account, in the order of the (account_id, id) index."""
    column = Posting.account_id.expression
    return column + "" if by_time else column


def _of_accounts(account_ids: list[str] | None, *, by_time: bool) -> list[ColumnElement[bool]]:
    """The filter of postings to the statement's accounts (None: every account: no filter)."""
    return [] if account_ids is None else [_account(by_time=by_time).in_(account_ids)]


@dataclass(frozen=True)
class _Opening:
    key: str
    currency: str
    balance: int


def _opening_balances(
    ctx: Context, account_ids: list[str] | None, since: datetime, *, by_time: bool
) -> list[_Opening]:
    """The balance just before ``since`` of every account in scope (None: every account) that had
    postings before it, by key: its balance now less what was posted to it since, in one statement (one
    snapshot: a posting committed meanwhile is in both or in neither). What was posted before ``since``
    is not read, however long the history; only whether there was any, which the account's first
    posting answers."""
    account = _account(by_time=by_time)
    since_then = select(JournalEntry.id).where(JournalEntry.created_at >= since)
    later = (
        select(account.label("account_id"), func.sum(Posting.amount).label("total"))
        .where(Posting.entry_id.in_(since_then), *_of_accounts(account_ids, by_time=by_time))
        .group_by(account)
        .subquery()
    )
    earlier = (
        select(Posting.id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(Posting.account_id == Account.id, JournalEntry.created_at < since)
        .exists()
    )
    query = (
        select(
            Account.key,
            Account.currency,
            Account.balance - func.coalesce(later.c.total, 0),
            earlier,
        )
        .outerjoin(later, later.c.account_id == Account.id)
        .order_by(Account.key)
    )
    if account_ids is not None:
        query = query.where(Account.id.in_(account_ids))
    return [
        _Opening(key, currency, int(opening))
        for key, currency, opening, had_postings in ctx.session.execute(query)
        if had_postings
    ]


def statement(
    ctx: Context, user_id: str | None, *, start: date | None = None, end: date | None = None
) -> list[StatementLine]:
    """The postings on ``user_id``'s accounts (None: every account) from ``start`` to ``end`` (UTC days,
    both included; either may be open), oldest first, each with its account's balance after it."""
    check_period(start, end)
    since = None if start is None else _start_of(start)
    account_ids = (
        None
        if user_id is None
        else list(ctx.session.scalars(select(Account.id).where(Account.user_id == user_id)))
    )
    if account_ids == []:
        return []  # no account: nothing was ever posted to this user
    by_time = since is not None and (account_ids is None or _few_entries_since(ctx, since))
    lines: list[StatementLine] = []
    balances: dict[str, int] = defaultdict(int)
    if start is not None:
        for opening in _opening_balances(ctx, account_ids, _start_of(start), by_time=by_time):
            balances[opening.key] = opening.balance
            lines.append(
                StatementLine(
                    day=start,
                    created_at=None,
                    entry_id="",
                    entry_kind=OPENING_BALANCE,
                    milestone_id=None,
                    account=opening.key,
                    currency=opening.currency,
                    amount=opening.balance,
                    balance=opening.balance,
                    memo="balance brought forward",
                )
            )
    query = (
        select(
            Account.key,
            Posting.amount,
            Posting.currency,
            JournalEntry.id,
            JournalEntry.kind,
            JournalEntry.milestone_id,
            JournalEntry.created_at,
            JournalEntry.memo,
        )
        .select_from(JournalEntry)
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(Account, Account.id == Posting.account_id)
        .where(*_of_accounts(account_ids, by_time=by_time))
        .order_by(JournalEntry.created_at, JournalEntry.id, Posting.id)
    )
    if since is not None:
        query = query.where(JournalEntry.created_at >= since)
    if end is not None:
        query = query.where(JournalEntry.created_at < _start_of(end + timedelta(days=1)))
    for (
        key,
        amount,
        currency,
        entry_id,
        kind,
        milestone_id,
        created_at,
        memo,
    ) in ctx.session.execute(query):
        balances[key] += amount
        lines.append(
            StatementLine(
                day=created_at.date(),
                created_at=created_at,
                entry_id=entry_id,
                entry_kind=str(kind),
                milestone_id=milestone_id,
                account=key,
                currency=currency,
                amount=amount,
                balance=balances[key],
                memo=memo,
            )
        )
    return lines


def my_statement(
    ctx: Context, *, start: date | None = None, end: date | None = None
) -> list[StatementLine]:
    """The caller's statement; staff get every account's, like ``GET /v1/ledger/entries``."""
    actor = ctx.require_actor()
    return statement(ctx, None if actor.is_staff else actor.id, start=start, end=end)


def to_csv(lines: list[StatementLine]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for line in lines:
        writer.writerow(line.row())
    return buffer.getvalue()
