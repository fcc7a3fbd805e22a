"""Notifications, profiles with reputation, settings and time zones, in a browser and over plain HTTP."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from milepost.audit.models import MilestoneEvent
from milepost.auth.models import ApiToken
from milepost.feedback.service import leave_feedback
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.milestones import service as milestones
from milepost.money import format_money
from milepost.notifications.service import notify, unread_count
from milepost.reputation.service import reputation
from milepost.users.models import User
from milepost.users.service import get_user_by_email
from tests.web.conftest import PASSWORD, Shots, csrf_from, log_in, web_sign_up
from tests.world import World

_emails = itertools.count(1)


def _email(name: str) -> str:
    return f"{name}{next(_emails)}@account.example.com"


def _user(db: Database, email: str) -> User:
    with db.read_only() as session:
        return get_user_by_email(session, email)


def _unread(db: Database, email: str) -> int:
    with db.read_only() as session:
        return unread_count(Context(session, get_user_by_email(session, email)))


@pytest.fixture
def zoned_page(browser: Any, base_url: str) -> Iterator[Any]:
    """zoned_page(zone) -> a page whose browser believes it is in ``zone`` (what Intl reports)."""
    contexts: list[Any] = []

    def make(zone: str) -> Any:
        context = browser.new_context(
            base_url=base_url, timezone_id=zone, viewport={"width": 1024, "height": 800}
        )
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _badge(page: Any) -> str | None:
    """The unread count the header shows, or None when it shows none."""
    badge = page.locator("#unread-count")
    if badge.count() == 0:
        return None
    match = re.search(r"\d+", badge.inner_text())
    return match.group(0) if match else None


# Notifications -----------------------------------------------------------------------------------------


def test_the_freelancer_is_notified_of_funding_and_marks_it_read(
    new_page: Any, shot: Shots, sign_up: Any, db: Database
) -> None:
    client_api = sign_up("client")
    freelancer_api = sign_up("freelancer")
    client_api.ok("POST", "/v1/deposits", {"amount": 500000, "currency": "USD"}, status=201)
    project = client_api.ok(
        "POST",
        "/v1/projects",
        {"title": "CRM", "currency": "USD", "freelancer_id": freelancer_api.id},
        status=201,
    )
    ids = [
        client_api.ok(
            "POST",
            f"/v1/projects/{project['id']}/milestones",
            {"title": title, "amount": amount, "acceptance_criteria": ["Works"]},
            status=201,
        )["id"]
        for title, amount in (("Contacts import", 250000), ("Reports", 100000))
    ]
    # The freelancer has read the news of the milestones being created; funding is what is new.
    freelancer_api.ok("POST", "/v1/notifications/read-all")
    client_api.ok("POST", f"/v1/milestones/{ids[0]}/fund")

    page = new_page()
    log_in(page, freelancer_api.user["email"])
    assert _badge(page) == "1"
    page.get_by_role("link", name=re.compile("^Notifications")).click()
    assert page.get_by_role("heading", name="Notifications", exact=True).is_visible()
    item = page.locator("#notifications li").first
    assert "“Contacts import” is funded: $2,500.00 in escrow" in item.inner_text()
    # Unread is said in words (to screen readers too), not only by colour.
    assert item.locator(".unread-flag").text_content() == "New (unread)"
    shot(page, "notifications-unread")
    item.get_by_role("link", name="“Contacts import” is funded: $2,500.00 in escrow").click()
    assert page.url.endswith(f"/milestones/{ids[0]}")
    assert page.get_by_role("heading", name="Contacts import").is_visible()
    # Following it marked it read.
    assert _badge(page) is None
    assert _unread(db, freelancer_api.user["email"]) == 0
    shot(page, "milestone-from-notification")

    # A second one, then each way of marking read.
    client_api.ok("POST", f"/v1/milestones/{ids[1]}/fund")
    page.goto("/notifications")
    assert _badge(page) == "1"
    mark_reports = page.get_by_role("button", name=re.compile("^Mark as read.*Reports"))
    mark_reports.click()
    assert _badge(page) is None
    assert _unread(db, freelancer_api.user["email"]) == 0
    for title in ("Training", "Testing"):  # two more: "created" news for the freelancer
        client_api.ok(
            "POST",
            f"/v1/projects/{project['id']}/milestones",
            {"title": title, "amount": 1000, "acceptance_criteria": ["Works"]},
            status=201,
        )
    page.goto("/notifications")
    assert _badge(page) == "2"
    assert page.locator("#notifications li.unread").count() == 2
    page.get_by_role("button", name="Mark all as read").click()
    assert _badge(page) is None
    assert page.locator("#unread-summary").inner_text() == "Nothing unread."
    assert page.locator("#notifications li.unread").count() == 0
    assert _unread(db, freelancer_api.user["email"]) == 0
    shot(page, "notifications-all-read")


def test_notifications_page_through_older_ones_and_stay_private(
    base_url: str, world: World, db: Database
) -> None:
    email = _email("reader")
    http = web_sign_up(base_url, email)
    reader = _user(db, email)
    for number in range(25):
        world.act(
            None, lambda ctx, n=number: notify(ctx, "generic", user_ids=[reader.id], data={"n": n})
        )
    newest = http.get("/notifications")
    assert newest.status_code == 200
    assert newest.text.count('class="card notification unread"') == 20
    older = re.search(r'href="(/notifications\?starting_after=[^"]+)"[^>]*>Older<', newest.text)
    assert older
    rest = http.get(older.group(1).replace("&amp;", "&"))
    assert rest.text.count('class="card notification unread"') == 5
    assert ">Older<" not in rest.text

    # Someone else's notification does not exist for this reader, and stays unread.
    other_email = _email("other")
    other = web_sign_up(base_url, other_email)
    theirs = re.search(r'action="/notifications/([^"/]+)/read"', newest.text)
    assert theirs
    response = other.post(
        f"/notifications/{theirs.group(1)}/read",
        data={"csrf_token": csrf_from(other.get("/notifications").text)},
    )
    assert response.status_code == 404
    assert "Not found" in response.text
    assert other.get(f"/notifications/{theirs.group(1)}/open").status_code == 404
    # And a form without its token is refused, changing nothing.
    response = http.post("/notifications/read-all", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert _unread(db, email) == 25
    assert httpx.get(f"{base_url}/notifications").headers["location"] == "/login"


# Settings and time zones -------------------------------------------------------------------------------


def test_the_timeline_shows_times_in_the_zone_chosen_in_settings(
    zoned_page: Any, shot: Shots, world: World, db: Database
) -> None:
    client, _freelancer, milestone = world.funded(title="Logo")
    with db.read_only() as session:
        funded_at = session.scalar(
            select(MilestoneEvent.created_at).where(
                MilestoneEvent.milestone_id == milestone.id, MilestoneEvent.action == "funded"
            )
        )
    assert funded_at is not None

    page = zoned_page("Asia/Tokyo")
    log_in(page, client.email)
    page.goto(f"/milestones/{milestone.id}")
    utc = funded_at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")
    assert utc in page.locator(".timeline").inner_text()

    page.get_by_role("link", name="Settings").click()
    assert page.get_by_label("Show times in").input_value() == "UTC"
    page.get_by_role("button", name="Use this device's time zone").click()
    assert page.get_by_label("Show times in").input_value() == "Asia/Tokyo"
    shot(page, "settings-device-zone")
    page.get_by_role("button", name="Save time zone").click()
    assert page.locator("#saved").inner_text() == "Saved. Times now show in Asia/Tokyo."
    assert _user(db, client.email).time_zone == "Asia/Tokyo"

    page.goto(f"/milestones/{milestone.id}")
    tokyo = funded_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M JST")
    timeline = page.locator(".timeline").inner_text()
    assert tokyo in timeline
    assert utc not in timeline
    shot(page, "timeline-in-tokyo")


def test_a_refused_time_zone_shows_its_message_and_changes_nothing(
    base_url: str, db: Database
) -> None:
    email = _email("zone")
    http = web_sign_up(base_url, email)
    token = csrf_from(http.get("/settings").text)
    response = http.post("/settings", data={"time_zone": "Mars/Olympus_Mons", "csrf_token": token})
    assert response.status_code == 422
    assert re.search(
        r'<p class="error" id="time_zone-error" role="alert">Time zone must be a name from the tz '
        r"database, such as Europe/Berlin or UTC.</p>",
        response.text,
    )
    assert 'aria-invalid="true"' in response.text
    assert '<option value="UTC" selected>' in response.text  # still the stored zone
    assert _user(db, email).time_zone == "UTC"
    # Without the form's token: refused, nothing changed.
    response = http.post("/settings", data={"time_zone": "Europe/Berlin"})
    assert response.status_code == 403
    assert _user(db, email).time_zone == "UTC"
    # A good one goes through.
    response = http.post("/settings", data={"time_zone": "Europe/Berlin", "csrf_token": token})
    assert response.status_code == 303
    assert _user(db, email).time_zone == "Europe/Berlin"


def test_sign_up_takes_the_device_time_zone(
    zoned_page: Any, shot: Shots, base_url: str, db: Database
) -> None:
    page = zoned_page("America/New_York")
    page.goto("/signup")
    assert page.get_by_label("Time zone").input_value() == "America/New_York"  # filled by signup.js
    email = _email("newyork")
    page.get_by_label("Name").fill("Nia")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "signup-zone")
    page.get_by_role("button", name="Sign up").click()
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert _user(db, email).time_zone == "America/New_York"


def test_sign_up_without_javascript_chooses_the_zone_in_the_list(
    base_url: str, db: Database
) -> None:
    http = httpx.Client(base_url=base_url, timeout=60)
    form = http.get("/signup").text
    assert '<option value="UTC" selected>' in form
    email = _email("berlin")
    fields = {"email": email, "name": "B", "password": PASSWORD, "csrf_token": csrf_from(form)}
    refused = http.post("/signup", data={**fields, "time_zone": "Europe/Nowhere"})
    assert refused.status_code == 422
    assert 'id="time_zone-error"' in refused.text
    with db.read_only() as session:
        assert session.scalar(select(User.id).where(User.email == email)) is None
    response = http.post("/signup", data={**fields, "time_zone": "Europe/Berlin"})
    assert response.status_code == 303
    assert _user(db, email).time_zone == "Europe/Berlin"


# Profiles ----------------------------------------------------------------------------------------------


def test_a_profile_shows_the_reputation_the_service_computes(
    new_page: Any, shot: Shots, world: World, db: Database
) -> None:
    client, freelancer, milestone = world.submitted(amount=120_000, title="Landing page")
    world.act(client, milestones.approve, milestone.id)
    world.act(client, leave_feedback, milestone.id, rating=4, comment="Clean work, a day late.")
    world.act(freelancer, leave_feedback, milestone.id, rating=5, comment="Paid at once.")
    viewer = world.user("visitor")
    with db.read_only() as session:
        ctx = Context(session, session.get(User, viewer.id))
        of_freelancer = reputation(ctx, freelancer.id)
        of_client = reputation(ctx, client.id)
    assert of_freelancer.total_earned == {
        "USD": 108_000
    }  # less the 10% fee: a figure worth showing

    page = new_page(width=375)
    log_in(page, viewer.email)
    page.goto(f"/users/{freelancer.id}")
    assert page.get_by_role("heading", name=freelancer.name, exact=True).is_visible()
    assert "Member since" in page.content()
    assert (
        page.locator("#rating")
        .inner_text()
        .startswith(f"{of_freelancer.rating_average} out of 5 from 1 rating")
    )
    assert page.locator("#completion").inner_text().startswith("100% (1 of 1 milestones)")
    assert page.locator("#earned").inner_text().startswith(format_money(108_000, "USD"))
    assert page.locator("#paid").inner_text().startswith("Nothing yet")
    assert page.locator("#disputes").inner_text().startswith("0 opened, 0 lost")
    feedback = page.locator("#feedback").inner_text()
    assert "4 out of 5" in feedback and "Clean work, a day late." in feedback
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "freelancer-profile-phone")

    page.goto(f"/users/{client.id}")
    rate = of_client.on_time_payment.rate
    assert rate is not None
    assert (
        page.locator("#on-time")
        .inner_text()
        .startswith(
            f"{rate * 100:g}% ({of_client.on_time_payment.numerator} of "
            f"{of_client.on_time_payment.denominator} milestones)"
        )
    )
    assert page.locator("#paid").inner_text().startswith(format_money(120_000, "USD"))
    assert "Paid at once." in page.locator("#feedback").inner_text()
    shot(page, "client-profile-phone")


def test_unknown_profiles_are_not_found_and_profiles_need_a_session(
    base_url: str, world: World
) -> None:
    someone = world.user("someone")
    http = web_sign_up(base_url, _email("looker"))
    response = http.get("/users/usr_doesnotexist")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text
    assert http.get(f"/users/{someone.id}").status_code == 200
    anonymous = httpx.get(f"{base_url}/users/{someone.id}")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"


def test_account_pages_fit_a_phone(new_page: Any, shot: Shots, base_url: str) -> None:
    email = _email("phone")
    web_sign_up(base_url, email).close()
    page = new_page(width=375)
    log_in(page, email)
    for path, name in (("/notifications", "notifications"), ("/settings", "settings")):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
        shot(page, f"{name}-phone")


# Sessions and tokens -------------------------------------------------------------------------------------


def test_settings_list_sessions_and_tokens_and_revoke_one(base_url: str, db: Database) -> None:
    email = _email("tokens")
    http = web_sign_up(base_url, email)
    # The session cookie lives no longer than the session: 12 hours by default.
    second = httpx.Client(base_url=base_url, timeout=60)
    login_form = csrf_from(second.get("/login").text)
    logged_in = second.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": login_form}
    )
    cookie = logged_in.headers["set-cookie"]
    assert "milepost_session=" in cookie and "Max-Age=43200" in cookie, cookie
    issued = httpx.post(
        f"{base_url}/v1/tokens", json={"email": email, "password": PASSWORD, "label": "Laptop CLI"}
    ).json()
    api_token = issued["token"]

    page = http.get("/settings")
    assert page.status_code == 200
    html = page.text
    assert html.count("Browser session") == 2 and "(this browser)" in html
    assert "API token: Laptop CLI" in html
    assert api_token not in html
    assert f'action="/settings/tokens/{issued["id"]}/revoke"' in html

    form_token = csrf_from(html)
    revoke = f"/settings/tokens/{issued['id']}/revoke"
    # Without the form's token: refused, still working.
    assert http.post(revoke, data={}).status_code == 403
    assert httpx.get(
        f"{base_url}/v1/me", headers={"Authorization": f"Bearer {api_token}"}
    ).is_success
    done = http.post(revoke, data={"csrf_token": form_token})
    assert (done.status_code, done.headers["location"]) == (303, "/settings?revoked=1")
    refused = httpx.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {api_token}"})
    assert refused.status_code == 401
    after = http.get("/settings?revoked=1").text
    assert "Revoked: it no longer works." in after and "Laptop CLI" not in after
    # Someone else's session cannot be revoked from here: the 404 page, and it keeps working.
    stranger_email = _email("stranger")
    stranger = web_sign_up(base_url, stranger_email)
    with db.read_only() as session:
        stranger_session = session.scalars(
            select(ApiToken.id).where(ApiToken.user_id == _user(db, stranger_email).id)
        ).one()
    missing = http.post(
        f"/settings/tokens/{stranger_session}/revoke", data={"csrf_token": form_token}
    )
    assert missing.status_code == 404
    assert stranger.get("/settings").status_code == 200
    # Revoking this browser's own session signs it out.
    own = re.search(
        r'action="(/settings/tokens/tok_[^"]+/revoke)"[^<]*<input[^>]*>\s*<button[^>]*>Sign out here',
        after,
    )
    assert own, after
    http.post(own.group(1), data={"csrf_token": csrf_from(after)})
    assert http.get("/settings").headers["location"] == "/login"
