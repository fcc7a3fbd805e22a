"""Webhook event types (one per audit action on a milestone) and the event payload."""

from __future__ import annotations

from typing import Any

from milepost.audit.models import MilestoneEvent
from milepost.events import EventAction
from milepost.milestones.models import Milestone

# One per audit action on a milestone, as ``milestone.<action>``, in the order of ``EventAction``.
EVENT_TYPES: tuple[str, ...] = tuple(f"milestone.{action}" for action in EventAction)


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
