from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictStr, WithJsonSchema

from milepost.kit.schemas import Body, one_of
from milepost.webhooks.events import EVENT_TYPES
from milepost.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookEndpoint
from milepost.webhooks.service import DeliveryWithLog

EventType = Annotated[
    StrictStr,
    one_of(EVENT_TYPES, "A milestone event type; another is 422 `unknown_event_type`."),
]


class EndpointIn(Body):
    url: StrictStr = Field(description="An http(s) URL (up to 2000 characters).")
    events: list[EventType] | None = Field(
        None, description="The event types to send; omitted, null or empty: every event."
    )


class EndpointOut(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[Annotated[str, one_of(EVENT_TYPES, "A milestone event type.")]] = Field(
        description="The event types sent; empty: every event."
    )
    created_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            events=list(endpoint.events),
            created_at=endpoint.created_at,
        )


class NewEndpointOut(EndpointOut):
    """Only the response to creation carries the signing secret."""

    secret: str

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> NewEndpointOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            events=list(endpoint.events),
            created_at=endpoint.created_at,
            secret=endpoint.secret,
        )


class DeletedEndpointOut(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    deleted: bool = True


class AttemptOut(BaseModel):
    number: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> AttemptOut:
        return cls(
            number=attempt.number,
            attempted_at=attempt.attempted_at,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )


class DeliveryOut(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str
    event_id: str
    event_type: Annotated[
        str,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": r"^milestone\.[a-z_]+$",
                "description": "`milestone.<action>`, e.g. `milestone.funded`.",
            }
        ),
    ]
    status: Annotated[
        str,
        one_of(
            DeliveryStatus,
            "`pending` (to be tried, or retried), `delivered`, `failed` (every attempt failed), "
            "`cancelled` (the endpoint was deleted first).",
        ),
    ]
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]
    log: list[AttemptOut]

    @classmethod
    def of(cls, item: DeliveryWithLog) -> DeliveryOut:
        delivery = item.delivery
        return cls(
            id=delivery.id,
            endpoint_id=delivery.endpoint_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            status=str(delivery.status),
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
            payload=delivery.payload,
            log=[AttemptOut.of(attempt) for attempt in item.log],
        )
