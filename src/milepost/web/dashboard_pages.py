"""The dashboard: milestones by tab, totals, wallet and its forms."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.errors import MilepostError
from milepost.milestones import views
from milepost.money import parse_amount
from milepost.users.models import User
from milepost.wallets import service as wallets
from milepost.web.common import FormText, form_errors
from milepost.web.session import SignedOut, WebDep

router = APIRouter(include_in_schema=False)


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
            errors=form_errors(error, ("amount", "currency")),
            values={"amount": amount, "currency": currency},
        )
    return web.redirect("/")
