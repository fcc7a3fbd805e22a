"""``milepost ledger sign``: give the rows written before the ledger key was set their keyed MACs, and
(``rotate``) re-sign rows made with a retired key.

It never launders tampering: a row whose plain hash does not match, whose existing MAC does not verify,
or whose chain is broken is left as it is and reported, so ``ledger verify`` keeps showing it. Each
milestone's chain is signed in its own transaction under the milestone's row lock (the lock every new
event is appended under), and entries in batches, so the server can keep running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ColumnElement, or_, select

from milepost.audit.models import MilestoneEvent, ProjectEvent
from milepost.audit.project_trail import project_event_hash, project_event_mac_message
from milepost.audit.service import GENESIS_HASH, event_hash, event_mac_message
from milepost.kit.db import Database
from milepost.kit.macs import KeyRing
from milepost.ledger.models import Account, JournalEntry, Posting
from milepost.ledger.service import entry_hash, entry_mac_message
from milepost.milestones.models import Milestone
from milepost.projects.models import Project

BATCH = 500


@dataclass(frozen=True)
class _Trail:
    """A kind of audit chain: a milestone's events, or a project's own; its head kept on its owner."""

    name: str
    owner: type[Milestone] | type[Project]
    event: type[MilestoneEvent] | type[ProjectEvent]
    owner_id: str  # the events' column naming their owner
    hash_of: Callable[[Any], str]
    message_of: Callable[[str, str | None], str]


TRAILS = (
    _Trail("milestone", Milestone, MilestoneEvent, "milestone_id", event_hash, event_mac_message),
    _Trail(
        "project",
        Project,
        ProjectEvent,
        "project_id",
        project_event_hash,
        project_event_mac_message,
    ),
)


@dataclass
class SignReport:
    entries_signed: int = 0
    events_signed: int = 0
    refused: list[str] = field(default_factory=list)


def sign_ledger(database: Database, keys: KeyRing, *, rotate: bool = False) -> SignReport:
    """Sign every unsigned entry and event with the current key (and, with ``rotate``, every one signed
    with another key). Raises ValueError when no key is configured."""
    if not keys.configured:
        raise ValueError("MILEPOST_LEDGER_KEY is not set: there is no key to sign with")
    report = SignReport()
    _sign_entries(database, keys, rotate, report)
    for trail in TRAILS:
        owned_by = getattr(trail.event, trail.owner_id)
        with database.read_only() as session:
            owner_ids = list(
                session.scalars(
                    select(owned_by).where(_needs_signing(trail.event, keys, rotate)).distinct()
                )
            )
        for owner_id in sorted(owner_ids):
            _sign_chain(database, keys, rotate, trail, owner_id, report)
    return report


def _needs_signing(
    model: type[MilestoneEvent] | type[ProjectEvent] | type[JournalEntry],
    keys: KeyRing,
    rotate: bool,
) -> ColumnElement[bool]:
    if rotate:
        return or_(model.mac.is_(None), model.mac_key_id != keys.current_id)
    return model.mac.is_(None)


def _sign_entries(database: Database, keys: KeyRing, rotate: bool, report: SignReport) -> None:
    after = ""  # by id, in batches: entries never change once written
    while True:
        with database.unit_of_work() as session:
            entries = list(
                session.scalars(
                    select(JournalEntry)
                    .where(JournalEntry.id > after, _needs_signing(JournalEntry, keys, rotate))
                    .order_by(JournalEntry.id)
                    .limit(BATCH)
                )
            )
            if not entries:
                return
            keys_by_account = dict(
                session.execute(
                    select(Posting.id, Account.key)
                    .join(Account, Account.id == Posting.account_id)
                    .where(Posting.entry_id.in_([entry.id for entry in entries]))
                ).all()
            )
            for entry in entries:
                after = entry.id
                recorded = [(keys_by_account[p.id], p.amount, p.currency) for p in entry.postings]
                if entry_hash(entry, recorded) != entry.hash:
                    report.refused.append(f"entry {entry.id} does not match its hash: not signed")
                    continue
                message = entry_mac_message(entry)
                if entry.mac is not None:
                    problem = keys.check(entry.mac_key_id, entry.mac, message)
                    if problem is not None:
                        report.refused.append(f"entry {entry.id} {problem}: not re-signed")
                        continue
                signed = keys.sign(message)
                assert signed is not None
                entry.mac_key_id, entry.mac = signed
                report.entries_signed += 1


def _sign_chain(
    database: Database,
    keys: KeyRing,
    rotate: bool,
    trail: _Trail,
    owner_id: str,
    report: SignReport,
) -> None:
    """Sign one chain under its owner's row lock (the lock every new event is appended under)."""
    with database.unit_of_work() as session:
        owner = cast(
            Milestone | Project | None, session.get(trail.owner, owner_id, with_for_update=True)
        )
        if owner is None:
            return
        events: list[Any] = list(
            session.scalars(
                select(trail.event)
                .where(getattr(trail.event, trail.owner_id) == owner_id)
                .order_by(trail.event.seq)
            )
        )
        what = f"{trail.name} {owner_id}"
        problem = _plain_chain_problem(trail, owner, events)
        if problem is not None:
            report.refused.append(f"{what}: {problem}: its events not signed")
            return
        # First every existing MAC must verify (over the previous MAC as stored), then the chain is
        # re-signed from the first event that needs it: each MAC covers the one before.
        prev: str | None = None
        for event in events:
            if event.mac is not None:
                mac_problem = keys.check(
                    event.mac_key_id, event.mac, trail.message_of(event.hash, prev)
                )
                if mac_problem is not None:
                    report.refused.append(
                        f"{what} event {event.seq} {mac_problem}: its events not signed"
                    )
                    return
            prev = event.mac
        prev, changed = None, False
        for event in events:
            stale = event.mac is None or (rotate and event.mac_key_id != keys.current_id)
            if changed or stale:
                signed = keys.sign(trail.message_of(event.hash, prev))
                assert signed is not None
                event.mac_key_id, event.mac = signed
                report.events_signed += 1
                changed = True
            prev = event.mac
        owner.last_event_mac = events[-1].mac if events else None


def _plain_chain_problem(
    trail: _Trail, owner: Milestone | Project, events: list[Any]
) -> str | None:
    prev_hash = GENESIS_HASH
    for expected, event in enumerate(events, start=1):
        if (
            event.seq != expected
            or event.prev_hash != prev_hash
            or trail.hash_of(event) != event.hash
        ):
            return f"event {event.seq} breaks the plain hash chain"
        prev_hash = event.hash
    if owner.event_count != len(events) or owner.last_event_hash != prev_hash:
        return "its head does not match its events"
    return None
