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

from sqlalchemy import func, select

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


def _opening_balances(ctx: Context, user_id: str | None, start: date) -> list[tuple[str, str, int]]:
    """(account key, currency, balance) of every account in scope with postings before ``start``."""
    query = (
        select(Account.key, Account.currency, func.sum(Posting.amount))
        .join(Posting, Posting.account_id == Account.id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(JournalEntry.created_at < _start_of(start))
        .group_by(Account.key, Account.currency)
        .order_by(Account.key)
    )
    if user_id is not None:
        query = query.where(Account.user_id == user_id)
    return [(key, currency, int(total or 0)) for key, currency, total in ctx.session.execute(query)]


def statement(
    ctx: Context, user_id: str | None, *, start: date | None = None, end: date | None = None
) -> list[StatementLine]:
    """The postings on ``user_id``'s accounts (None: every account) from ``start`` to ``end`` (UTC days,
    both included; either may be open), oldest first, each with its account's balance after it."""
    check_period(start, end)
    lines: list[StatementLine] = []
    balances: dict[str, int] = defaultdict(int)
    if start is not None:
        for key, currency, opening in _opening_balances(ctx, user_id, start):
            balances[key] = opening
            lines.append(
                StatementLine(
                    day=start,
                    created_at=None,
                    entry_id="",
                    entry_kind=OPENING_BALANCE,
                    milestone_id=None,
                    account=key,
                    currency=currency,
                    amount=opening,
                    balance=opening,
                    memo="balance brought forward",
                )
            )
    query = (
        select(Posting, Account, JournalEntry)
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .order_by(JournalEntry.created_at, JournalEntry.id, Posting.id)
    )
    if user_id is not None:
        query = query.where(Account.user_id == user_id)
    if start is not None:
        query = query.where(JournalEntry.created_at >= _start_of(start))
    if end is not None:
        query = query.where(JournalEntry.created_at < _start_of(end + timedelta(days=1)))
    for posting, account, entry in ctx.session.execute(query).all():
        balances[account.key] += posting.amount
        lines.append(
            StatementLine(
                day=entry.created_at.date(),
                created_at=entry.created_at,
                entry_id=entry.id,
                entry_kind=str(entry.kind),
                milestone_id=entry.milestone_id,
                account=account.key,
                currency=posting.currency,
                amount=posting.amount,
                balance=balances[account.key],
                memo=entry.memo,
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
