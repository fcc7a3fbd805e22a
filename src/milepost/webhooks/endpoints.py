"""Webhook endpoints: register a URL for milestone events, list, read, delete, and the delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.kit.schemas import ListOf
from milepost.webhooks import service
from milepost.webhooks.schemas import (
    DeletedEndpointOut,
    DeliveryOut,
    EndpointIn,
    EndpointOut,
    NewEndpointOut,
)

router = APIRouter(tags=["webhooks"])
Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("/webhook-endpoints", status_code=201, response_model=NewEndpointOut)
async def create_endpoint(body: EndpointIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.create_endpoint(ctx, url=body.url, events=body.events),
        NewEndpointOut.of,
        status=201,
    )


@router.get("/webhook-endpoints", response_model=ListOf[EndpointOut])
def list_endpoints(api: ApiDep, limit: Limit = 20, starting_after: str | None = None) -> Response:
    return api.read(
        lambda ctx: service.list_endpoints(ctx, limit=limit, starting_after=starting_after),
        lambda page: ListOf[EndpointOut](
            data=[EndpointOut.of(endpoint) for endpoint in page.data], has_more=page.has_more
        ),
    )


@router.get("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(endpoint_id: str, api: ApiDep) -> Response:
    return api.read(lambda ctx: service.get_endpoint(ctx, endpoint_id), EndpointOut.of)


@router.delete("/webhook-endpoints/{endpoint_id}", response_model=DeletedEndpointOut)
async def delete_endpoint(endpoint_id: str, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.delete_endpoint(ctx, endpoint_id),
        lambda endpoint: DeletedEndpointOut(id=endpoint.id),
    )


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", response_model=ListOf[DeliveryOut])
def list_deliveries(
    endpoint_id: str, api: ApiDep, limit: Limit = 20, starting_after: str | None = None
) -> Response:
    return api.read(
        lambda ctx: service.list_deliveries(
            ctx, endpoint_id, limit=limit, starting_after=starting_after
        ),
        lambda page: ListOf[DeliveryOut](
            data=[DeliveryOut.of(item) for item in page.data], has_more=page.has_more
        ),
    )
