"""A project's own audit trail: the steps of its conversation that are no milestone's change (offers,
milestone requests, work paused and resumed), hash-chained per project as a milestone's events are per
milestone, signed with the ledger key when one is set, the chain's head on the project row.

``record_project_event`` appends one (the caller holds the project's row lock) and tells the project event
subscribers (webhooks) in the same unit of work; ``check_project_trails`` is what ``ledger verify`` runs
over every project.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from milepost import events
from milepost.audit.models import GENESIS_EVENT_HASH, ProjectEvent
from milepost.audit.service import seal
from milepost.events import ProjectEventAction
from milepost.kit.canonical import canonical_hash
from milepost.kit.context import Context
from milepost.kit.ids import new_id
from milepost.kit.macs import KeyRing
from milepost.projects.models import Project

BATCH = 2_000


def project_event_hash(event: ProjectEvent) -> str:
    payload = {
        "id": event.id,
        "project_id": event.project_id,
        "seq": event.seq,
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "action": event.action,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
        "prev_hash": event.prev_hash,
    }
    return canonical_hash(payload)


def project_event_mac_message(event_hash: str, prev_mac: str | None) -> str:
    """What a project event's MAC signs: its hash and the previous event's MAC ("-" for none). Its own
    prefix, so no milestone event's MAC is ever a valid project event's."""
    return f"project_event|{event_hash}|{prev_mac or '-'}"


def record_project_event(
    ctx: Context,
    project: Project,
    action: ProjectEventAction,
    *,
    role: str,
    data: dict[str, Any] | None = None,
) -> ProjectEvent:
    """Append an event to the project's chain (the caller holds the project's row lock) and tell the
    subscribers, in the caller's unit of work."""
    seq = (project.event_count or 0) + 1
    event = ProjectEvent(
        id=new_id("pev"),
        project_id=project.id,
        seq=seq,
        actor_id=ctx.actor_id,
        actor_role=role,
        action=ProjectEventAction(action),
        data=data or {},
        created_at=ctx.now,
        prev_hash=project.last_event_hash or GENESIS_EVENT_HASH,
    )
    seal(ctx, project, event, project_event_hash(event), project_event_mac_message)
    events.publish_project_event(ctx, project, event)
    return event


def list_project_events(session: Session, project_id: str) -> list[ProjectEvent]:
    return list(
        session.scalars(
            select(ProjectEvent)
            .where(ProjectEvent.project_id == project_id)
            .order_by(ProjectEvent.seq)
        )
    )


def check_project_trails(session: Session, keys: KeyRing) -> Iterator[str]:
    """Every project's chain: numbering, links, hashes, MACs (with a configured key), and that it ends at
    the head kept on the project (which shows events cut off its end). Streamed in batches of projects."""
    after = ""
    while True:
        heads = session.execute(
            select(Project.id, Project.event_count, Project.last_event_hash, Project.last_event_mac)
            .where(Project.id > after)
            .order_by(Project.id)
            .limit(BATCH)
        ).all()
        if not heads:
            return
        rows = session.execute(
            select(*ProjectEvent.__table__.columns)
            .where(ProjectEvent.project_id.between(heads[0].id, heads[-1].id))
            .order_by(ProjectEvent.project_id, ProjectEvent.seq)
        )
        # Read as rows and made into detached events: the identity map of the caller's session stays
        # as it was, however many events there are.
        chains = {
            project_id: list(chain)
            for project_id, chain in groupby(
                (ProjectEvent(**row._mapping) for row in rows), key=lambda event: event.project_id
            )
        }
        for head in heads:
            yield from _chain_problems(head.id, chains.get(head.id, []), keys)
            chain = chains.get(head.id, [])
            last_hash = chain[-1].hash if chain else GENESIS_EVENT_HASH
            last_mac = chain[-1].mac if chain else None
            if (head.event_count, head.last_event_hash, head.last_event_mac) != (
                len(chain),
                last_hash,
                last_mac,
            ):
                yield (
                    f"project {head.id}: its audit trail should hold {head.event_count} events "
                    f"ending in {head.last_event_hash[:12]}..., but holds {len(chain)} ending in "
                    f"{last_hash[:12]}... (events were removed or added, or the head rewritten)"
                )
        after = heads[-1].id


def _chain_problems(project_id: str, chain: list[ProjectEvent], keys: KeyRing) -> Iterator[str]:
    prev_hash, prev_mac = GENESIS_EVENT_HASH, None
    for expected, event in enumerate(chain, start=1):
        where = f"project {project_id} event {event.seq}"
        if event.seq != expected:
            yield f"{where}: expected event {expected}"
        if event.prev_hash != prev_hash:
            yield f"{where}: link to previous event broken"
        content_hash = project_event_hash(event)
        if content_hash != event.hash:
            yield f"{where}: event content was altered"
        if keys.configured:
            problem = keys.check(
                event.mac_key_id, event.mac, project_event_mac_message(content_hash, prev_mac)
            )
            if problem is not None:
                yield f"{where}: event {problem}"
        prev_hash, prev_mac = event.hash, event.mac
