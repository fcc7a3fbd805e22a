"""Webhook endpoints (create, list, read, delete), the outbox they are fed from, and their delivery log.

``on_event`` is subscribed to every milestone event and ``on_project_event`` to every event of a
project's own trail (``milepost.subscribers``), so ``audit.record`` and ``record_project_event`` call them
in the same unit of work: a rolled-back request leaves no delivery behind, and nothing is sent before
the event has committed (``delivery.deliver_due`` only sees committed rows).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from milepost.audit.models import MilestoneEvent, ProjectEvent
from milepost.kit.context import Context
from milepost.kit.errors import ValidationFailed
from milepost.kit.ids import new_id
from milepost.kit.lookup import one_or_404
from milepost.kit.pagination import Page, paginate
from milepost.milestones.models import Milestone
from milepost.projects.models import Project
from milepost.users.models import User
from milepost.webhooks.addresses import InvalidHost, host_refusal, parse_host
from milepost.webhooks.events import (
    EVENT_TYPES,
    event_payload,
    event_type,
    project_event_payload,
    project_event_type,
)
from milepost.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

MAX_ENDPOINTS_PER_USER = 20
MAX_URL_LENGTH = 2000


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def validate_url(value: object, *, allow_private_networks: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("url is required.", code="missing", param="url")
    url = value.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValidationFailed(f"url must be at most {MAX_URL_LENGTH} characters.", param="url")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises on a malformed port
    except ValueError as error:
        raise ValidationFailed("url is not a valid URL.", param="url") from error
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationFailed(
            "url must be an http:// or https:// URL with a host.", code="invalid_url", param="url"
        )
    try:
        parsed = parse_host(host)
    except InvalidHost as error:
        raise ValidationFailed(
            f"url must name a valid host: {error}.", code="invalid_url", param="url"
        ) from None
    # The host as the resolver will read it (2130706433, 0x7f000001, 127.1, ::ffff:127.0.0.1 are all
    # loopback), judged by the same rule as every delivery (see addresses.py).
    refusal = None if allow_private_networks else host_refusal(parsed)
    if refusal is not None:
        raise ValidationFailed(
            f"url must reach a public address: {refusal}.", code="private_address", param="url"
        )
    return url


def validate_events(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationFailed("events must be a list of event types.", param="events")
    chosen: list[str] = []
    for index, item in enumerate(value):
        if item not in EVENT_TYPES:
            raise ValidationFailed(
                f"Unknown event type {item!r}; known types: {', '.join(EVENT_TYPES)}.",
                code="unknown_event_type",
                param=f"events[{index}]",
            )
        if item not in chosen:
            chosen.append(item)
    return chosen


def create_endpoint(ctx: Context, *, url: object, events: object = None) -> WebhookEndpoint:
    owner = ctx.require_actor()
    clean_url = validate_url(
        url, allow_private_networks=ctx.settings.webhook_allow_private_networks
    )
    chosen = validate_events(events)
    locked = _lock_owner(ctx, owner.id)
    count = _live_count(ctx, owner.id)
    if count >= MAX_ENDPOINTS_PER_USER:
        raise ValidationFailed(
            f"At most {MAX_ENDPOINTS_PER_USER} webhook endpoints per user; delete one first.",
            code="too_many_endpoints",
        )
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        owner_id=owner.id,
        url=clean_url,
        events=chosen,
        secret=new_secret(),
        created_at=ctx.now,
    )
    ctx.session.add(endpoint)
    locked.webhook_endpoints = count + 1
    ctx.session.flush()
    return endpoint


def _lock_owner(ctx: Context, user_id: str) -> User:
    """The owner's row, locked: their endpoints are created and deleted one at a time, so the count of
    live ones (the limit, and ``User.webhook_endpoints``, which ``on_event`` reads) is exact."""
    return ctx.session.scalars(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _live_count(ctx: Context, owner_id: str) -> int:
    count = ctx.session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.owner_id == owner_id, WebhookEndpoint.deleted_at.is_(None))
    )
    return int(count or 0)


def _owned(ctx: Context) -> list[ColumnElement[bool]]:
    return [
        WebhookEndpoint.owner_id == ctx.require_actor().id,
        WebhookEndpoint.deleted_at.is_(None),
    ]


def list_endpoints(
    ctx: Context, *, limit: int = 20, starting_after: str | None = None
) -> Page[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(*_owned(ctx))
    return paginate(
        ctx.session, query, WebhookEndpoint.id, limit=limit, starting_after=starting_after
    )


def get_endpoint(ctx: Context, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint:
    """The actor's own endpoint; anyone else's, or a deleted one, does not exist."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, *_owned(ctx))
    return one_or_404(ctx.session, query, lock=lock, missing="No such webhook endpoint.")


