"""Posting journal entries and reading balances.

``post`` is the only way money moves. It takes legs (account, signed amount) that sum to zero per
currency, locks the accounts involved in a fixed order (by key), refuses a leg that would take a user's or
an escrow's balance below zero, and writes the entry, its postings and the new cached balances together.

An entry for a milestone belongs to the change that posted it, and that change records one audit event
for the milestone right after. ``post`` picks the id that event will take and writes it in the entry's
INSERT (``event_id``: no UPDATE of the entry afterwards), and keeps the entry aside in the unit of work;
the next ``audit.record`` for the same milestone takes it (``take_unlinked``), gives its event that id
and names the entry back. An entry no event took by the commit is left naming none, as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import (
    Executable,
    Select,
    Table,
    bindparam,
    event,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from milepost.kit.canonical import canonical_hash, canonical_json
from milepost.kit.context import Context
from milepost.kit.db import (
    QUEUED,
    increment_at_commit,
    insert_at_flush,
    insert_new,
    is_sqlite,
    tables_queued,
)
from milepost.kit.errors import InsufficientFunds
from milepost.kit.ids import new_id
from milepost.kit.macs import ledger_keys
from milepost.kit.metrics import count_when_committed
from milepost.ledger.models import (
    NON_NEGATIVE_KINDS,
    Account,
    AccountKind,
    EntryKind,
    JournalEntry,
    Posting,
)
from milepost.money import format_money


@dataclass(frozen=True)
class AccountRef:
    kind: AccountKind
    currency: str
    user_id: str | None = None
    milestone_id: str | None = None
    provider: str | None = None

    @property
    def key(self) -> str:
        owner = {
            AccountKind.USER: self.user_id,
            AccountKind.PENDING: self.user_id,
            AccountKind.ESCROW: self.milestone_id,
            AccountKind.PLATFORM_FEE: None,
            AccountKind.PLATFORM_LOSS: None,
            AccountKind.EXTERNAL: self.provider,
            AccountKind.PAYOUT_CLEARING: self.provider,
        }[self.kind]
        return ":".join(part for part in (self.kind.value, owner, self.currency) if part)


def user_account(user_id: str, currency: str) -> AccountRef:
    return AccountRef(AccountKind.USER, currency, user_id=user_id)


def pending_account(user_id: str, currency: str) -> AccountRef:
    """The user's money in ``currency`` that has not cleared yet (wallets/clearing.py)."""
    return AccountRef(AccountKind.PENDING, currency, user_id=user_id)


def escrow_account(milestone_id: str, currency: str) -> AccountRef:
    return AccountRef(AccountKind.ESCROW, currency, milestone_id=milestone_id)


def fee_account(currency: str) -> AccountRef:
    return AccountRef(AccountKind.PLATFORM_FEE, currency)


def loss_account(currency: str) -> AccountRef:
    """What the platform lost in ``currency`` to deposits taken back (wallets/reversals.py)."""
    return AccountRef(AccountKind.PLATFORM_LOSS, currency)


def external_account(provider: str, currency: str) -> AccountRef:
    return AccountRef(AccountKind.EXTERNAL, currency, provider=provider)


def clearing_account(provider: str, currency: str) -> AccountRef:
    return AccountRef(AccountKind.PAYOUT_CLEARING, currency, provider=provider)


Leg = tuple[AccountRef, int]


class LedgerImbalance(AssertionError):
    """A programming error: an entry whose legs do not sum to zero must never be written."""


def entry_hash(entry: JournalEntry, postings: Sequence[tuple[str, int, str]]) -> str:
    """SHA-256 over an entry and its postings as (account key, amount, currency)."""
    payload = {
        "id": entry.id,
        "kind": str(entry.kind),
        "milestone_id": entry.milestone_id,
        "created_at": entry.created_at.isoformat(),
        "postings": sorted([key, amount, currency] for key, amount, currency in postings),
    }
    return canonical_hash(payload)


def entry_mac_message(entry: JournalEntry) -> str:
    """What an entry's MAC signs: its hash (the entry and its postings) and the memo and actor, which
    the hash leaves out."""
    return "journal_entry|" + canonical_json([entry.hash, entry.memo, entry.actor_id])


def _new_account_row(ctx: Context, ref: AccountRef) -> dict[str, object]:
    return {
        "id": new_id("acc"),
        "key": ref.key,
        "kind": ref.kind,
        "currency": ref.currency,
        "user_id": ref.user_id,
        "milestone_id": ref.milestone_id,
        "provider": ref.provider,
        "balance": 0,
        "created_at": ctx.now,
    }


def _keyed(name: str) -> Select[Account]:
    return select(Account).where(Account.key.in_(bindparam(name, expanding=True)))


