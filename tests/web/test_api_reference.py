"""The API reference (/docs: Swagger UI, /redoc: Redoc) in headless Chromium with no network: every request
to a host other than the test server is aborted, so whatever the pages need must come from Milepost."""

from __future__ import annotations

import glob
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.web.conftest import Shots

# Redoc's credit line always asks the vendor's CDN for a logo; the page's CSP refuses it before any request
# is made (and Redoc then shows the credit without it). The only console error either page may show.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def screen(shot: Shots, page: Any, name: str) -> None:
    """A screenshot of the window only: the full pages of 70 operations take longer than they are worth."""
    shot.count += 1
    shot.folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot.folder / f"{shot.count:02d}-{name}.png"))


class Offline:
    """Aborts every request that is not for the test server, and records them and the console's errors."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.own = urlsplit(base_url).netloc
        self.blocked: list[str] = []
        self.errors: list[str] = []
        page.route("**/*", self._route)
        page.on("console", lambda message: self._console(message))
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).netloc == self.own:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _console(self, message: Any) -> None:
        if message.type == "error" and REDOC_LOGO not in message.text:
            self.errors.append(message.text)


def test_swagger_ui_renders_offline_and_authorize_makes_try_it_out_work(
    new_page: Callable[..., Any], sign_up: Any, base_url: str, shot: Shots
) -> None:
    client = sign_up("docs")
    page = new_page(width=1280)
    offline = Offline(page, base_url)
    response = page.goto("/docs")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "http" not in csp  # this server's own assets only

    # The operations render, grouped by tag, under their operation ids.
    page.locator("#operations-milestones-fund").wait_for()
    assert page.locator(".opblock").count() >= 60
    assert page.locator("#operations-wallets-create_deposit").is_visible()
    # Padlocks on the operations that need a token, none on sign-up and sign-in.
    assert page.locator("#operations-users-me .authorization__btn").count() == 1
    assert page.locator("#operations-users-sign_up .authorization__btn").count() == 0
    assert page.locator("#operations-users-sign_in .authorization__btn").count() == 0
    screen(shot, page, "docs")

    # "Authorize" takes a bearer token from POST /v1/tokens.
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.get_by_label("auth-bearer-value").fill(str(client.token))
    dialog.get_by_role("button", name="Apply credentials").click()
    assert dialog.locator("button", has_text="Logout").is_visible()
    screen(shot, page, "authorized")
    dialog.get_by_role("button", name="Close", exact=True).click()

    # "Try it out" on an authenticated GET: the browser sends the token, the server answers 200.
    operation = page.locator("#operations-users-me")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    live = operation.locator(".live-responses-table .response")
    live.first.wait_for()
    assert live.locator(".response-col_status").first.inner_text().strip() == "200"
    body = operation.locator(".live-responses-table .response-col_description pre").first
    assert client.user["email"] in body.inner_text()
    curl = operation.locator(".curl-command").inner_text()
    assert f"Bearer {client.token}" in curl
    screen(shot, page, "tried")

    # A POST shows the Idempotency-Key header among its parameters.
    deposit = page.locator("#operations-wallets-create_deposit")
    deposit.locator(".opblock-summary").click()
    header = deposit.locator("tr[data-param-name='Idempotency-Key']")
    header.wait_for()  # the operation opens after the click: wait for it rather than look at once
    assert header.is_visible()

    assert offline.blocked == []
    assert offline.errors == []


def test_redoc_renders_offline(new_page: Callable[..., Any], base_url: str, shot: Shots) -> None:
    page = new_page(width=1280)
    offline = Offline(page, base_url)
    response = page.goto("/redoc")
    assert response is not None and response.status == 200
    assert "script-src 'self';" in response.headers["content-security-policy"]

    # The operations render, in the side menu and in the body, with their security and parameters.
    page.get_by_role("heading", name="Milepost").first.wait_for()
    menu = page.locator("[role=menuitem]")
    assert menu.count() >= 60
    fund = page.locator("[id='operation/fund']")
    fund.wait_for()
    assert "bearer" in fund.inner_text()
    deposit = page.locator("[id='operation/create_deposit']")
    assert "Idempotency-Key" in deposit.inner_text()
    screen(shot, page, "redoc")

    assert offline.blocked == []
    assert offline.errors == []


def test_the_reference_assets_ship_in_the_package() -> None:
    """Every vendored file is matched by pyproject.toml's package data (as setuptools globs it), so an
    installed Milepost serves /docs and /redoc as a checkout does."""
    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["milepost"]
    package = root / "src" / "milepost"
    shipped = {path for pattern in patterns for path in glob.glob(pattern, root_dir=package)}
    assets = package / "web" / "static"
    needed = [
        path.relative_to(package).as_posix()
        for path in (assets / "vendor").rglob("*")
        if path.is_file() and path.name != "README.md"
    ] + ["web/static/api-docs.js"]
    assert len(needed) >= 9
    assert sorted(set(needed) - shipped) == []
