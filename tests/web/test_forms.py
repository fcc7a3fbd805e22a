"""Every form of the web app, as its router declares it: each needs its CSRF token, and none takes a
control character, whichever handler or table row it comes from."""

from __future__ import annotations

import itertools
import re

from fastapi.routing import APIRoute

from milepost.web.pages import AREAS
from tests.web.conftest import csrf_from, web_sign_up

_emails = itertools.count(1)


def _form_paths() -> list[str]:
    """The path of every form the pages take, its path parameters filled in with an id of no row."""
    return sorted(
        re.sub(r"\{\w+\}", "x_1", route.path)
        for area in AREAS
        for route in area.router.routes
        if isinstance(route, APIRoute) and "POST" in (route.methods or ())
    )


def test_the_forms_are_all_there() -> None:
    paths = _form_paths()
    assert len(paths) == len(set(paths)) >= 39
    for path in ("/milestones/x_1/fund", "/projects/x_1/proposals", "/staff/payouts/x_1/fail"):
        assert path in paths


def test_every_form_without_its_csrf_token_is_refused(base_url: str) -> None:
    http = web_sign_up(base_url, f"forms{next(_emails)}@example.com")
    for path in _form_paths():
        response = http.post(path, data={"reason": "x", "amount": "1"})
        assert response.status_code == 403, path
        assert "Nothing was changed" in response.text, path


def test_every_form_with_a_control_character_is_a_422_page(base_url: str) -> None:
    http = web_sign_up(base_url, f"forms{next(_emails)}@example.com")
    token = csrf_from(http.get("/").text)
    for path in _form_paths():
        response = http.post(path, data={"note": "a\u0000b", "csrf_token": token})
        assert response.status_code == 422, path
        assert response.headers["content-type"].startswith("text/html"), path


def test_a_form_out_of_date_says_why_and_keeps_what_was_typed(base_url: str) -> None:
    """A form opened before the session changed (log-in again, a restart with a new secret key) is
    refused with the reasons, a way back to its page, and what was typed to copy."""
    http = web_sign_up(base_url, f"forms{next(_emails)}@example.com")
    stale = csrf_from(http.get("/settings").text)
    http.post("/logout", data={"csrf_token": stale})
    again = web_sign_up(base_url, f"forms{next(_emails)}@example.com")
    refused = again.post(
        "/projects/new",
        data={"title": "A shop", "description": "Two pages, one cart.", "csrf_token": stale},
        headers={"Referer": f"{base_url}/projects/new"},
    )
    assert refused.status_code == 403
    page = refused.text
    assert "Nothing was changed" in page and "MILEPOST_SECRET_KEY" in page
    assert 'href="/projects/new" id="back"' in page
    assert "Two pages, one cart." in page and "A shop" in page
    # Another site's page is not linked to.
    refused = again.post(
        "/deposits",
        data={"amount": "5,000", "currency": "USD", "csrf_token": stale},
        headers={"Referer": "https://elsewhere.example/phish"},
    )
    assert refused.status_code == 403 and "5,000" in refused.text
    assert 'href="/" id="back"' in refused.text
