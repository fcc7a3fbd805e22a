"""Web tests: a live server on loopback (as for the API tests) and headless Chromium driven by Playwright.

The browser is Debian's chromium, never a download: when /usr/bin/chromium is missing the set-up installs it
with apt-get (as root); if it still cannot be had, the browser tests are skipped with the reason, except
in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import PASSWORD as PASSWORD  # used by the page tests
from tests.api.conftest import base_url, settings, sign_up, standin  # noqa: F401 (fixtures)
from tests.system import require_program

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The pages run on SQLite only: they add no storage code of their own (every query they make is a
    service's or a read model's, run on both backends by the service and API tests), and a browser test
    costs seconds, which CI's 15 minutes cannot pay twice. test_story.py runs the whole story on both."""
    return str(request.param)


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = require_program(CHROMIUM, "chromium", "the web tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, headless=True)
        yield chromium
        chromium.close()


class Shots:
    """Saves a full-page screenshot of each page a test visits, under test-artifacts/web/<test>/."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def __call__(self, page: Any, name: str) -> None:
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}.png"), full_page=True)


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Shots:
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(
        folder, ignore_errors=True
    )  # only this run's screenshots, not an earlier run's too
    return Shots(folder)


@pytest.fixture
def new_page(browser: Any, base_url: str) -> Iterator[Any]:  # noqa: F811
    """new_page() -> a page in a browser context of its own (its own cookies: one person each)."""
    contexts: list[Any] = []

    def make(width: int = 1024) -> Any:
        context = browser.new_context(base_url=base_url, viewport={"width": width, "height": 800})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def web_sign_up(base: str, email: str, name: str = "Web user") -> httpx.Client:
    """Sign up through the web form with httpx; returns a client holding the session cookie."""
    http = httpx.Client(base_url=base, timeout=60)
    token = csrf_from(http.get("/signup").text)
    response = http.post(
        "/signup",
        data={"email": email, "name": name, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303, response.text
    assert "milepost_session" in http.cookies
    return http


def log_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def confirm(page: Any) -> str:
    """On a confirmation page: press its confirming button; returns what the page said would happen."""
    statement = str(page.locator("#statement").inner_text())
    page.locator("#confirm button[type=submit]").click()
    return statement


def confirmed_post(http: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    """A form that asks for confirmation, sent as a browser would: once, to be told what it will do,
    then again with the confirmation page's digest."""
    asked = http.post(path, data=data)
    assert asked.status_code == 200 and 'id="statement"' in asked.text, asked.text
    digest = re.search(r'name="confirmed" value="([^"]+)"', asked.text)
    assert digest, "no confirmation digest on the page"
    return http.post(path, data={**data, "confirmed": digest.group(1)})
