"""The account's pages: notifications, profiles with reputation, settings (time zone, and the bank accounts
payouts go to)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.auth import service as auth
from milepost.kit.context import Context
from milepost.kit.errors import MilepostError, NotFound
from milepost.notifications import service as notifications
from milepost.users.models import User
from milepost.users.service import set_time_zone, time_zones
from milepost.wallets import destinations
from milepost.wallets.stripe_provider import (
    REFRESH_PATH,
    onboarding_link,
    open_payout_account,
)
from milepost.web.common import form_errors, not_found
from milepost.web.posts import Post, Posted, register
from milepost.web.session import SignedOut, Web, WebDep
from milepost.web.views import settings as settings_view
from milepost.web.views.profile import profile

router = APIRouter(include_in_schema=False)

NOTIFICATIONS_PER_PAGE = 20


# Notifications -----------------------------------------------------------------------------------------


@router.get("/notifications")
def notifications_page(web: WebDep, starting_after: str | None = None) -> Response:
    return web.page(
        "notifications.html",
        lambda ctx: notifications.list_notifications(
            ctx, limit=NOTIFICATIONS_PER_PAGE, starting_after=starting_after or None
        ),
        starting_after=starting_after,
    )


def _not_found(web: Web, posted: Posted, error: MilepostError) -> Response:
    """Marking read, removing a bank account and revoking a token are refused only for what is not the
    viewer's: the 404 page."""
    return web.not_found()


register(
    router,
    (
        Post("/notifications/read-all", notifications.mark_all_read, "/notifications", _not_found),
        Post(
            "/notifications/{notification_id}/read",
            notifications.mark_read,
            "/notifications",
            _not_found,
        ),
    ),
)


@router.get("/notifications/{notification_id}/open")
def open_notification(web: WebDep, notification_id: str) -> Response:
    """Following a notification's link marks it read and goes to what it is about. A GET that changes
    state, on purpose and harmlessly: the worst another site can do with it is mark one read."""
    try:
        opened = web.write(lambda ctx: notifications.mark_read(ctx, notification_id))
    except SignedOut:
        return web.to_login()
    except NotFound:
        return web.not_found()
    return web.redirect(notifications.page_path(opened))


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


DESTINATION_FIELDS = (
    "holder_name",
    "label",
    "iban",
    "bic",
    "account_number",
    "routing_number",
)


def _settings(
    web: WebDep,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    saved: bool = False,
    added: bool = False,
    revoked: bool = False,
    stripe_account_made: bool = False,
) -> Response:
    return web.page(
        "settings.html",
        lambda ctx: settings_view.settings_page(ctx, web.session_token),
        status=status,
        zones=time_zones(),
        errors=errors or {},
        values=values or {},
        saved=saved,
        added=added,
        revoked=revoked,
        stripe_account_made=stripe_account_made,
        stripe_onboarding=REFRESH_PATH,
        session_hours=web.settings.web_session_hours,
    )


@router.get("/settings")
def settings_page(
    web: WebDep,
    saved: bool = False,
    added: bool = False,
    revoked: bool = False,
    stripe_account: bool = False,
) -> Response:
    return _settings(
        web, saved=saved, added=added, revoked=revoked, stripe_account_made=stripe_account
    )


def _destination_refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    """The settings page again, the message by the bank-account form's field, what was typed in it."""
    return _settings(
        web,
        status=error.status,
        errors={
            f"destination-{field}": message
            for field, message in form_errors(error, posted.places).items()
        },
        values=dict(posted.typed),
    )


def _settings_refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    return _settings(web, status=error.status, errors=form_errors(error, posted.places))


def _stripe_refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    return _settings(web, status=error.status, errors={"stripe-account": error.message})


@router.get(REFRESH_PATH)
def stripe_onboarding(web: WebDep) -> Response:
    """To Stripe's pages for the viewer's Stripe account, by a link made for this visit (Stripe's own
    links expire within minutes, and Stripe sends an expired one back here). A link, not a form: a
    form's answer may not lead to another site (the pages' CSP ``form-action 'self'``)."""
    try:
        url = web.read(onboarding_link)
    except SignedOut:
        return web.to_login()
    except NotFound:
        return not_found(web)
    return web.redirect(url)


def _save_time_zone(ctx: Context, *, time_zone: str) -> User:
    return set_time_zone(ctx.session, ctx.require_actor(), time_zone)


register(
    router,
    (
        Post(
            "/settings/payout-destinations",
            destinations.add_destination,
            "/settings?added=1#bank-accounts-heading",
            _destination_refused,
            fields=DESTINATION_FIELDS,
        ),
        # The viewer's Stripe account, made on the first click, and Stripe's pages to finish it.
        Post(
            "/settings/stripe-account",
            open_payout_account,
            "/settings?stripe_account=1#stripe-account-heading",
            _stripe_refused,
        ),
        Post(
            "/settings/payout-destinations/{destination_id}/remove",
            destinations.remove_destination,
            "/settings#bank-accounts-heading",
            _not_found,
        ),
        # One of the viewer's API tokens or sessions; this browser's own too: it is then signed out,
        # and the next page is the log-in page.
        Post(
            "/settings/tokens/{token_id}/revoke",
            auth.revoke_token_by_id,
            "/settings?revoked=1",
            _not_found,
        ),
        Post(
            "/settings",
            _save_time_zone,
            "/settings?saved=1",
            _settings_refused,
            fields=("time_zone",),
        ),
    ),
)
