"""Notifications: the signed-in user's own, newest first; mark one or all read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.kit.schemas import ListOf
from milepost.notifications import service
from milepost.notifications.schemas import MarkedReadOut, NotificationOut, UnreadCountOut

router = APIRouter(tags=["notifications"])
Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/notifications", response_model=ListOf[NotificationOut])
def list_notifications(
    api: ApiDep, limit: Limit = 20, starting_after: str | None = None, unread: bool = False
) -> Response:
    return api.read(
        lambda ctx: service.list_notifications(
            ctx, unread=unread, limit=limit, starting_after=starting_after
        ),
        lambda page: ListOf[NotificationOut](
            data=[NotificationOut.of(item) for item in page.data], has_more=page.has_more
        ),
    )


@router.get("/notifications/unread-count", response_model=UnreadCountOut)
def unread_count(api: ApiDep) -> Response:
    return api.read(service.unread_count, lambda count: UnreadCountOut(unread=count))


@router.post("/notifications/read-all", response_model=MarkedReadOut)
async def mark_all_read(api: ApiDep) -> Response:
    return await api.write(service.mark_all_read, lambda count: MarkedReadOut(marked_read=count))


@router.get("/notifications/{notification_id}", response_model=NotificationOut)
def get_notification(notification_id: str, api: ApiDep) -> Response:
    return api.read(lambda ctx: service.get_notification(ctx, notification_id), NotificationOut.of)


@router.post("/notifications/{notification_id}/read", response_model=NotificationOut)
async def mark_read(notification_id: str, api: ApiDep) -> Response:
    return await api.write(lambda ctx: service.mark_read(ctx, notification_id), NotificationOut.of)
