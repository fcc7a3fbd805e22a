"""Webhook event types (one per audit action on a milestone, and one per action on a project's own trail)
and the event payloads."""

from __future__ import annotations

from typing import Any

from milepost.audit.models import MilestoneEvent, ProjectEvent
from milepost.events import EventAction, ProjectEventAction
from milepost.milestones.models import Milestone
from milepost.projects.models import Project

# One per audit action on a milestone, as ``milestone.<action>``, in the order of ``EventAction``; then one
# per action on a project's trail, as ``project.<action>``, in the order of ``ProjectEventAction``.
EVENT_TYPES: tuple[str, ...] = tuple(f"milestone.{action}" for action in EventAction) + tuple(
    f"project.{action}" for action in ProjectEventAction
)


def event_type(action: str) -> str:
    """The webhook event type of an audit action."""
    return f"milestone.{EventAction(action)}"


def event_payload(
    event: MilestoneEvent, milestone: Milestone, freelancer_id: str | None
) -> dict[str, Any]:
    """The event as POSTed: the milestone as it stood right after the event, and who acted."""
    return {
        "id": event.id,
        "object": "event",
        "type": event_type(event.action),
        "created_at": event.created_at.isoformat(),
        "data": {
            "milestone": {
                "id": milestone.id,
                "object": "milestone",
                "project_id": milestone.project_id,
                "client_id": milestone.client_id,
                "freelancer_id": freelancer_id,
                "title": milestone.title,
                "status": str(milestone.status),
                "currency": milestone.currency,
                "amount": milestone.amount,
                "funded_amount": milestone.funded_amount,
                "released_amount": milestone.released_amount,
                "refunded_amount": milestone.refunded_amount,
                "escrow_balance": milestone.escrow_balance,
                "fee_amount": milestone.fee_amount,
                "late_fee_amount": milestone.late_fee_amount,
            },
            "actor": {"id": event.actor_id, "role": event.actor_role},
            "from_status": event.from_status,
            "to_status": event.to_status,
            "amount": event.amount,
            "details": event.data,
        },
    }


def project_event_type(action: str) -> str:
    """The webhook event type of an action on a project's trail."""
    return f"project.{ProjectEventAction(action)}"


def project_event_payload(event: ProjectEvent, project: Project) -> dict[str, Any]:
    """The event as POSTed: the project as it stood right after the event, who acted, and the details
    (the offer's or the milestone request's id, and what changed)."""
    return {
        "id": event.id,
        "object": "event",
        "type": project_event_type(event.action),
        "created_at": event.created_at.isoformat(),
        "data": {
            "project": {
                "id": project.id,
                "object": "project",
                "client_id": project.client_id,
                "freelancer_id": project.freelancer_id,
                "title": project.title,
                "status": str(project.status),
                "currency": project.currency,
                "paused": project.paused,
            },
            "actor": {"id": event.actor_id, "role": event.actor_role},
            "details": event.data,
        },
    }
