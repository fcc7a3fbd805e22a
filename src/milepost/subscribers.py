"""Start-up wiring: who listens to milestone events and notices (see ``milepost.events``).

Called once by everything that writes: the app factory, every CLI command that opens the database (the
worker, ``tick``, ``demo``...), the demo loader and the test fixtures. Installing again changes nothing.
"""

from __future__ import annotations

from milepost import events


def install() -> None:
    """Subscribe webhooks (the outbox of deliveries) and notifications (in-app, and e-mail into its
    outbox) to every milestone event, notifications to every notice, and webhooks to every project
    event. Webhooks come first, as they
    always did: an event's deliveries are queued before its e-mails."""
    from milepost.notifications import service as notifications
    from milepost.webhooks import service as webhooks

    events.registry.replace(
        events=[webhooks.on_event, notifications.on_event],
        notices=[notifications.on_notice],
        project_events=[webhooks.on_project_event],
    )