def delete_endpoint(ctx: Context, endpoint_id: str) -> WebhookEndpoint:
    """Stop sending to the endpoint: it disappears, and its pending deliveries are cancelled."""
    owner = _lock_owner(ctx, ctx.require_actor().id)
    endpoint = get_endpoint(ctx, endpoint_id, lock=True)
    endpoint.deleted_at = ctx.now
    owner.webhook_endpoints = _live_count(ctx, owner.id)  # flushed first: without this one
    ctx.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.CANCELLED, next_attempt_at=None)
    )
    return endpoint


@dataclass(frozen=True)
class DeliveryWithLog:
    delivery: WebhookDelivery
    log: list[WebhookAttempt]


def list_deliveries(
    ctx: Context, endpoint_id: str, *, limit: int = 20, starting_after: str | None = None
) -> Page[DeliveryWithLog]:
    endpoint = get_endpoint(ctx, endpoint_id)
    page = paginate(
        ctx.session,
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id),
        WebhookDelivery.id,
        limit=limit,
        starting_after=starting_after,
    )
    logs: dict[str, list[WebhookAttempt]] = {delivery.id: [] for delivery in page.data}
    if logs:
        for attempt in ctx.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(logs)))
            .order_by(WebhookAttempt.number)
        ):
            logs[attempt.delivery_id].append(attempt)
    return Page(
        data=[DeliveryWithLog(delivery, logs[delivery.id]) for delivery in page.data],
        has_more=page.has_more,
    )


# The outbox -----------------------------------------------------------------------------------------------


def on_event(ctx: Context, milestone: Milestone, event: MilestoneEvent) -> int:
    """The subscriber to milestone events: queue the event for every matching endpoint of the
    milestone's client and freelancer.

    Runs inside the caller's unit of work; returns how many deliveries were queued.
    """
    project = ctx.session.get(Project, milestone.project_id)
    freelancer_id = project.freelancer_id if project is not None else None
    owners = {milestone.client_id} | ({freelancer_id} if freelancer_id else set())
    return _queue(
        ctx,
        owners,
        event_type(event.action),
        event.id,
        event.seq,
        lambda: event_payload(event, milestone, freelancer_id),
    )


def on_project_event(ctx: Context, project: Project, event: ProjectEvent) -> int:
    """The subscriber to a project's own events: queue the event for every matching endpoint of the
    project's client and freelancer, and of the freelancer an offer names (who is not the project's
    freelancer until they accept it)."""
    offered = event.data.get("freelancer_id")
    owners = {project.client_id} | {
        user_id for user_id in (project.freelancer_id, offered) if isinstance(user_id, str)
    }
    return _queue(
        ctx,
        owners,
        project_event_type(event.action),
        event.id,
        event.seq,
        lambda: project_event_payload(event, project),
    )


def _queue(
    ctx: Context,
    owners: set[str],
    kind: str,
    event_id: str,
    seq: int,
    payload_of: Callable[[], dict[str, Any]],
) -> int:
    if not _may_have_endpoints(ctx.session, owners):
        return 0
    endpoints = [
        endpoint
        for endpoint in _live_endpoints(ctx.session, frozenset(owners))
        if not endpoint.events or kind in endpoint.events
    ]
    if not endpoints:
        return 0
    payload = payload_of()
    for endpoint in endpoints:
        ctx.session.add(
            WebhookDelivery(
                id=new_id("whd"),
                endpoint_id=endpoint.id,
                event_id=event_id,
                event_type=kind,
                event_seq=seq,
                payload=payload,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=ctx.now,
                created_at=ctx.now,
            )
        )
    _wake_sender_after_commit(ctx.session)
    return len(endpoints)


def _may_have_endpoints(session: Session, owners: set[str]) -> bool:
    """False when every owner is already loaded in this unit of work (loading a milestone reads both
    parties) and has no live endpoint (``User.webhook_endpoints``): then there is nothing to look for,
    and no query. An endpoint created meanwhile gets the events of the changes that read its owner
    after it was committed, as it got those that read the endpoints after that before."""
    for owner in owners:
        user = session.identity_map.get(session.identity_key(User, owner))
        if not isinstance(user, User) or user.webhook_endpoints:
            return True
    return False


def _live_endpoints(session: Session, owners: frozenset[str]) -> list[WebhookEndpoint]:
    """The owners' endpoints, read once per unit of work (an action often records several events)."""
    cache: dict[frozenset[str], list[WebhookEndpoint]] = session.info.setdefault(
        "webhook_endpoints", {}
    )
    if owners not in cache:
        cache[owners] = list(
            session.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.owner_id.in_(owners), WebhookEndpoint.deleted_at.is_(None))
                .order_by(WebhookEndpoint.id)
            )
        )
    return cache[owners]


def _wake_sender_after_commit(session: Session) -> None:
    """Once this unit of work commits, wake the in-process sender so the events go out at once (it also
    polls every second, so this only saves latency). Never before commit, never on rollback."""
    if session.info.get("webhooks_wake"):
        return
    session.info["webhooks_wake"] = True

    def wake(_session: Session) -> None:
        from milepost.webhooks.worker import wake_senders

        wake_senders()

    sa_event.listen(session, "after_commit", wake, once=True)
