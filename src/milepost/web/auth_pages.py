"""Signing up, logging in and out."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.auth import service as auth
from milepost.auth.models import TokenKind
from milepost.kit.context import Context
from milepost.kit.errors import MilepostError
from milepost.users.service import MIN_PASSWORD_LENGTH, create_user, time_zones
from milepost.web.common import FormText, form_errors
from milepost.web.session import SignedOut, WebDep

router = APIRouter(include_in_schema=False)


# Signing up, in and out --------------------------------------------------------------------------------


def _new_session(web: WebDep, ctx: Context, *, email: str, password: str) -> str:
    """Sign in; the session this browser had before (if any) is revoked in the same unit of work, so
    signing in as someone else leaves no live token behind in a dropped cookie."""
    token, _user = auth.sign_in(
        ctx, email=email, password=password, address=web.client_address, kind=TokenKind.WEB
    )
    if web.session_token is not None:
        auth.revoke_token(ctx, web.session_token)
    return token


@router.get("/signup")
def signup_page(web: WebDep) -> Response:
    return web.render(
        "signup.html",
        pre_session=True,
        values={},
        errors={},
        min_password=MIN_PASSWORD_LENGTH,
        zones=time_zones(),
    )


@router.post("/signup")
def signup(
    web: WebDep,
    email: FormText = "",
    name: FormText = "",
    password: FormText = "",
    time_zone: FormText = "UTC",
    csrf_token: FormText = "",
) -> Response:
    if not web.csrf_ok(csrf_token, signed_in=False):
        return web.forbidden()

    def sign_up(ctx: Context) -> str:
        create_user(ctx.session, email=email, name=name, password=password, time_zone=time_zone)
        return _new_session(web, ctx, email=email, password=password)

    try:
        token = web.write(sign_up, signed_in=False)
    except MilepostError as error:
        return web.render(
            "signup.html",
            status=error.status,
            pre_session=True,
            values={"email": email, "name": name, "time_zone": time_zone},
            errors=form_errors(error, ("email", "name", "password", "time_zone")),
            min_password=MIN_PASSWORD_LENGTH,
            zones=time_zones(),
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
            lambda ctx: _new_session(web, ctx, email=email, password=password),
            signed_in=False,
        )
    except MilepostError as error:
        return web.render(
            "login.html",
            status=error.status,
            pre_session=True,
            values={"email": email},
            errors=form_errors(error, ()),
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
