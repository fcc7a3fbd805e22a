"""Notifications: the signed-in user's own, newest first; mark one or all read."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.kit.schemas import Limit, ListOf, error_responses
from milepost.notifications import service
from milepost.notifications.schemas import MarkedReadOut, NotificationOut, UnreadCountOut

router = APIRouter(tags=["notifications"])


@router.get(
    "/notifications",
    response_model=ListOf[NotificationOut],
    summary="List my notifications",
    responses=error_responses(400, 401, 422),
)
def list_notifications(
    api: ApiDep, limit: Limit = 20, starting_after: str | None = None, unread: bool = False
) -> Response:
    """The caller's own notifications (what happened on their milestones and projects), newest first;
    `unread=true` for the unread ones only."""
    return api.read(
        lambda ctx: service.list_notifications(
            ctx, unread=unread, limit=limit, starting_after=starting_after
        ),
        lambda page: ListOf[NotificationOut](
            data=[NotificationOut.of(item) for item in page.data], has_more=page.has_more
        ),
    )


@router.get(
    "/notifications/unread-count",
    response_model=UnreadCountOut,
    summary="Count my unread notifications",
    responses=error_responses(401),
)
def unread_count(api: ApiDep) -> Response:
    """How many of the caller's notifications are unread."""
    return api.read(service.unread_count, lambda count: UnreadCountOut(unread=count))


@router.post(
    "/notifications/read-all",
    response_model=MarkedReadOut,
    summary="Mark all my notifications read",
    responses=error_responses(401, 409, 422, write=True),
)
async def mark_all_read(api: ApiDep) -> Response:
    """Mark every unread notification of the caller read; answers how many were."""
    return await api.write(service.mark_all_read, lambda count: MarkedReadOut(marked_read=count))


@router.get(
    "/notifications/{notification_id}",
    response_model=NotificationOut,
    summary="Get a notification",
    responses=error_responses(401, 404, 422),
)
def get_notification(notification_id: str, api: ApiDep) -> Response:
    """One of the caller's notifications; another user's is 404."""
    return api.read(lambda ctx: service.get_notification(ctx, notification_id), NotificationOut.of)


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationOut,
    summary="Mark a notification read",
    responses=error_responses(401, 404, 409, 422, write=True),
)
async def mark_read(notification_id: str, api: ApiDep) -> Response:
    """Mark one of the caller's notifications read (again is harmless)."""
    return await api.write(lambda ctx: service.mark_read(ctx, notification_id), NotificationOut.of)