# Built once (a statement built per call cost more CPU than its execution); the keys are bound.
_READ_ALL = _keyed("unlocked").execution_options(populate_existing=True)
_READ_HELD = (
    _keyed("locked")
    .order_by(Account.key)
    .with_for_update()
    .execution_options(populate_existing=True)
)


def _read(ctx: Context, locked: Sequence[str], unlocked: Sequence[str]) -> list[Account]:
    """The accounts with the keys ``locked`` (locked, in key order) and ``unlocked``, in one statement.

    PostgreSQL: ``SELECT … FROM (SELECT … ORDER BY key FOR UPDATE) UNION ALL SELECT …``, the lock taken
    only on the rows that need it. SQLite takes no row locks (a write transaction holds the database).
    """
    query: Executable
    if not locked or is_sqlite(ctx.session):
        query, keys = _READ_ALL, {"unlocked": sorted([*locked, *unlocked])}
    elif unlocked:
        # Built per call: one built once and shared by the threads of a process was, now and then,
        # read wrongly by two threads using it for the first time at once (SQLAlchemy's ORM could not
        # find the subquery's columns in the row).
        held = _keyed("locked").order_by(Account.key).with_for_update().subquery()
        query = (
            select(Account)
            .from_statement(union_all(select(held), _keyed("unlocked")))
            .execution_options(populate_existing=True)
        )
        keys = {"locked": sorted(locked), "unlocked": sorted(unlocked)}
    else:
        query, keys = _READ_HELD, {"locked": sorted(locked)}
    return list(ctx.session.scalars(query, keys))


def _must_flush_first(session: Session) -> bool:
    """Whether a row the ledger reads, or an entry or its postings refer to, waits in the unit of work:
    a new milestone, user or account (an object, or a row queued by ``insert_at_flush``). Those are
    flushed before the ledger reads accounts (a read would miss a new one) and so before it inserts an
    entry. Balances are never pending: ``post`` writes them at once."""
    return any(
        getattr(obj, "__tablename__", None) in _REFERENCED for obj in session.new
    ) or not _REFERENCED.isdisjoint(tables_queued(session))


def _accounts(
    ctx: Context, locked: Sequence[AccountRef], unlocked: Sequence[AccountRef] = ()
) -> dict[str, Account]:
    """The accounts for ``locked`` and ``unlocked`` by key, created if need be; those of ``locked``
    locked in key order. One statement when they all exist.

    Existing accounts are read first and only missing ones inserted: an INSERT that meets an existing key
    on PostgreSQL waits for whoever last changed that row, which would queue every request behind a busy
    account even when nothing needs creating.
    """
    by_key = {ref.key: ref for ref in [*locked, *unlocked]}
    if not by_key:
        return {}
    session = ctx.session
    if _must_flush_first(session):
        session.flush()
    # Nothing else pending bears on these accounts: it stays in the unit of work (an approval's event,
    # its milestone's UPDATE, its notifications) to go with the rest at commit, in one flush.
    with session.no_autoflush:
        return _read_or_create(ctx, by_key, {ref.key for ref in locked})


def _read_or_create(
    ctx: Context, by_key: dict[str, AccountRef], to_lock: set[str]
) -> dict[str, Account]:
    found = {
        account.key: account
        for account in _read(ctx, sorted(to_lock), sorted(set(by_key) - to_lock))
    }
    missing = [key for key in sorted(by_key) if key not in found]
    if missing:
        created = insert_new(
            ctx.session, Account, [_new_account_row(ctx, by_key[key]) for key in missing]
        )
        if len(created) == len(missing):
            # All ours, and nobody else can lock a row this transaction has inserted: no read again.
            found.update({account.key: account for account in created})
        else:
            # Some were created meanwhile by others: lock those now. This lock may come out of key
            # order (a missing key can sort before one locked above), so the first use of a shared
            # account (a provider's payout clearing) by requests racing for it can deadlock:
            # PostgreSQL breaks it, and the request it picks is answered 409 "try again", with nothing
            # changed. Accounts private to a milestone are only ever touched under its row lock.
            others = [key for key in missing if key not in {a.key for a in created}]
            found.update({account.key: account for account in created})
            found.update(
                {
                    account.key: account
                    for account in _read(
                        ctx,
                        [key for key in others if key in to_lock],
                        [key for key in others if key not in to_lock],
                    )
                }
            )
    return found


def open_escrow(ctx: Context, milestone_id: str, currency: str) -> None:
    """Open a new milestone's escrow account (balance 0) with the milestone: written with the milestone's
    own INSERT, so its first funding finds the account and only locks it. A milestone made before this
    has none until its first funding, which creates it (``_accounts``)."""
    insert_at_flush(
        ctx.session, Account, _new_account_row(ctx, escrow_account(milestone_id, currency))
    )


