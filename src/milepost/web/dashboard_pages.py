"""The dashboard: milestones by tab, totals, charts, the wallet and its deposit and payout forms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial

from fastapi import APIRouter
from fastapi.responses import Response
from markupsafe import Markup

from milepost.kit.context import Context
from milepost.kit.errors import MilepostError
from milepost.money import format_money
from milepost.web import charts
from milepost.web.common import form_errors
from milepost.web.forms import wallet as wallet_forms
from milepost.web.posts import Post, Posted, register
from milepost.web.session import SignedOut, Web, WebDep
from milepost.web.views import dashboard as views
from milepost.web.views.settings import BankAccount, bank_accounts

router = APIRouter(include_in_schema=False)

WALLET_FIELDS = ("amount", "currency", "provider", "destination_id")


@dataclass(frozen=True)
class ChartView:
    """A chart's figures (for the table) and its SVG drawing of them."""

    chart: views.Chart
    svg: Markup
    svg_id: str


def _week_label(week: date) -> str:
    return f"{week.day} {week:%b}"


def _chart_view(chart: views.Chart, *, kind: str, title: str) -> ChartView:
    totals = ", ".join(
        f"{series.label.lower()} {format_money(sum(series.values), chart.currency)}"
        for series in chart.series
    )
    first, last = chart.weeks[0], chart.weeks[-1]
    chart_id = f"{kind}-{chart.currency}"
    svg = charts.bar_chart(
        chart_id=chart_id,
        title=f"{title}, {chart.currency}",
        description=(
            f"Bars per week, weeks starting {first.isoformat()} to {last.isoformat()}. "
            f"In all: {totals}. The table below lists every week."
        ),
        categories=[_week_label(week) for week in chart.weeks],
        series=[charts.BarSeries(series.label, series.values) for series in chart.series],
        format_value=lambda value: format_money(value, chart.currency),
    )
    return ChartView(chart, svg, chart_id)


def _dashboard(
    web: WebDep,
    tab: str | None,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    def load(ctx: Context) -> tuple[views.Dashboard, list[BankAccount]]:
        return views.dashboard(ctx, tab=tab), bank_accounts(ctx)

    try:
        dashboard, accounts = web.read(load)
    except SignedOut:
        return web.to_login()
    except MilepostError as error:
        return web.render("error.html", status=error.status, title="Error", message=error.message)
    return web.render(
        "dashboard.html",
        status=status,
        dashboard=dashboard,
        history=[
            _chart_view(chart, kind="history", title="Money over time")
            for chart in dashboard.history
        ],
        forecast=[
            _chart_view(chart, kind="forecast", title="Cash-flow forecast")
            for chart in dashboard.forecast.charts
        ],
        errors=errors or {},
        values=values or {"currency": "USD"},
        # Only the providers this installation enables (MILEPOST_PROVIDERS), the default first.
        providers=web.settings.enabled_providers,
        bank_accounts=accounts,
    )


@router.get("/")
def dashboard_page(web: WebDep, tab: str | None = None) -> Response:
    return _dashboard(web, tab)


def _wallet_refused(web: Web, posted: Posted, error: MilepostError, *, prefix: str) -> Response:
    """A refused deposit or payout: the dashboard again with the message by the field. The payout
    form's fields are named apart from the deposit form's (``payout-amount``, ...)."""
    return _dashboard(
        web,
        None,
        status=error.status,
        errors={
            prefix + field: message for field, message in form_errors(error, posted.places).items()
        },
        values={prefix + field: value for field, value in posted.typed.items()},
    )


register(
    router,
    (
        Post(
            "/deposits",
            wallet_forms.deposit,
            "/",
            partial(_wallet_refused, prefix=""),
            fields=("amount", "currency", "provider"),
            places=WALLET_FIELDS,
        ),
        Post(
            "/payouts",
            wallet_forms.payout,
            "/",
            partial(_wallet_refused, prefix="payout-"),
            fields=WALLET_FIELDS,
        ),
    ),
)
