"""The web app in a real browser (headless Chromium), and its sessions and CSRF over plain HTTP."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx

from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.settings import Settings
from milepost.users.service import get_user_by_email
from milepost.wallets.service import balances
from tests.api.conftest import LiveServer
from tests.web.conftest import (
    PASSWORD,
    Shots,
    confirm,
    confirmed_post,
    csrf_from,
    log_in,
    web_sign_up,
)

_emails = itertools.count(1)


def _email(name: str) -> str:
    return f"{name}{next(_emails)}@example.com"


def _available(db: Database, email: str) -> dict[str, int]:
    with db.read_only() as session:
        user = get_user_by_email(session, email)
        return {b.currency: b.available for b in balances(Context(session, user), user.id)}


def test_sign_up_deposit_log_out_and_in_again(new_page: Any, shot: Shots, db: Database) -> None:
    page = new_page()
    page.goto("/")
    assert page.url.endswith("/login")  # not signed in: the dashboard sends you to log in
    shot(page, "login")
    page.get_by_role("link", name="Create an account").click()
    email = _email("ada")
    page.get_by_label("Name").fill("Ada")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    # The password rule is enforced by the service; its message sits next to the field.
    assert page.locator("#password-error").inner_text() == (
        "Password must be at least 10 characters."
    )
    assert page.get_by_label("E-mail").input_value() == email  # what was typed is kept
    shot(page, "signup-refused")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    shot(page, "dashboard-empty")

    page.locator("#deposit-form").get_by_label("Amount").fill("1,500.50")
    page.locator("#deposit-form").get_by_label("Currency").fill("USD")
    page.get_by_role("button", name="Deposit").click()
    assert page.locator("#balances .available").inner_text() == "$1,500.50"
    assert _available(db, email) == {"USD": 150050}
    shot(page, "dashboard-deposited")

    # A refused deposit shows the service's message next to the field and changes nothing.
    page.locator("#deposit-form").get_by_label("Amount").fill("1.005")
    page.get_by_role("button", name="Deposit").click()
    assert "at most 2 decimal places" in page.locator("#amount-error").inner_text()
    assert _available(db, email) == {"USD": 150050}
    shot(page, "deposit-refused")

    page.get_by_role("button", name="Log out").click()
    assert page.url.endswith("/login")
    page.goto("/")
    assert page.url.endswith("/login")

    log_in(page, email, "wrong password!")
    assert "Wrong e-mail or password." in page.locator("#form-error").inner_text()
    shot(page, "login-refused")
    log_in(page, email)
    assert page.locator("#balances .available").inner_text() == "$1,500.50"


def test_the_dashboard_is_usable_at_phone_width(new_page: Any, shot: Shots, base_url: str) -> None:
    page = new_page(width=375)
    email = _email("phone")
    web_sign_up(base_url, email).close()
    log_in(page, email)
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "dashboard-phone")


def test_the_milestone_from_funding_to_release_in_two_browsers(
    new_page: Any, shot: Shots, sign_up: Any
) -> None:
    client_api = sign_up("client")
    freelancer_api = sign_up("freelancer")
    outsider_api = sign_up("outsider")
    client_api.ok("POST", "/v1/deposits", {"amount": 500000, "currency": "USD"}, status=201)
    project = client_api.ok(
        "POST",
        "/v1/projects",
        {"title": "CRM", "currency": "USD", "freelancer_id": freelancer_api.id},
        status=201,
    )
    milestone = client_api.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {
            "title": "Contacts import",
            "amount": 250000,
            "acceptance_criteria": ["Imports a CSV of 10,000 contacts"],
        },
        status=201,
    )
    path = f"/milestones/{milestone['id']}"

    client = new_page()
    log_in(client, client_api.user["email"])
    client.goto(path)
    assert client.locator("#status").inner_text() == "draft"
    # The client may fund; nobody offers them a delivery form.
    assert client.get_by_role("button", name="Submit delivery").count() == 0
    shot(client, "client-draft")
    client.get_by_role("button", name="Fund $2,500.00 into escrow").click()
    assert client.locator("#status").inner_text() == "funded"
    assert client.locator("#escrow").inner_text() == "$2,500.00"

    freelancer = new_page()
    log_in(freelancer, freelancer_api.user["email"])
    freelancer.goto("/?tab=incoming")
    shot(freelancer, "freelancer-dashboard")
    freelancer.get_by_role("link", name="Contacts import").click()
    assert freelancer.get_by_role("button", name=re.compile(r"^Fund ")).count() == 0
    freelancer.get_by_label("Delivery note").fill("Import done; see the staging site.")
    freelancer.get_by_role("button", name="Submit delivery").click()
    assert freelancer.locator("#status").inner_text() == "submitted"
    shot(freelancer, "freelancer-submitted")

    client.goto("/")
    totals = client.locator("#totals").inner_text()
    assert "$2,500.00" in totals  # in escrow, and awaiting review
    shot(client, "client-dashboard-awaiting-review")
    client.goto(path)
    # A change request needs a reason: refused, with the message by the form, and nothing changed.
    client.get_by_role("button", name="Request changes").click()
    assert client.locator("#request_changes-error").is_visible()
    assert client.locator("#status").inner_text() == "submitted"
    shot(client, "client-change-request-refused")
    client.get_by_label("What needs to change").fill("Duplicates are imported twice.")
    client.get_by_role("button", name="Request changes").click()
    assert client.locator("#status").inner_text() == "changes requested"
    # The timeline says it in words, not in the states' names.
    timeline = client.locator(".timeline").inner_text()
    assert "(submitted → changes requested)" in timeline and "changes_requested" not in timeline
    # The client may not approve what is not submitted: the page does not offer it.
    assert client.get_by_role("button", name="Approve and release").count() == 0
    # A partial release while the freelancer works on the changes.
    client.get_by_label("Release part of the escrow (USD)").fill("1000")
    client.get_by_role("button", name="Release this amount").click()
    # A pause first, saying exactly what leaves the escrow and who receives what.
    assert confirm(client) == (
        "$1,000.00 leaves the escrow: freelancer receives $900.00 and the platform fee is $100.00.\n"
        "$1,500.00 stays in escrow, for you to release or for the review to settle.\n"
        "This cannot be undone."
    )
    assert client.locator("#escrow").inner_text() == "$1,500.00"
    client.get_by_label("Release part of the escrow (USD)").fill("2000")
    client.get_by_role("button", name="Release this amount").click()
    # More than the escrow holds: refused before any confirmation.
    assert client.locator("#release-error").is_visible()
    assert client.locator("#escrow").inner_text() == "$1,500.00"
    shot(client, "client-partial-release")

    freelancer.reload()
    # What the client asked comes first, with the delivery form under it, above terms and actions.
    changes = freelancer.locator("#changes-requested")
    assert changes.locator("#changes-reason").inner_text() == "Duplicates are imported twice."
    assert changes.get_by_role("button", name="Submit delivery").is_visible()
    top = changes.bounding_box()
    terms = freelancer.locator("#terms-heading").bounding_box()
    assert top is not None and terms is not None and top["y"] < terms["y"]
    shot(freelancer, "freelancer-changes-requested")
    freelancer.get_by_label("Delivery note").fill("Duplicates fixed.")
    freelancer.get_by_role("button", name="Submit delivery").click()
    assert freelancer.locator("#status").inner_text() == "submitted"

    client.reload()
    client.get_by_role("button", name="Approve and release").click()
    assert "$1,350.00" in confirm(client)  # what the freelancer receives of the $1,500.00 left
    assert client.locator("#status").inner_text() == "released"
    assert client.locator("#escrow").inner_text() == "$0.00"
    shot(client, "client-released")

    freelancer.goto("/?tab=incoming")
    assert "$2,500.00" in freelancer.locator("#totals").inner_text()  # released this month
    # The freelancer was paid less the 10% fee.
    assert freelancer.locator("#balances .available").inner_text() == "$2,250.00"

    outsider = new_page()
    log_in(outsider, outsider_api.user["email"])
    response = outsider.goto(path)
    assert response is not None and response.status == 404
    assert outsider.get_by_role("heading", name="Not found").is_visible()
    assert "Contacts import" not in outsider.content()
    shot(outsider, "outsider-404")


def test_log_out_revokes_the_session(base_url: str) -> None:
    http = web_sign_up(base_url, _email("bob"))
    session = http.cookies["milepost_session"]
    assert http.get("/").status_code == 200
    token = csrf_from(http.get("/").text)
    response = http.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert "milepost_session" not in http.cookies
    # The old cookie, sent again, no longer works: the token behind it is revoked.
    replay = httpx.get(f"{base_url}/", cookies={"milepost_session": session})
    assert replay.status_code == 303 and replay.headers["location"] == "/login"
    api = httpx.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {session}"})
    assert api.status_code == 401


def test_logging_in_again_revokes_the_session_it_replaces(base_url: str) -> None:
    email = _email("carol")
    http = web_sign_up(base_url, email)
    first = http.cookies["milepost_session"]
    token = csrf_from(http.get("/login").text)
    response = http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303
    second = http.cookies["milepost_session"]
    assert second != first
    assert http.get("/").status_code == 200
    for session, status in ((first, 401), (second, 200)):
        me = httpx.get(
            f"{base_url}/v1/me", headers={"Authorization": f"Bearer {session}"}, timeout=60
        )
        assert me.status_code == status


def test_the_session_cookie_is_http_only_and_same_site(base_url: str) -> None:
    http = httpx.Client(base_url=base_url, timeout=60)
    web_sign_up(base_url, email := _email("carol")).close()
    token = csrf_from(http.get("/login").text)
    response = http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303
    cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith("milepost_session=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes  # plain http on loopback; https gets Secure


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    base_url: str, db: Database
) -> None:
    email = _email("dave")
    http = web_sign_up(base_url, email)
    good = csrf_from(http.get("/").text)
    assert (
        http.post(
            "/deposits", data={"amount": "10", "currency": "USD", "csrf_token": good}
        ).status_code
        == 303
    )

    for data in (
        {"amount": "99", "currency": "USD"},
        {"amount": "99", "currency": "USD", "csrf_token": ""},
        # The right length, one character off.
        {
            "amount": "99",
            "currency": "USD",
            "csrf_token": good[:-1] + ("1" if good[-1] == "0" else "0"),
        },
    ):
        response = http.post("/deposits", data=data)
        assert response.status_code == 403, data
        assert "Nothing was changed" in response.text
    assert _available(db, email) == {"USD": 1000}

    # Log-in and sign-up forms need the pre-session token too.
    anonymous = httpx.Client(base_url=base_url, timeout=60)
    response = anonymous.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 403
    response = anonymous.post(
        "/signup", data={"email": _email("eve"), "name": "Eve", "password": PASSWORD}
    )
    assert response.status_code == 403
    # A token made for one browser does not work in another.
    other = httpx.Client(base_url=base_url, timeout=60)
    other.get("/login")
    response = other.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": good})
    assert response.status_code == 403


def test_over_https_the_session_cookie_is_secure(db: Database, settings: Settings) -> None:
    # Behind a TLS-terminating proxy on loopback, trusted to say the scheme (X-Forwarded-Proto).
    trusting = settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    with LiveServer(db, trusting) as base_url:
        _over_https_the_session_cookie_is_secure(base_url)


def _over_https_the_session_cookie_is_secure(base_url: str) -> None:
    http = httpx.Client(base_url=base_url, timeout=60, headers={"X-Forwarded-Proto": "https"})
    form = http.get("/signup")
    pre_session = form.headers["set-cookie"]
    assert "secure" in {part.strip().lower() for part in pre_session.split(";")}
    # The client talks plain http to the "proxy", so it would not send a Secure cookie back by itself.
    response = http.post(
        "/signup",
        data={
            "email": _email("tls"),
            "name": "T",
            "password": PASSWORD,
            "csrf_token": csrf_from(form.text),
        },
        headers={"Cookie": pre_session.split(";")[0]},
    )
    assert response.status_code == 303
    cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith("milepost_session=")
    )
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_pages_are_not_cached_or_framed_and_unknown_pages_are_html(base_url: str) -> None:
    http = web_sign_up(base_url, _email("frank"))
    page = http.get("/")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    missing = http.get("/no-such-page", headers={"Accept": "text/html"})
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    # The API keeps its JSON errors.
    api = http.get("/v1/no-such-endpoint", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["error"]["type"] == "not_found"


def test_every_page_names_an_icon_that_is_there(base_url: str) -> None:
    """No page sends the browser looking for a /favicon.ico that is not there."""
    http = web_sign_up(base_url, _email("grace"))
    for path in ("/", "/login"):
        assert '<link rel="icon" href="/static/favicon.svg"' in http.get(path).text
    icon = http.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")
    conventional = http.get("/favicon.ico", follow_redirects=False)
    assert (conventional.status_code, conventional.headers["location"]) == (
        301,
        "/static/favicon.svg",
    )


def test_an_action_the_page_does_not_offer_is_refused_by_the_service(
    base_url: str, sign_up: Any, db: Database
) -> None:
    client_api = sign_up("client")
    freelancer_email = _email("freelancer")
    freelancer = web_sign_up(base_url, freelancer_email)
    # The API takes bearer tokens only: a session cookie is no way in (so no CSRF there).
    assert freelancer.get("/v1/me").status_code == 401
    client_api.ok("POST", "/v1/deposits", {"amount": 100000, "currency": "USD"}, status=201)
    with db.read_only() as session:
        freelancer_user_id = get_user_by_email(session, freelancer_email).id
    project = client_api.ok(
        "POST",
        "/v1/projects",
        {"title": "CRM", "currency": "USD", "freelancer_id": freelancer_user_id},
        status=201,
    )
    milestone = client_api.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {"title": "Setup", "amount": 50000, "acceptance_criteria": ["Runs"]},
        status=201,
    )
    path = f"/milestones/{milestone['id']}"
    page = freelancer.get(path)
    assert "into escrow" not in page.text  # no fund form for the freelancer
    response = freelancer.post(f"{path}/fund", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 403
    assert "A freelancer may not fund a milestone." in response.text
    assert client_api.ok("GET", f"/v1/milestones/{milestone['id']}")["status"] == "draft"
    assert _available(db, client_api.user["email"]) == {"USD": 100000}


def test_the_login_rate_limit_applies_to_the_form(base_url: str) -> None:
    email = _email("mallory")
    web_sign_up(base_url, email).close()
    http = httpx.Client(base_url=base_url, timeout=60)
    token = csrf_from(http.get("/login").text)
    for _ in range(5):
        response = http.post(
            "/login", data={"email": email, "password": "not the password", "csrf_token": token}
        )
        assert response.status_code == 401
        assert "Wrong e-mail or password." in response.text
    response = http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.text
    assert "milepost_session" not in http.cookies


def test_cancel_and_request_release_forms(base_url: str, sign_up: Any, db: Database) -> None:
    client_api = sign_up("client")
    freelancer_email = _email("freelancer")
    freelancer = web_sign_up(base_url, freelancer_email)
    with db.read_only() as session:
        freelancer_user_id = get_user_by_email(session, freelancer_email).id
    client_api.ok("POST", "/v1/deposits", {"amount": 100000, "currency": "USD"}, status=201)
    project = client_api.ok(
        "POST",
        "/v1/projects",
        {"title": "CRM", "currency": "USD", "freelancer_id": freelancer_user_id},
        status=201,
    )
    milestone = client_api.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {"title": "Setup", "amount": 40000, "acceptance_criteria": ["Runs"]},
        status=201,
    )
    milestone_id = milestone["id"]
    client_api.ok("POST", f"/v1/milestones/{milestone_id}/fund")
    path = f"/milestones/{milestone_id}"
    page = freelancer.get(path)
    # Nothing delivered yet: no nudge to release; cancelling (with a refund) is the freelancer's to do.
    assert "Ask the client to release" not in page.text
    assert "Cancel the milestone and refund $400.00 to the client" in page.text
    freelancer.post(f"{path}/submit", data={"note": "Done", "csrf_token": csrf_from(page.text)})
    page = freelancer.get(path)
    response = freelancer.post(f"{path}/request-release", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 303
    response = confirmed_post(
        freelancer,
        f"{path}/cancel",
        {"reason": "Cannot finish", "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 303
    page = freelancer.get(path)
    assert "release requested by the freelancer" in page.text
    assert 'id="status">cancelled<' in page.text
    assert '<h2 id="actions-heading">' not in page.text  # nothing left to do
    assert _available(db, client_api.user["email"]) == {"USD": 100000}
