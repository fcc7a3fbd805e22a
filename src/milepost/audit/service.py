"""The audit trail: every change to a milestone is an event, hash-chained per milestone.

With a ledger key (``MILEPOST_LEDGER_KEY``, see kit/macs.py) each event also carries a keyed MAC over its
hash and the previous event's MAC: rewriting an event, or deleting or reordering events and recomputing
the plain hashes, leaves MACs that only the key could have made right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from milepost import events
from milepost.audit.models import GENESIS_EVENT_HASH, MilestoneEvent, ProjectEvent
from milepost.events import EventAction
from milepost.kit.canonical import canonical_hash
from milepost.kit.context import Context
from milepost.kit.db import insert_at_flush, row_of
from milepost.kit.ids import new_id
from milepost.kit.macs import KeyRing, ledger_keys
from milepost.ledger.models import ENTRY_ACTIONS
from milepost.ledger.service import take_unlinked
from milepost.milestones.models import Milestone

GENESIS_HASH = GENESIS_EVENT_HASH


def event_hash(event: MilestoneEvent) -> str:
    payload = {
        "id": event.id,
        "milestone_id": event.milestone_id,
        "seq": event.seq,
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "amount": event.amount,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
        "prev_hash": event.prev_hash,
    }
    return canonical_hash(payload)


def event_mac_message(event_hash: str, prev_mac: str | None) -> str:
    """What an event's MAC signs: its hash (which covers its content and the previous hash) and the
    previous event's MAC ("-" for none: the first event, or one after an unsigned event)."""
    return f"milestone_event|{event_hash}|{prev_mac or '-'}"


def record(
    ctx: Context,
    milestone: Milestone,
    action: EventAction,
    *,
    role: str,
    from_status: str | None = None,
    to_status: str | None = None,
    amount: int | None = None,
    data: dict[str, Any] | None = None,
) -> MilestoneEvent:
    """Append an event to the milestone's chain. The caller holds the milestone's row lock.

    The chain's head (how many events, the newest hash and MAC) is kept on the milestone row itself, so
    appending needs no query, and ``ledger verify`` notices an event deleted from the end of a chain.

    A ledger entry posted for the milestone in this unit of work (the money this change moved) is linked
    both ways: the event names it (``entry_id``) and it names the event (``event_id``, written by
    ``ledger.post`` with the id this event takes, so linking costs no UPDATE). Neither hash
    covers the link; ``ledger verify`` checks it against what both hashes do cover (see ENTRY_ACTIONS).

    Then every subscriber (``milepost.events``: webhooks, notifications) is told, in this same unit of
    work: a rolled-back change leaves no delivery or e-mail behind. With nobody subscribed it raises.
    """
    milestone_id = milestone.id
    seq = (milestone.event_count or 0) + 1
    prev_hash = milestone.last_event_hash or GENESIS_HASH
    entries = take_unlinked(ctx.session, milestone_id)
    if len(entries) > 1 or any(
        action not in ENTRY_ACTIONS.get(entry.kind, ()) for entry in entries
    ):
        raise AssertionError(
            f"{action} of {milestone_id} cannot name its entries {[str(e.kind) for e in entries]}"
        )
    event = MilestoneEvent(
        # The id ``ledger.post`` already wrote in the entry (so the entry needs no UPDATE); hashed below
        # like any event id, and it is the id this event gets.
        id=entries[0].event_id if entries and entries[0].event_id else new_id("evt"),
        milestone_id=milestone_id,
        seq=seq,
        actor_id=ctx.actor_id,
        actor_role=role,
        action=EventAction(action),
        from_status=from_status,
        to_status=to_status,
        amount=amount,
        data=data or {},
        created_at=ctx.now,
        prev_hash=prev_hash,
        entry_id=entries[0].id if entries else None,
    )
    # Signed here, before the insert, from the head on the already locked milestone row: no extra query.
    seal(ctx, milestone, event, event_hash(event), event_mac_message)
    events.publish_event(ctx, milestone, event)
    return event


class ChainHead(Protocol):
    """Where a chain keeps its head: a milestone row, a project row."""

    event_count: int
    last_event_hash: str
    last_event_mac: str | None


def seal(
    ctx: Context,
    head: ChainHead,
    event: MilestoneEvent | ProjectEvent,
    digest: str,
    mac_message: Callable[[str, str | None], str],
) -> None:
    """Give a new event its hash and, with a ledger key, its MAC (over the hash and the previous
    event's MAC, read from the head), move the chain's head to it and queue its row for the unit of work's
    next flush (an event is never changed once written: no object of the session)."""
    event.hash = digest
    signed = ledger_keys(ctx.settings).sign(mac_message(digest, head.last_event_mac))
    if signed is not None:
        event.mac_key_id, event.mac = signed
    head.event_count = event.seq
    head.last_event_hash = digest
    head.last_event_mac = event.mac
    insert_at_flush(ctx.session, type(event), row_of(event))


def list_events(ctx: Context, milestone_id: str) -> list[MilestoneEvent]:
    return list(
        ctx.session.scalars(
            select(MilestoneEvent)
            .where(MilestoneEvent.milestone_id == milestone_id)
            .order_by(MilestoneEvent.seq)
        )
    )


@dataclass(frozen=True)
class ChainProblem:
    milestone_id: str
    seq: int
    message: str


def check_chain(events: list[MilestoneEvent], keys: KeyRing | None = None) -> list[ChainProblem]:
    """Check one milestone's events (ordered by seq): numbering, links and hashes; and with a configured
    key ring, every event's MAC (each covers the previous event's stored MAC, so a removed or reordered
    event breaks the next one's)."""
    problems = []
    prev_hash = GENESIS_HASH
    prev_mac: str | None = None
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            problems.append(
                ChainProblem(event.milestone_id, event.seq, f"expected event {expected_seq}")
            )
        if event.prev_hash != prev_hash:
            problems.append(
                ChainProblem(event.milestone_id, event.seq, "link to previous event broken")
            )
        content_hash = event_hash(event)
        if content_hash != event.hash:
            problems.append(
                ChainProblem(event.milestone_id, event.seq, "event content was altered")
            )
        if keys is not None and keys.configured:
            problem = keys.check(
                event.mac_key_id, event.mac, event_mac_message(content_hash, prev_mac)
            )
            if problem is not None:
                problems.append(ChainProblem(event.milestone_id, event.seq, f"event {problem}"))
        prev_hash = event.hash
        prev_mac = event.mac
    return problems
