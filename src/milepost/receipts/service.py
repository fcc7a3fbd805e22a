"""Receipts: one for each release of money to a freelancer, read from the ledger entry that moved it.

A receipt exists for every journal entry that paid a freelancer out of a milestone's escrow: a release
(full or partial; by the client, or by the system when a review period or a release delay lapsed) and a
dispute split that gave the freelancer something. Its id is the journal entry's id. Every figure comes
from that entry's postings; the entry's hash and the hash of the audit event that recorded the release are
printed on it (the entry names that event: ``event_id``), so that anyone can check the receipt against
``ledger verify``.
Only the milestone's parties and staff can see a receipt; to anyone else it does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from milepost.audit.models import MilestoneEvent
from milepost.events import EventAction
from milepost.kit.context import Context
from milepost.kit.errors import NotFound
from milepost.ledger.models import Account, AccountKind, EntryKind, JournalEntry
from milepost.milestones.access import MilestoneAccess, load_milestone
from milepost.users.models import User

RECEIPT_ENTRY_KINDS = (EntryKind.RELEASE, EntryKind.DISPUTE_SPLIT)


@dataclass(frozen=True)
class Party:
    id: str
    name: str
    email: str


@dataclass(frozen=True)
class Receipt:
    entry_id: str
    entry_kind: str  # release or dispute_split
    entry_hash: str
    created_at: datetime
    milestone_id: str
    milestone_title: str
    project_id: str
    project_title: str
    client: Party
    freelancer: Party
    currency: str
    amount_released: int  # gross: what left the escrow for the freelancer, fee included
    platform_fee: int
    net_to_freelancer: int
    refunded_to_client: int  # a dispute split's other part; 0 for a release
    released_by_role: str  # client, freelancer, staff or system
    released_by_name: str | None
    event_id: str | None
    event_action: str | None  # EventAction: released, released_part, dispute_resolved
    event_hash: str | None

    @property
    def partial(self) -> bool:
        return self.event_action == EventAction.RELEASED_PART


def _party(ctx: Context, user_id: str) -> Party:
    user = ctx.session.get(User, user_id)
    assert user is not None  # foreign key
    return Party(user.id, user.name, user.email)


def _build(
    ctx: Context,
    access: MilestoneAccess,
    entries: list[JournalEntry],
) -> list[Receipt]:
    """Receipts for ``entries`` (all of one milestone), in their order; entries that paid the freelancer
    nothing (a split that went wholly to the client) have none."""
    milestone, project = access.milestone, access.project
    if project.freelancer_id is None or not entries:
        return []
    account_ids = {posting.account_id for entry in entries for posting in entry.postings}
    accounts = {
        account.id: account
        for account in ctx.session.scalars(select(Account).where(Account.id.in_(account_ids)))
    }
    events = _events_for(ctx, entries)
    client, freelancer = _party(ctx, milestone.client_id), _party(ctx, project.freelancer_id)
    receipts = []
    for entry in entries:
        fee = net = refund = 0
        for posting in entry.postings:
            account = accounts[posting.account_id]
            if account.kind is AccountKind.PLATFORM_FEE:
                fee += posting.amount
            elif account.kind is AccountKind.USER and account.user_id == freelancer.id:
                net += posting.amount
            elif account.kind is AccountKind.USER and account.user_id == client.id:
                refund += posting.amount
        if net + fee == 0:
            continue
        event = events.get(entry.id)
        if entry.actor_id is None:
            role, name = "system", None
        else:
            role = {client.id: "client", freelancer.id: "freelancer"}.get(entry.actor_id, "staff")
            name = _party(ctx, entry.actor_id).name
        receipts.append(
            Receipt(
                entry_id=entry.id,
                entry_kind=str(entry.kind),
                entry_hash=entry.hash,
                created_at=entry.created_at,
                milestone_id=milestone.id,
                milestone_title=milestone.title,
                project_id=project.id,
                project_title=project.title,
                client=client,
                freelancer=freelancer,
                currency=milestone.currency,
                amount_released=net + fee,
                platform_fee=fee,
                net_to_freelancer=net,
                refunded_to_client=refund,
                released_by_role=role,
                released_by_name=name,
                event_id=None if event is None else event.id,
                event_action=None if event is None else event.action,
                event_hash=None if event is None else event.hash,
            )
        )
    return receipts


def _events_for(ctx: Context, entries: list[JournalEntry]) -> dict[str, MilestoneEvent]:
    """The audit event of each entry: the one it names (``event_id``, set when the event of the same
    change was recorded)."""
    event_ids = {entry.event_id for entry in entries if entry.event_id is not None}
    if not event_ids:
        return {}
    found = {
        event.id: event
        for event in ctx.session.scalars(
            select(MilestoneEvent).where(MilestoneEvent.id.in_(sorted(event_ids)))
        )
    }
    return {
        entry.id: found[entry.event_id]
        for entry in entries
        if entry.event_id is not None and entry.event_id in found
    }


def _all_receipt_entries(ctx: Context, milestone_id: str) -> list[JournalEntry]:
    return list(
        ctx.session.scalars(
            select(JournalEntry)
            .where(
                JournalEntry.milestone_id == milestone_id,
                JournalEntry.kind.in_(RECEIPT_ENTRY_KINDS),
            )
            .order_by(JournalEntry.created_at, JournalEntry.id)
        )
    )


def list_receipts(ctx: Context, milestone_id: str) -> list[Receipt]:
    """The milestone's receipts, oldest first (parties and staff; 404 for anyone else)."""
    access = load_milestone(ctx, milestone_id, lock=False)
    return _build(ctx, access, _all_receipt_entries(ctx, access.milestone.id))


def get_receipt(ctx: Context, receipt_id: str) -> Receipt:
    """One receipt by its journal entry id (parties and staff; 404 for anyone else)."""
    ctx.require_actor()
    entry = ctx.session.get(JournalEntry, receipt_id)
    if entry is None or entry.kind not in RECEIPT_ENTRY_KINDS or entry.milestone_id is None:
        raise NotFound("No such receipt.", param="id")
    try:
        access = load_milestone(ctx, entry.milestone_id, lock=False)
    except NotFound:
        raise NotFound("No such receipt.", param="id") from None
    receipts = _build(ctx, access, [entry])
    if not receipts:
        raise NotFound("No such receipt.", param="id")
    return receipts[0]
