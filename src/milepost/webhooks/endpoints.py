"""Webhook endpoints: register a URL for milestone events, list, read, delete, and the delivery log."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.kit.schemas import Limit, ListOf, error_responses
from milepost.webhooks import service
from milepost.webhooks.schemas import (
    DeletedEndpointOut,
    DeliveryOut,
    EndpointIn,
    EndpointOut,
    NewEndpointOut,
)

router = APIRouter(tags=["webhooks"])


@router.post(
    "/webhook-endpoints",
    status_code=201,
    response_model=NewEndpointOut,
    summary="Register a webhook endpoint",
    responses=error_responses(400, 401, 409, 413, 422, write=True),
)
async def create_endpoint(body: EndpointIn, api: ApiDep) -> Response:
    """Register an http(s) URL to receive the caller's milestone events (all, or the `events` listed),
    signed with a secret that this response shows once. A URL on a private network is 422 unless the
    installation allows it. No money moves."""
    return await api.write(
        lambda ctx: service.create_endpoint(ctx, url=body.url, events=body.events),
        NewEndpointOut.of,
        status=201,
    )


@router.get(
    "/webhook-endpoints",
    response_model=ListOf[EndpointOut],
    summary="List my webhook endpoints",
    responses=error_responses(400, 401, 422),
)
def list_endpoints(api: ApiDep, limit: Limit = 20, starting_after: str | None = None) -> Response:
    """The caller's webhook endpoints, newest first (without their secrets)."""
    return api.read(
        lambda ctx: service.list_endpoints(ctx, limit=limit, starting_after=starting_after),
        lambda page: ListOf[EndpointOut](
            data=[EndpointOut.of(endpoint) for endpoint in page.data], has_more=page.has_more
        ),
    )


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    response_model=EndpointOut,
    summary="Get a webhook endpoint",
    responses=error_responses(401, 404, 422),
)
def get_endpoint(endpoint_id: str, api: ApiDep) -> Response:
    """One of the caller's webhook endpoints (without its secret)."""
    return api.read(lambda ctx: service.get_endpoint(ctx, endpoint_id), EndpointOut.of)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    response_model=DeletedEndpointOut,
    summary="Delete a webhook endpoint",
    responses=error_responses(401, 404, 409, 422, write=True),
)
async def delete_endpoint(endpoint_id: str, api: ApiDep) -> Response:
    """Stop sending events to one of the caller's endpoints; deliveries not yet made are cancelled."""
    return await api.write(
        lambda ctx: service.delete_endpoint(ctx, endpoint_id),
        lambda endpoint: DeletedEndpointOut(id=endpoint.id),
    )


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=ListOf[DeliveryOut],
    summary="List an endpoint's deliveries",
    responses=error_responses(400, 401, 404, 422),
)
def list_deliveries(
    endpoint_id: str, api: ApiDep, limit: Limit = 20, starting_after: str | None = None
) -> Response:
    """The delivery log of one of the caller's endpoints, newest first: each event, its payload, its
    status and every attempt (HTTP status, error, duration)."""
    return api.read(
        lambda ctx: service.list_deliveries(
            ctx, endpoint_id, limit=limit, starting_after=starting_after
        ),
        lambda page: ListOf[DeliveryOut](
            data=[DeliveryOut.of(item) for item in page.data], has_more=page.has_more
        ),
    )