def lock_accounts(ctx: Context, refs: Sequence[AccountRef]) -> dict[str, Account]:
    """Create the accounts if need be, then lock them (ordered by key) and return them by key."""
    return _accounts(ctx, refs)


# Accounts whose balance is never checked against zero (platform fees, external money) are credited or
# debited by most entries of their currency: locking them up front would make every release wait for
# every other release's whole transaction. Their postings are written at once, but their cached balances
# are changed just before commit (``kit.db.increment_at_commit``), so each transaction holds such a row
# only for the moment of its commit.


def _defer(ctx: Context, account: Account, delta: int) -> None:
    increment_at_commit(ctx.session, Account, account.id, balance=delta)


# Entries posted for a milestone in this unit of work that no audit event names yet, by milestone id.
_UNLINKED = "milepost_ledger_unlinked_entries"
# Every entry posted in this unit of work, in order (what a rehearsed action would move: web.confirm).
_POSTED = "milepost_ledger_posted_entries"


def _keep_unlinked(ctx: Context, entry: JournalEntry) -> None:
    ctx.session.info.setdefault(_POSTED, []).append(entry)
    if entry.milestone_id is not None:
        unlinked: dict[str, list[JournalEntry]] = ctx.session.info.setdefault(_UNLINKED, {})
        unlinked.setdefault(entry.milestone_id, []).append(entry)


def take_unlinked(session: Session, milestone_id: str) -> list[JournalEntry]:
    """The entries posted for the milestone in this unit of work since its last audit event (taken: the
    next call returns none of them). ``audit.record`` links them to the event it appends."""
    unlinked: dict[str, list[JournalEntry]] = session.info.get(_UNLINKED, {})
    return unlinked.pop(milestone_id, [])


def posted_in(session: Session) -> list[JournalEntry]:
    """The entries posted in this unit of work so far, in the order they were posted."""
    return list(session.info.get(_POSTED, []))


@event.listens_for(Session, "before_commit")
def _unname_untaken(session: Session) -> None:
    """An entry posted for a milestone whose change recorded no event after it names no event: the id
    ``post`` picked for one was never used (one UPDATE, only in that case; queued with this commit)."""
    untaken = [entry for entries in session.info.get(_UNLINKED, {}).values() for entry in entries]
    if not untaken:
        return
    for entry in untaken:
        entry.event_id = None
    session.execute(_UNNAME, {"ids": [entry.id for entry in untaken]})


_ENTRIES, _POSTINGS = cast(Table, JournalEntry.__table__), cast(Table, Posting.__table__)
_WRITE_ENTRY = insert(_ENTRIES).execution_options(**QUEUED)
_WRITE_POSTINGS = insert(_POSTINGS).execution_options(**QUEUED)
# What an entry's or a posting's row refers to: milestones, users, accounts.
_REFERENCED = frozenset(
    key.target_fullname.split(".")[0] for key in (*_ENTRIES.foreign_keys, *_POSTINGS.foreign_keys)
) - {_ENTRIES.name, _POSTINGS.name}
_ACCOUNTS = cast(Table, Account.__table__)
_SET_BALANCE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("row_id"))
    .values(balance=bindparam("new_balance"))
    .execution_options(**QUEUED)
)
_UNNAME = (
    update(_ENTRIES)
    .where(_ENTRIES.c.id.in_(bindparam("ids", expanding=True)))
    .values(event_id=None)
    .execution_options(**QUEUED)
)


