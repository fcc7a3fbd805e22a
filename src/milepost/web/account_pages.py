"""The account's pages: notifications, profiles with reputation, settings (time zone, and the bank accounts
payouts go to)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.auth import service as auth
from milepost.kit.context import Context
from milepost.kit.errors import NotFound
from milepost.notifications import service as notifications
from milepost.users.models import User
from milepost.users.service import set_time_zone, time_zones
from milepost.wallets import destinations
from milepost.wallets.destinations import masked
from milepost.wallets.models import PayoutDestination
from milepost.web.common import FormText, form_errors, not_found
from milepost.web.session import SignedOut, WebDep
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


def _back_to_notifications(
    web: WebDep, csrf_token: str, action: Callable[[Context], object]
) -> Response:
    # Marking read is refused only for a notification that is not the viewer's: the 404 page.
    return web.act(
        csrf_token, action, done=lambda _: "/notifications", refused=lambda _: web.not_found()
    )


@router.post("/notifications/read-all")
def mark_all_read(web: WebDep, csrf_token: FormText = "") -> Response:
    return _back_to_notifications(web, csrf_token, notifications.mark_all_read)


@router.post("/notifications/{notification_id}/read")
def mark_read(web: WebDep, notification_id: str, csrf_token: FormText = "") -> Response:
    return _back_to_notifications(
        web, csrf_token, lambda ctx: notifications.mark_read(ctx, notification_id)
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
MAX_DESTINATIONS_SHOWN = 100


@dataclass(frozen=True)
class BankAccount:
    """A payout destination as its owner sees it: masked."""

    id: str
    label: str
    holder_name: str
    masked: str

    @classmethod
    def of(cls, destination: PayoutDestination) -> BankAccount:
        return cls(destination.id, destination.label, destination.holder_name, masked(destination))


@dataclass(frozen=True)
class SettingsPage:
    user: User
    bank_accounts: list[BankAccount]
    tokens: list[auth.TokenView]  # live API tokens and browser sessions, newest first
    more_tokens: bool


def bank_accounts(ctx: Context) -> list[BankAccount]:
    page = destinations.list_destinations(ctx, limit=MAX_DESTINATIONS_SHOWN)
    return [BankAccount.of(destination) for destination in page.data]


def _load_settings(web: WebDep, ctx: Context) -> SettingsPage:
    tokens, more = auth.list_tokens(ctx, web.session_token)
    return SettingsPage(
        user=ctx.require_actor(), bank_accounts=bank_accounts(ctx), tokens=tokens, more_tokens=more
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
) -> Response:
    return web.page(
        "settings.html",
        lambda ctx: _load_settings(web, ctx),
        status=status,
        zones=time_zones(),
        errors=errors or {},
        values=values or {},
        saved=saved,
        added=added,
        revoked=revoked,
        session_hours=web.settings.web_session_hours,
    )


@router.get("/settings")
def settings_page(
    web: WebDep, saved: bool = False, added: bool = False, revoked: bool = False
) -> Response:
    return _settings(web, saved=saved, added=added, revoked=revoked)


@router.post("/settings/payout-destinations")
def add_destination(
    web: WebDep,
    holder_name: FormText = "",
    label: FormText = "",
    iban: FormText = "",
    bic: FormText = "",
    account_number: FormText = "",
    routing_number: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    typed = {
        "holder_name": holder_name,
        "label": label,
        "iban": iban,
        "bic": bic,
        "account_number": account_number,
        "routing_number": routing_number,
    }
    return web.act(
        csrf_token,
        lambda ctx: destinations.add_destination(ctx, **typed),
        done=lambda _: "/settings?added=1#bank-accounts-heading",
        refused=lambda error: _settings(
            web,
            status=error.status,
            errors={
                f"destination-{field}": message
                for field, message in form_errors(error, DESTINATION_FIELDS).items()
            },
            values=typed,
        ),
    )


@router.post("/settings/payout-destinations/{destination_id}/remove")
def remove_destination(web: WebDep, destination_id: str, csrf_token: FormText = "") -> Response:
    return web.act(
        csrf_token,
        lambda ctx: destinations.remove_destination(ctx, destination_id),
        done=lambda _: "/settings#bank-accounts-heading",
        refused=lambda _: web.not_found(),
    )


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(web: WebDep, token_id: str, csrf_token: FormText = "") -> Response:
    """Revoke one of the viewer's API tokens or sessions (this browser's own too: it is then signed
    out, and the next page is the log-in page)."""
    return web.act(
        csrf_token,
        lambda ctx: auth.revoke_token_by_id(ctx, token_id),
        done=lambda _: "/settings?revoked=1",
        refused=lambda _: web.not_found(),
    )


@router.post("/settings")
def save_settings(web: WebDep, time_zone: FormText = "", csrf_token: FormText = "") -> Response:
    return web.act(
        csrf_token,
        lambda ctx: set_time_zone(ctx.session, ctx.require_actor(), time_zone),
        done=lambda _: "/settings?saved=1",
        refused=lambda error: _settings(
            web, status=error.status, errors=form_errors(error, ("time_zone",))
        ),
    )
