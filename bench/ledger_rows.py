"""A consistent, signed ledger written as plain rows in bulk: what the benchmarks generate data with.

``Ledger`` writes journal entries and audit events the way ``ledger.service.post`` and ``audit.record``
do (the same account keys, hashes, MACs and entry-event links, made with the project's own functions),
but as dictionaries for multi-row INSERTs instead of ORM objects, so a million postings take seconds to
make rather than hours of requests. It keeps every account's balance as the entries move it: an account
is inserted with the balance it has when its chunk goes in, and ``finish`` brings the ones later chunks
moved (the users', the platform's) to their final balance, so that ``milepost ledger verify`` passes.

Used by bench/verify_growth.py and bench/data_growth.py (and, through the latter, its test).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, select

from milepost.audit.models import GENESIS_EVENT_HASH, MilestoneEvent
from milepost.audit.service import event_hash, event_mac_message
from milepost.disputes.models import Dispute
from milepost.events import EventAction
from milepost.kit.ids import new_id
from milepost.kit.macs import KeyRing
from milepost.ledger.models import Account, EntryKind, JournalEntry, Posting
from milepost.ledger.service import AccountRef, entry_hash, entry_mac_message
from milepost.milestones.models import Milestone, Submission
from milepost.milestones.state import MilestoneStatus
from milepost.projects.models import Project, ProjectTotals
from milepost.projects.state import ProjectStatus
from milepost.users.models import User
from milepost.wallets.models import Deposit, Payout, PayoutDestination

Row = dict[str, Any]
Leg = tuple[AccountRef, int]


@dataclass
class Rows:
    """One chunk of rows, by table; ``tables`` lists them in the order their foreign keys need."""

    users: list[Row] = field(default_factory=list)
    projects: list[Row] = field(default_factory=list)
    milestones: list[Row] = field(default_factory=list)
    accounts: list[Row] = field(default_factory=list)
    entries: list[Row] = field(default_factory=list)
    postings: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    submissions: list[Row] = field(default_factory=list)
    disputes: list[Row] = field(default_factory=list)
    destinations: list[Row] = field(default_factory=list)
    deposits: list[Row] = field(default_factory=list)
    payouts: list[Row] = field(default_factory=list)

    def tables(self) -> list[tuple[Table, list[Row]]]:
        def table(model: Any) -> Table:
            return model.__table__  # type: ignore[no-any-return]

        return [
            (table(User), self.users),
            (table(Project), self.projects),
            (table(Milestone), self.milestones),
            (table(Account), self.accounts),
            (table(JournalEntry), self.entries),
            (table(Posting), self.postings),
            (table(MilestoneEvent), self.events),
            (table(Submission), self.submissions),
            (table(Dispute), self.disputes),
            (table(PayoutDestination), self.destinations),
            (table(Deposit), self.deposits),
            (table(Payout), self.payouts),
        ]


def user_row(
    email: str, name: str, at: datetime, *, password_hash: str = "-", is_staff: bool = False
) -> Row:
    return {
        "id": new_id("usr"),
        "email": email,
        "name": name,
        "password_hash": password_hash,
        "is_staff": is_staff,
        "time_zone": "UTC",
        "created_at": at,
    }


def project_row(client_id: str, freelancer_id: str, title: str, currency: str, at: datetime) -> Row:
    """A project awarded to ``freelancer_id``."""
    return {
        "id": new_id("prj"),
        "client_id": client_id,
        "freelancer_id": freelancer_id,
        "title": title,
        "currency": currency,
        "status": ProjectStatus.AWARDED,
        "created_at": at,
        "updated_at": at,
    }


def milestone_row(
    project_id: str,
    client_id: str,
    position: int,
    amount: int,
    currency: str,
    at: datetime,
    **terms: Any,
) -> Row:
    """A draft as ``create_milestone`` leaves it (no event yet: record ``created`` next); ``terms``
    override any column (due_date, fund_by, late_fee, release_delay_days, ...)."""
    row: Row = {
        "id": new_id("ms"),
        "project_id": project_id,
        "client_id": client_id,
        "position": position,
        "status": MilestoneStatus.DRAFT,
        "title": f"Milestone {position}",
        "description": "",
        "amount": amount,
        "currency": currency,
        "due_date": None,
        "fund_by": None,
        "acceptance_criteria": ["It works as described"],
        "required_evidence": [],
        "exclusions": [],
        "dependencies": [],
        "review_period_days": 7,
        "release_delay_days": 0,
        "late_fee": None,
        "funded_amount": 0,
        "released_amount": 0,
        "refunded_amount": 0,
        "fee_amount": 0,
        "late_fee_amount": 0,
        "fee_rate_bps": None,
        "cancellation_requested": False,
        "funded_at": None,
        "submitted_at": None,
        "review_due_at": None,
        "approved_at": None,
        "release_due_at": None,
        "ended_at": None,
        "created_at": at,
        "updated_at": at,
        "event_count": 0,
        "last_event_hash": GENESIS_EVENT_HASH,
        "last_event_mac": None,
    }
    row.update(terms)
    return row


class Ledger:
    """Entries, postings and events as rows, signed with ``keys``; account balances kept as they move."""

    def __init__(self, keys: KeyRing, clock: datetime) -> None:
        self.keys = keys
        self.clock = clock  # the time of the next entry that gives none (see tick)
        self._ids: dict[str, str] = {}  # account key -> id
        self._balances: dict[str, int] = defaultdict(int)  # account id -> balance
        self._written: dict[str, int] = {}  # account id -> the balance its row was inserted with

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def account(self, rows: Rows, ref: AccountRef, at: datetime | None = None) -> str:
        """The id of the account ``ref`` names, added to ``rows`` the first time it is used."""
        account_id = self._ids.get(ref.key)
        if account_id is None:
            account_id = self._ids[ref.key] = new_id("acc")
            rows.accounts.append(
                {
                    "id": account_id,
                    "key": ref.key,
                    "kind": ref.kind,
                    "currency": ref.currency,
                    "user_id": ref.user_id,
                    "milestone_id": ref.milestone_id,
                    "provider": ref.provider,
                    "balance": 0,  # set when the chunk is inserted (see insert)
                    "created_at": at or self.clock,
                }
            )
        return account_id

    def balance(self, ref: AccountRef) -> int:
        account_id = self._ids.get(ref.key)
        return 0 if account_id is None else self._balances[account_id]

    def entry(
        self,
        rows: Rows,
        kind: EntryKind,
        legs: Sequence[Leg],
        *,
        milestone_id: str | None = None,
        actor_id: str | None = None,
        memo: str = "",
        at: datetime | None = None,
    ) -> Row:
        """One balanced entry (zero legs dropped, as ``post`` does) at ``at`` (else the next tick)."""
        legs = [(ref, amount) for ref, amount in legs if amount != 0]
        totals: dict[str, int] = defaultdict(int)
        for ref, amount in legs:
            totals[ref.currency] += amount
        assert len(legs) >= 2 and not any(totals.values()), f"unbalanced {kind}: {legs}"
        fields = SimpleNamespace(
            id=new_id("je"),
            kind=kind,
            memo=memo,
            milestone_id=milestone_id,
            actor_id=actor_id,
            created_at=at or self.tick(),
        )
        fields.hash = entry_hash(fields, [(ref.key, amount, ref.currency) for ref, amount in legs])  # type: ignore[arg-type]
        signed = self.keys.sign(entry_mac_message(fields))  # type: ignore[arg-type]
        fields.mac_key_id, fields.mac = signed if signed is not None else (None, None)
        row = vars(fields)
        row["event_id"] = None  # named by the event of the same change, if any (see event)
        rows.entries.append(row)
        for ref, amount in legs:
            account_id = self.account(rows, ref, fields.created_at)
            self._balances[account_id] += amount
            rows.postings.append(
                {
                    "id": new_id("pst"),
                    "entry_id": fields.id,
                    "account_id": account_id,
                    "amount": amount,
                    "currency": ref.currency,
                }
            )
        return row

    def event(
        self,
        rows: Rows,
        milestone: Row,
        action: EventAction,
        entry: Row | None = None,
        *,
        actor_id: str | None,
        actor_role: str,
        at: datetime | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
        amount: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> Row:
        """The milestone's next event, at ``at`` (else the time of ``entry``, else the clock's); ``entry``:
        the entry of the same change, the two linked both ways as ``audit.record`` links them."""
        seq = milestone["event_count"] + 1
        fields = SimpleNamespace(
            id=new_id("evt"),
            milestone_id=milestone["id"],
            seq=seq,
            actor_id=actor_id,
            actor_role=actor_role,
            action=action,
            from_status=from_status,
            to_status=to_status,
            amount=amount,
            data=data or {},
            created_at=at or (entry["created_at"] if entry is not None else self.clock),
            prev_hash=milestone["last_event_hash"],
        )
        fields.hash = event_hash(fields)  # type: ignore[arg-type]
        signed = self.keys.sign(event_mac_message(fields.hash, milestone["last_event_mac"]))
        fields.mac_key_id, fields.mac = signed if signed is not None else (None, None)
        row = vars(fields)
        row["entry_id"] = None if entry is None else entry["id"]
        if entry is not None:
            entry["event_id"] = row["id"]
        rows.events.append(row)
        milestone.update(event_count=seq, last_event_hash=fields.hash, last_event_mac=fields.mac)
        return row

    def insert(self, connection: Connection, rows: Rows) -> None:
        """Insert one chunk (the caller commits); its new accounts go in with their balance so far."""
        for account in rows.accounts:
            account["balance"] = self._written[account["id"]] = self._balances[account["id"]]
        for table, values in rows.tables():
            if values:
                # One multi-row INSERT needs the same columns in every row: a column some rows leave
                # out (a dispute still open has no resolution yet) is NULL in those.
                columns = {column for row in values for column in row}
                for row in values:
                    for column in columns - row.keys():
                        row[column] = None
                connection.execute(table.insert(), values)

    def finish(self, connection: Connection) -> None:
        """Bring every account that later chunks moved to its balance, and every project's totals to
        its milestones (the caller commits)."""
        fill_project_totals(connection)
        changed: list[Row] = [
            {"account_id": account_id, "new_balance": self._balances[account_id]}
            for account_id, written in self._written.items()
            if self._balances[account_id] != written
        ]
        if changed:
            table: Table = Account.__table__  # type: ignore[assignment]
            connection.execute(
                table.update()
                .where(table.c.id == bindparam("account_id"))
                .values(balance=bindparam("new_balance")),
                changed,
            )
            self._written.update({row["account_id"]: row["new_balance"] for row in changed})


def fill_project_totals(connection: Connection) -> None:
    """Every project's totals summed from its milestones: what the app keeps as each milestone changes,
    for rows inserted beside it."""
    totals: Table = ProjectTotals.__table__  # type: ignore[assignment]
    connection.execute(totals.delete())
    connection.execute(
        totals.insert().from_select(
            ["project_id", "planned_amount", "in_escrow_amount", "released_amount"],
            select(
                Project.id,
                func.coalesce(func.sum(Milestone.planned_share), 0),
                func.coalesce(func.sum(Milestone.escrow_balance), 0),
                func.coalesce(func.sum(Milestone.released_amount), 0),
            )
            .outerjoin(Milestone, Milestone.project_id == Project.id)
            .group_by(Project.id),
        )
    )