@event.listens_for(Session, "after_commit")
def _forget_unlinked(session: Session) -> None:
    session.info.pop(_UNLINKED, None)
    session.info.pop(_POSTED, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_unlinked_after_rollback(session: Session, _previous_transaction: object) -> None:
    session.info.pop(_UNLINKED, None)
    session.info.pop(_POSTED, None)


def _new_balances(
    ctx: Context, accounts: dict[str, Account], deltas: dict[str, int]
) -> list[tuple[Account, int]]:
    """The new balances of the checked accounts (``post`` writes them with one UPDATE: their rows are
    locked, see ``_accounts``); the others' deltas are added at commit (``_defer``)."""
    balances = []
    for key, delta in deltas.items():
        account = accounts[key]
        if account.kind in NON_NEGATIVE_KINDS:
            balances.append((account, account.balance + delta))
        else:
            _defer(ctx, account, delta)
    return balances


def post(
    ctx: Context,
    kind: EntryKind,
    legs: Sequence[Leg],
    *,
    milestone_id: str | None = None,
    memo: str = "",
) -> JournalEntry:
    """Write one balanced journal entry. Raises InsufficientFunds if a protected balance would go < 0."""
    legs = [(ref, amount) for ref, amount in legs if amount != 0]
    totals: dict[str, int] = defaultdict(int)
    for ref, amount in legs:
        totals[ref.currency] += amount
    if len(legs) < 2 or any(totals.values()):
        raise LedgerImbalance(f"unbalanced entry {kind}: {legs}")

    checked = [ref for ref, _ in legs if ref.kind in NON_NEGATIVE_KINDS]
    accounts = _accounts(
        ctx, checked, [ref for ref, _ in legs if ref.kind not in NON_NEGATIVE_KINDS]
    )
    deltas: dict[str, int] = defaultdict(int)
    for ref, amount in legs:
        deltas[ref.key] += amount
    for key, delta in deltas.items():
        account = accounts[key]
        if account.kind in NON_NEGATIVE_KINDS and account.balance + delta < 0:
            whose = "escrow" if account.kind is AccountKind.ESCROW else "wallet"
            raise InsufficientFunds(
                f"The {whose} holds {format_money(account.balance, account.currency)}; "
                f"{format_money(-delta, account.currency)} is needed.",
                param="amount",
            )

    entry = JournalEntry(
        id=new_id("je"),
        kind=kind,
        memo=memo,
        milestone_id=milestone_id,
        actor_id=ctx.actor_id,
        created_at=ctx.now,
        # The id of the audit event the same change records next (audit.record gives it that id).
        event_id=new_id("evt") if milestone_id is not None else None,
    )
    balances = _new_balances(ctx, accounts, deltas)
    entry.hash = entry_hash(entry, [(ref.key, amount, ref.currency) for ref, amount in legs])
    # Made in Python before the insert: no extra query, and no shared row to lock (see verify.py for what
    # a per-entry MAC does and does not show).
    signed = ledger_keys(ctx.settings).sign(entry_mac_message(entry))
    if signed is not None:
        entry.mac_key_id, entry.mac = signed
    entry.postings = [
        Posting(
            id=new_id("pst"),
            entry_id=entry.id,
            account_id=accounts[ref.key].id,
            amount=amount,
            currency=ref.currency,
        )
        for ref, amount in legs
    ]
    # Written by two Core INSERTs, not by the ORM's flush (measured with bench/service_cpu.py: about
    # 0.5 ms of CPU less per money operation). The entry and its postings stay objects outside the
    # session, read by what comes after in the unit of work (audit.record, posted_in); the one change
    # made to an entry afterwards, an event id no event took, is an UPDATE at commit (_unname_untaken).
    # What they refer to is in the database already (``_accounts`` flushed any of it that was pending);
    # the ORM's pending changes stay for the one flush at commit, with everything else the change
    # writes.
    with ctx.session.no_autoflush:
        ctx.session.execute(
            _WRITE_ENTRY, [{c.key: getattr(entry, c.key) for c in _ENTRIES.columns}]
        )
        ctx.session.execute(
            _WRITE_POSTINGS,
            [
                {c.key: getattr(posting, c.key) for c in _POSTINGS.columns}
                for posting in entry.postings
            ],
        )
        if balances:
            ctx.session.execute(
                _SET_BALANCE,
                [{"row_id": account.id, "new_balance": balance} for account, balance in balances],
            )
    for account, balance in balances:
        # The value now stored, not a change for the ORM's flush to work out and write again.
        set_committed_value(account, "balance", balance)
    _keep_unlinked(ctx, entry)
    # Counted for /metrics when the unit of work commits: a refused or rolled-back entry moved nothing.
    count_when_committed(
        ctx.session, str(kind), [(ref.kind.value, ref.currency, amount) for ref, amount in legs]
    )
    return entry


@dataclass(frozen=True)
class PostingView:
    posting: Posting
    account: Account
    entry: JournalEntry


def list_postings(
    ctx: Context, *, limit: int = 20, starting_after: str | None = None
) -> tuple[list[PostingView], bool]:
    """The actor's postings (on their own accounts), newest first; staff see every posting."""
    from milepost.kit.pagination import check_limit

    actor = ctx.require_actor()
    check_limit(limit)
    query = (
        select(Posting, Account, JournalEntry)
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
    )
    if not actor.is_staff:
        query = query.where(Account.user_id == actor.id)
    if starting_after is not None:
        query = query.where(Posting.id < starting_after)
    rows = ctx.session.execute(query.order_by(Posting.id.desc()).limit(limit + 1)).all()
    views = [PostingView(posting, account, entry) for posting, account, entry in rows[:limit]]
    return views, len(rows) > limit
