"""The web app's pages. Each handler checks the form's CSRF token, runs one service call in one unit of
work as the session's user (see ``session.Web``), and renders a template or redirects. A refused action
re-renders its form with the service's message beside it; no rule is decided here."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import Response

from milepost.auth import service as auth
from milepost.kit.context import Context
from milepost.kit.errors import MilepostError, NotFound
from milepost.milestones import service as milestones
from milepost.milestones import views
from milepost.milestones.state import Action
from milepost.money import parse_amount
from milepost.users.models import User
from milepost.users.service import MIN_PASSWORD_LENGTH, create_user
from milepost.wallets import service as wallets
from milepost.web.session import SignedOut, WebDep

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form()]


def _errors(error: MilepostError, fields: tuple[str, ...]) -> dict[str, str]:
    """The message under the field it is about, or under "form" for the form as a whole."""
    field = error.param if error.param in fields else "form"
    return {field: error.message}


# Signing up, in and out --------------------------------------------------------------------------------


@router.get("/signup")
def signup_page(web: WebDep) -> Response:
    return web.render(
        "signup.html", pre_session=True, values={}, errors={}, min_password=MIN_PASSWORD_LENGTH
    )


@router.post("/signup")
def signup(
    web: WebDep,
    email: FormText = "",
    name: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if not web.csrf_ok(csrf_token, signed_in=False):
        return web.forbidden()

    def sign_up(ctx: Context) -> str:
        create_user(ctx.session, email=email, name=name, password=password)
        token, _user = auth.sign_in(ctx, email=email, password=password, address=None)
        return token

    try:
        token = web.write(sign_up, signed_in=False)
    except MilepostError as error:
        return web.render(
            "signup.html",
            status=error.status,
            pre_session=True,
            values={"email": email, "name": name},
            errors=_errors(error, ("email", "name", "password")),
            min_password=MIN_PASSWORD_LENGTH,
        )
    response = web.redirect("/")
    web.start_session(response, token)
    return response


@router.get("/login")
def login_page(web: WebDep) -> Response:
    return web.render("login.html", pre_session=True, values={}, errors={})


@router.post("/login")
def login(
    web: WebDep, email: FormText = "", password: FormText = "", csrf_token: FormText = ""
) -> Response:
    if not web.csrf_ok(csrf_token, signed_in=False):
        return web.forbidden()
    try:
        token = web.write(
            lambda ctx: auth.sign_in(
                ctx, email=email, password=password, address=web.client_address
            )[0],
            signed_in=False,
        )
    except MilepostError as error:
        return web.render(
            "login.html",
            status=error.status,
            pre_session=True,
            values={"email": email},
            errors=_errors(error, ()),
        )
    response = web.redirect("/")
    web.start_session(response, token)
    return response


@router.post("/logout")
def logout(web: WebDep, csrf_token: FormText = "") -> Response:
    if not web.csrf_ok(csrf_token, signed_in=True):
        return web.forbidden()
    token = web.session_token or ""
    with contextlib.suppress(SignedOut):  # a session already over needs no revoking
        web.write(lambda ctx: auth.revoke_token(ctx, token))
    response = web.redirect("/login")
    web.end_session(response)
    return response


# Dashboard and wallet ----------------------------------------------------------------------------------


def _dashboard(
    web: WebDep,
    tab: str | None,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    def load(ctx: Context) -> tuple[User, views.Dashboard]:
        return ctx.require_actor(), views.dashboard(ctx, tab=tab)

    try:
        viewer, dashboard = web.read(load)
    except SignedOut:
        return web.to_login()
    except MilepostError as error:
        return web.render("error.html", status=error.status, title="Error", message=error.message)
    return web.render(
        "dashboard.html",
        status=status,
        viewer=viewer,
        dashboard=dashboard,
        errors=errors or {},
        values=values or {"currency": "USD"},
    )


@router.get("/")
def dashboard_page(web: WebDep, tab: str | None = None) -> Response:
    return _dashboard(web, tab)


@router.post("/deposits")
def deposit(
    web: WebDep,
    amount: FormText = "",
    currency: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    if not web.csrf_ok(csrf_token, signed_in=True):
        return web.forbidden()

    def create(ctx: Context) -> None:
        wallets.create_deposit(
            ctx,
            amount=parse_amount(amount, currency.strip().upper()),
            currency=currency.strip().upper(),
            provider="sandbox",
        )

    try:
        web.write(create)
    except SignedOut:
        return web.to_login()
    except MilepostError as error:
        return _dashboard(
            web,
            None,
            status=error.status,
            errors=_errors(error, ("amount", "currency")),
            values={"amount": amount, "currency": currency},
        )
    return web.redirect("/")


# Milestones --------------------------------------------------------------------------------------------


def _milestone(
    web: WebDep, milestone_id: str, *, status: int = 200, errors: dict[str, str] | None = None
) -> Response:
    def load(ctx: Context) -> tuple[User, views.MilestonePage]:
        return ctx.require_actor(), views.milestone_page(ctx, milestone_id)

    try:
        viewer, page = web.read(load)
    except SignedOut:
        return web.to_login()
    except NotFound:
        return not_found(web)
    return web.render(
        "milestone.html",
        status=status,
        viewer=viewer,
        page=page,
        errors=errors or {},
        Action=Action,
    )


@router.get("/milestones/{milestone_id}")
def milestone_page(web: WebDep, milestone_id: str) -> Response:
    return _milestone(web, milestone_id)


def _act(web: WebDep, milestone_id: str, csrf_token: str, name: str, action: Any) -> Response:
    """Run one milestone action from its form; on refusal, the page again with the error by that form."""
    if not web.csrf_ok(csrf_token, signed_in=True):
        return web.forbidden()
    try:
        web.write(action)
    except SignedOut:
        return web.to_login()
    except NotFound:
        return not_found(web)
    except MilepostError as error:
        return _milestone(web, milestone_id, status=error.status, errors={name: error.message})
    return web.redirect(f"/milestones/{milestone_id}")


@router.post("/milestones/{milestone_id}/fund")
def fund(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web, milestone_id, csrf_token, "fund", lambda ctx: milestones.fund(ctx, milestone_id)
    )


@router.post("/milestones/{milestone_id}/submit")
def submit(
    web: WebDep, milestone_id: str, note: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "submit",
        lambda ctx: milestones.submit(ctx, milestone_id, note=note),
    )


@router.post("/milestones/{milestone_id}/request-changes")
def request_changes(
    web: WebDep, milestone_id: str, reason: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "request_changes",
        lambda ctx: milestones.request_changes(ctx, milestone_id, reason=reason),
    )


@router.post("/milestones/{milestone_id}/release")
def release(
    web: WebDep, milestone_id: str, amount: FormText = "", csrf_token: FormText = ""
) -> Response:
    def release_part(ctx: Context) -> None:
        # The amount is typed in the milestone's currency.
        currency = milestones.get_milestone(ctx, milestone_id).currency
        milestones.release(ctx, milestone_id, amount=parse_amount(amount, currency))

    return _act(web, milestone_id, csrf_token, "release", release_part)


@router.post("/milestones/{milestone_id}/approve")
def approve(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web, milestone_id, csrf_token, "approve", lambda ctx: milestones.approve(ctx, milestone_id)
    )


@router.post("/milestones/{milestone_id}/request-release")
def request_release(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "request_release",
        lambda ctx: milestones.request_release(ctx, milestone_id),
    )


@router.post("/milestones/{milestone_id}/cancel")
def cancel(
    web: WebDep, milestone_id: str, reason: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "cancel",
        lambda ctx: milestones.cancel(ctx, milestone_id, reason=reason or None),
    )


def not_found(web: WebDep) -> Response:
    return web.render(
        "error.html",
        status=404,
        title="Not found",
        message="There is no such page, or it is not yours to see.",
    )
