"""The web app's pages. Each form's handler checks its CSRF token, runs one service call in one unit of
work as the session's user (see ``session.Web``), and redirects; a refused action re-renders its page with
the service's message by the form. The page modules declare their forms as tables (``posts.Post``); what
a page shows comes from its read model (``views``), what a form sends becomes service arguments in
``forms``. No rule is decided in a page or a template.

One module per area; this one gathers their routers."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from milepost.kit.http import refuse_control_characters
from milepost.web import (
    account_pages,
    auth_pages,
    dashboard_pages,
    milestone_pages,
    project_pages,
    staff_pages,
)

AREAS = (auth_pages, dashboard_pages, project_pages, milestone_pages, staff_pages, account_pages)


def include(app: FastAPI) -> None:
    """Put every area's pages in the app, each router included in the app itself (see ``api.include``).
    Form fields, path and query parameters with NUL or another control character: a 422 page, nothing
    done."""
    for area in AREAS:
        app.include_router(
            area.router,
            include_in_schema=False,
            dependencies=[Depends(refuse_control_characters)],
        )
