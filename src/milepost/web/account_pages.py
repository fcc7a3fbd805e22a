"""The account's pages: notifications, profiles with reputation, settings."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.errors import MilepostError, NotFound
from milepost.kit.pagination import Page
from milepost.notifications import service as notifications
from milepost.notifications.models import Notification
from milepost.reputation.profile import profile
from milepost.users.service import set_time_zone, time_zones
from milepost.web.common import FormText, form_errors, not_found
from milepost.web.session import SignedOut, WebDep

router = APIRouter(include_in_schema=False)

NOTIFICATIONS_PER_PAGE = 20


# Notifications -----------------------------------------------------------------------------------------


@router.get("/notifications")
def notifications_page(web: WebDep, starting_after: str | None = None) -> Response:
    try:
        page: Page[Notification] = web.read(
            lambda ctx: notifications.list_notifications(
                ctx, limit=NOTIFICATIONS_PER_PAGE, starting_after=starting_after or None
            )
        )
    except SignedOut:
        return web.to_login()
    return web.render("notifications.html", page=page, starting_after=starting_after)


@router.post("/notifications/read-all")
def mark_all_read(web: WebDep, csrf_token: FormText = "") -> Response:
    if not web.csrf_ok(csrf_token, signed_in=True):
        return web.forbidden()
    try:
        web.write(notifications.mark_all_read)
    except SignedOut:
        return web.to_login()
    return web.redirect("/notifications")


@router.post("/notifications/{notification_id}/read")
def mark_read(web: WebDep, notification_id: str, csrf_token: FormText = "") -> Response:
    if not web.csrf_ok(csrf_token, signed_in=True):
        return web.forbidden()
    try:
        web.write(lambda ctx: notifications.mark_read(ctx, notification_id))
    except SignedOut:
        return web.to_login()
    except NotFound:
        return not_found(web)
    return web.redirect("/notifications")


# Profiles ----------------------------------------------------------------------------------------------


@router.get("/users/{user_id}")
def profile_page(web: WebDep, user_id: str) -> Response:
    try:
        shown = web.read(lambda ctx: profile(ctx, user_id))
    except SignedOut:
        return web.to_login()
    except NotFound:
        return not_found(web)
    return web.render("profile.html", profile=shown)


# Settings ----------------------------------------------------------------------------------------------


def _settings(
    web: WebDep, *, status: int = 200, errors: dict[str, str] | None = None, saved: bool = False
) -> Response:
    try:
        viewer = web.read(lambda ctx: ctx.require_actor())
    except SignedOut:
        return web.to_login()
    return web.render(
        "settings.html",
        status=status,
        viewer=viewer,
        zones=time_zones(),
        errors=errors or {},
        saved=saved,
    )


@router.get("/settings")
def settings_page(web: WebDep, saved: bool = False) -> Response:
    return _settings(web, saved=saved)


@router.post("/settings")
def save_settings(web: WebDep, time_zone: FormText = "", csrf_token: FormText = "") -> Response:
    if not web.csrf_ok(csrf_token, signed_in=True):
        return web.forbidden()
    try:
        web.write(lambda ctx: set_time_zone(ctx.session, ctx.require_actor(), time_zone))
    except SignedOut:
        return web.to_login()
    except MilepostError as error:
        return _settings(web, status=error.status, errors=form_errors(error, ("time_zone",)))
    return web.redirect("/settings?saved=1")
