"""Project pages in the browser (posting, proposing with the live sum, comparing and accepting, editing
terms, pausing) and over plain HTTP (the server's checks without JavaScript, 404s, CSRF)."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.projects.models import Project
from milepost.users.service import get_user_by_email
from milepost.wallets.service import balances
from tests.web.conftest import Shots, confirm, confirmed_post, csrf_from, log_in, web_sign_up

_emails = itertools.count(1)


def _email(name: str) -> str:
    return f"{name}{next(_emails)}-projects@example.com"


def _user_id(db: Database, email: str) -> str:
    with db.read_only() as session:
        return get_user_by_email(session, email).id


def _available(db: Database, email: str) -> dict[str, int]:
    with db.read_only() as session:
        user = get_user_by_email(session, email)
        return {b.currency: b.available for b in balances(Context(session, user), user.id)}


def _rows(*rows: tuple[str, str]) -> dict[str, list[str]]:
    """The proposal form's ten milestone rows as a browser without JavaScript sends them."""
    padded = [*rows, *[("", "")] * (10 - len(rows))]
    return {
        "milestone_title": [title for title, _ in padded],
        "milestone_amount": [amount for _, amount in padded],
        "milestone_due_date": [""] * 10,
        "milestone_criteria": [""] * 10,
    }


def test_post_propose_compare_accept_and_edit_terms(
    new_page: Any, shot: Shots, sign_up: Any
) -> None:
    client_api, ann_api, ben_api = sign_up("Clara"), sign_up("Ann"), sign_up("Ben")

    client = new_page()
    log_in(client, client_api.user["email"])
    client.get_by_role("link", name="Projects", exact=True).click()
    shot(client, "client-projects-empty")
    client.get_by_role("link", name="Post a project").click()
    client.get_by_label("Title").fill("Online shop")
    client.get_by_label("Description").fill("A shop for hand-made mugs.")
    client.get_by_label("Currency").fill("usd")
    client.get_by_label("Billing contact e-mail (optional)").fill("billing@example.com")
    shot(client, "client-new-project")
    client.get_by_role("button", name="Post the project").click()
    assert client.get_by_role("heading", name="Online shop", level=1).is_visible()
    assert client.locator("#project-status").inner_text() == "open for proposals"
    assert client.locator("#currency").inner_text() == "USD"
    project_path = urlpath(client.url)
    shot(client, "client-project-open")

    # Ann proposes at phone width; the live line follows the amounts as she types.
    ann = new_page(width=375)
    log_in(ann, ann_api.user["email"])
    ann.goto("/projects")
    ann.locator("#open-projects").get_by_role("link", name="Online shop").click()
    assert urlpath(ann.url) == project_path
    ann.get_by_label("Total amount (USD)").fill("1,500")
    ann.get_by_label("Cover letter").fill("I have built twelve shops.")
    for row, (title, amount, due) in enumerate(
        [("Design", "500", "2026-12-01"), ("Catalogue", "600.00", ""), ("Checkout", "", "")], 1
    ):
        ann.get_by_label(f"Title of milestone {row}", exact=True).fill(title)
        ann.get_by_label(f"Amount of milestone {row} (USD)").fill(amount)
        if due:
            ann.get_by_label(f"Due date of milestone {row}", exact=True).fill(due)
    ann.get_by_label("Acceptance criteria of milestone 3, one per line").fill(
        "Card payments work\nOrder e-mails are sent"
    )
    total_line = ann.locator("#proposal-sum")
    assert total_line.inner_text() == (
        "Milestones add up to $1,100.00 of $1,500.00: $400.00 short. "
        "You would receive $990.00 after the platform fee."
    )
    assert "mismatch" in (total_line.get_attribute("class") or "")
    assert total_line.get_attribute("aria-live") == "polite"
    shot(ann, "ann-proposal-mismatch")
    ann.get_by_label("Amount of milestone 3 (USD)").fill("400")
    assert total_line.inner_text() == (
        "Milestones add up to $1,500.00 of $1,500.00: they match. "
        "You would receive $1,350.00 after the platform fee."
    )
    assert ann.locator("#m2-net").inner_text() == "You would receive $360.00."
    assert "mismatch" not in (total_line.get_attribute("class") or "")
    # The live line reads amounts as the server does: a decimal comma is unreadable, never 40,000.
    ann.get_by_label("Amount of milestone 3 (USD)").fill("400,00")
    assert total_line.inner_text() == (
        "A milestone amount cannot be read: write amounts like 1,234.50."
    )
    ann.get_by_label("Amount of milestone 3 (USD)").fill("$400.00")
    assert total_line.inner_text().startswith(
        "Milestones add up to $1,500.00 of $1,500.00: they match."
    )
    assert ann.evaluate("document.documentElement.scrollWidth") <= 375
    shot(ann, "ann-proposal-match")
    ann.get_by_role("button", name="Send the proposal").click()
    assert urlpath(ann.url) == project_path
    assert ann.get_by_role("heading", name="Your proposals").is_visible()
    assert "$1,500.00" in ann.locator(".proposal").inner_text()
    assert "You would receive $1,350.00 after the platform fee." in (
        ann.locator(".proposal-net").inner_text()
    )
    shot(ann, "ann-proposal-sent")

    project_id = project_path.rsplit("/", 1)[1]
    ben_api.ok(
        "POST",
        f"/v1/projects/{project_id}/proposals",
        {
            "amount": 120000,
            "cover_letter": "One go.",
            "milestones": [{"title": "Whole shop", "amount": 120000, "due_date": "2027-01-15"}],
        },
        status=201,
    )

    # The client compares both, side by side, and accepts Ann's.
    client.reload()
    cards = client.locator(".proposal")
    assert cards.count() == 2
    anns, bens = cards.nth(0).inner_text(), cards.nth(1).inner_text()
    assert "Ann" in anns and "$1,500.00" in anns and "I have built twelve shops." in anns
    assert "Checkout: $400.00" in anns and "Card payments work" in anns
    assert "Design: $500.00 ($450.00 after the fee), due 2026-12-01" in anns
    assert "Ben" in bens and "$1,200.00" in bens and "due 2027-01-15" in bens
    shot(client, "client-compares-proposals")
    client.get_by_role("button", name="Accept this proposal from Ann").click()
    confirm(client)
    assert client.locator("#project-status").inner_text() == "awarded"
    assert client.locator("#freelancer").inner_text() == "Ann"
    assert client.get_by_role("button", name=re.compile("^Accept this proposal")).count() == 0
    table = client.locator("#milestone-table tbody tr")
    assert [table.nth(i).inner_text().split("\t")[:4] for i in range(3)] == [
        ["1", "Design", "$500.00", "draft"],
        ["2", "Catalogue", "$600.00", "draft"],
        ["3", "Checkout", "$400.00", "draft"],
    ]
    assert "$1,500.00" in client.locator("#milestone-totals").inner_text()
    shot(client, "client-awarded")

    # The client edits the terms of a draft; a refused edit keeps what was typed and changes nothing.
    client.get_by_role("link", name="Edit terms of Catalogue").click()
    assert client.get_by_label("Amount (USD)").input_value() == "600.00"
    client.get_by_label("Amount (USD)").fill("650")
    client.get_by_label("Review period (days)").fill("0")
    client.get_by_role("button", name="Save the terms").click()
    assert "between 1 and 90" in client.locator("#review_period_days-error").inner_text()
    assert client.get_by_label("Review period (days)").get_attribute("aria-invalid") == "true"
    assert client.get_by_label("Amount (USD)").input_value() == "650"
    shot(client, "client-terms-refused")
    assert client_api.ok("GET", f"/v1/projects/{project_id}")["status"] == "awarded"
    client.get_by_label("Review period (days)").fill("7")
    client.get_by_label("Required evidence, one per line").fill("Link to the catalogue")
    client.get_by_role("button", name="Save the terms").click()
    assert urlpath(client.url) == project_path
    assert "$650.00" in table.nth(1).inner_text()
    shot(client, "client-terms-saved")
    milestones = client_api.ok("GET", f"/v1/milestones?project_id={project_id}")["data"]
    catalogue = next(m for m in milestones if m["title"] == "Catalogue")
    assert (catalogue["amount"], catalogue["review_period_days"]) == (65000, 7)
    assert catalogue["required_evidence"] == ["Link to the catalogue"]

    # Ann, now the freelancer, may not edit terms: the page says why, and offers no form.
    ann.goto(f"/milestones/{catalogue['id']}/terms")
    assert "A freelancer may not edit a milestone." in ann.locator("#form-error").inner_text()
    assert ann.get_by_role("button", name="Save the terms").count() == 0
    shot(ann, "ann-terms-refused")


def urlpath(url: str) -> str:
    return httpx.URL(url).path


def test_pause_and_resume(new_page: Any, shot: Shots, sign_up: Any) -> None:
    client_api, freelancer_api = sign_up("Carl"), sign_up("Fay")
    project = client_api.ok(
        "POST",
        "/v1/projects",
        {"title": "App", "currency": "EUR", "freelancer_id": freelancer_api.id},
        status=201,
    )
    path = f"/projects/{project['id']}"

    freelancer = new_page()
    log_in(freelancer, freelancer_api.user["email"])
    freelancer.goto(path)
    # Nothing is overdue yet: the service would refuse, so the page does not offer it.
    assert freelancer.get_by_role("button", name="Pause work").count() == 0
    assert freelancer.locator("#paused").count() == 0
    shot(freelancer, "pause-not-offered")

    yesterday = (date.today() - timedelta(days=1)).isoformat()
    client_api.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {"title": "Login", "amount": 30000, "fund_by": yesterday},
        status=201,
    )
    freelancer.goto(path)
    freelancer.get_by_role("button", name="Pause work").click()
    assert freelancer.locator("#paused").inner_text().startswith("Work paused by the freelancer")
    assert client_api.ok("GET", f"/v1/projects/{project['id']}")["paused"] is True
    shot(freelancer, "paused")

    client = new_page()
    log_in(client, client_api.user["email"])
    client.goto(path)
    assert client.locator("#paused").is_visible()
    assert client.get_by_role("button", name="Resume work").count() == 0  # not the client's to do
    shot(client, "client-sees-paused")

    freelancer.get_by_role("button", name="Resume work").click()
    assert freelancer.locator("#paused").count() == 0
    assert freelancer.get_by_role("button", name="Pause work").is_visible()
    assert client_api.ok("GET", f"/v1/projects/{project['id']}")["paused"] is False
    shot(freelancer, "resumed")


def test_a_proposal_that_does_not_add_up_is_refused_without_javascript(
    base_url: str, sign_up: Any
) -> None:
    client_api = sign_up("client")
    project = client_api.ok(
        "POST", "/v1/projects", {"title": "Shop", "currency": "USD"}, status=201
    )
    path = f"/projects/{project['id']}"
    freelancer = web_sign_up(base_url, _email("fred"))
    page = freelancer.get(path)
    assert page.text.count('name="milestone_title"') == 10  # all rows are there without JavaScript
    assert 'data-exponent="2"' in page.text
    response = freelancer.post(
        f"{path}/proposals",
        data={
            "csrf_token": csrf_from(page.text),
            "amount": "1,000",
            "cover_letter": "Hello",
            **_rows(("Design", "600"), ("Build", "300")),
        },
    )
    assert response.status_code == 422
    assert (
        '<p class="error" id="milestones-error" role="alert">The milestones add up to $900.00, '
        "not to the proposal&#39;s amount of $1,000.00.</p>"
    ) in response.text
    assert 'value="1,000"' in response.text and 'value="Design"' in response.text  # kept
    assert client_api.ok("GET", f"/v1/projects/{project['id']}/proposals")["data"] == []

    # A bad amount in the fourth row (the third is blank) is reported at the fourth row.
    response = freelancer.post(
        f"{path}/proposals",
        data={
            "csrf_token": csrf_from(page.text),
            "amount": "900",
            **_rows(("Design", "600"), ("Build", "300"), ("", ""), ("Extra", "1.234")),
        },
    )
    assert response.status_code == 422
    assert 'aria-describedby="milestones[3].amount-error"' in response.text
    assert 'id="milestones[3].amount-error"' in response.text
    assert client_api.ok("GET", f"/v1/projects/{project['id']}/proposals")["data"] == []

    response = freelancer.post(
        f"{path}/proposals",
        data={
            "csrf_token": csrf_from(page.text),
            "amount": "900",
            **_rows(("Design", "600"), ("", ""), ("Build", "300")),
        },
    )
    assert response.status_code == 303 and response.headers["location"] == path
    [proposal] = client_api.ok("GET", f"/v1/projects/{project['id']}/proposals")["data"]
    assert [(m["title"], m["amount"]) for m in proposal["milestones"]] == [
        ("Design", 60000),
        ("Build", 30000),
    ]


def test_outsiders_get_404_and_forms_need_their_csrf_token(
    base_url: str, sign_up: Any, db: Database
) -> None:
    client_email, freelancer_email = _email("client"), _email("freelancer")
    client = web_sign_up(base_url, client_email)
    freelancer = web_sign_up(base_url, freelancer_email)
    outsider = web_sign_up(base_url, _email("outsider"))

    # Posting through the form.
    form = client.get("/projects/new")
    token = csrf_from(form.text)
    refused = client.post(
        "/projects/new", data={"title": "CRM", "currency": "usd ", "csrf_token": ""}
    )
    assert refused.status_code == 403 and "Nothing was changed" in refused.text
    assert "CRM" not in client.get("/projects").text
    response = client.post(
        "/projects/new", data={"title": "CRM", "currency": "EURO", "csrf_token": token}
    )
    assert response.status_code == 422
    assert 'id="currency-error"' in response.text and 'value="CRM"' in response.text
    response = client.post(
        "/projects/new", data={"title": "CRM", "currency": "usd ", "csrf_token": token}
    )
    assert response.status_code == 303
    path = response.headers["location"]
    project_id = path.rsplit("/", 1)[1]
    assert "CRM" in client.get("/projects").text

    # An open project can be seen by anyone (to propose); a proposal without the token is refused.
    page = outsider.get(path)
    assert page.status_code == 200 and "Send the proposal" in page.text
    response = outsider.post(f"{path}/proposals", data={"amount": "100", **_rows(("All", "100"))})
    assert response.status_code == 403
    page = freelancer.get(path)
    response = freelancer.post(
        f"{path}/proposals",
        data={"csrf_token": csrf_from(page.text), "amount": "100", **_rows(("All", "100"))},
    )
    assert response.status_code == 303
    page = client.get(path)
    [proposal_id] = re.findall(r"/proposals/(prp_[^/]+)/accept", page.text)
    forged = client.post(f"{path}/proposals/{proposal_id}/accept", data={"csrf_token": "x" * 64})
    assert forged.status_code == 403
    assert "None yet: open for proposals" in client.get(path).text
    response = confirmed_post(
        client, f"{path}/proposals/{proposal_id}/accept", {"csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 303

    # Awarded: the outsider finds nothing, not even the milestones' terms pages.
    hidden = outsider.get(path)
    assert hidden.status_code == 404 and "CRM" not in hidden.text
    assert "Not found" in hidden.text
    page = client.get(path)
    [milestone_id] = re.findall(r'href="/milestones/(ms_[^/"]+)/terms"', page.text)
    assert outsider.get(f"/milestones/{milestone_id}/terms").status_code == 404
    token = csrf_from(outsider.get("/projects").text)
    response = outsider.post(path + "/bonuses", data={"amount": "1", "csrf_token": token})
    assert response.status_code == 404

    # A bonus from the form: refused while the wallet is short (nothing moves), then paid.
    token = csrf_from(page.text)
    response = client.post(f"{path}/bonuses", data={"amount": "50", "csrf_token": token})
    assert response.status_code == 402
    assert "The wallet holds $0.00; $50.00 is needed." in response.text
    assert 'aria-describedby="bonus-hint amount-error" aria-invalid="true"' in response.text
    assert _available(db, freelancer_email) == {}
    deposit = client.post(
        "/deposits", data={"amount": "80", "currency": "USD", "csrf_token": token}
    )
    assert deposit.status_code == 303
    response = confirmed_post(
        client, f"{path}/bonuses", {"amount": "50", "note": "Thanks", "csrf_token": token}
    )
    assert response.status_code == 303
    assert _available(db, freelancer_email) == {"USD": 4500}  # less the 10% fee
    assert _available(db, client_email) == {"USD": 3000}

    # Adding a milestone from the form: the service checks the terms.
    response = client.post(
        f"{path}/milestones", data={"title": "", "amount": "10", "csrf_token": token}
    )
    assert response.status_code == 422 and 'id="title-error"' in response.text
    response = client.post(
        f"{path}/milestones",
        data={
            "title": "Reports",
            "amount": "10",
            "acceptance_criteria": "PDF",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303
    assert "Reports" in client.get(path).text
    assert _user_id(db, client_email) in client.get(path).text  # the client's profile link
    assert project_id in client.get("/projects").text


def test_a_refused_form_tells_every_problem_at_once_in_words(base_url: str, db: Database) -> None:
    client = web_sign_up(base_url, f"client{next(_emails)}@example.com")
    page = client.get("/projects/new")
    refused = client.post(
        "/projects/new",
        data={
            "title": "",
            "currency": "XYZ",
            "billing_contact_email": "not an address",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert refused.status_code == 422
    errors = dict(
        re.findall(r'<p class="error" id="([^"]+)-error" role="alert">([^<]+)</p>', refused.text)
    )
    assert set(errors) == {"title", "currency", "billing_contact_email"}, errors
    assert errors["title"] == "The title is required."
    with db.read_only() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 0

    project = client.post(
        "/projects/new",
        data={"title": "Shop", "currency": "USD", "csrf_token": csrf_from(page.text)},
    )
    path = project.headers["location"]
    freelancer = web_sign_up(base_url, f"freelancer{next(_emails)}@example.com")
    token = csrf_from(freelancer.get(path).text)
    refused = freelancer.post(
        f"{path}/proposals",
        data={
            "amount": "1,000",
            "csrf_token": token,
            **_rows(("", "12,50"), ("Build", "abc"), ("", "300")),
        },
    )
    assert refused.status_code == 422
    errors = dict(
        re.findall(r'<p class="error" id="([^"]+)-error" role="alert">([^<]+)</p>', refused.text)
    )
    how = "Write amounts like 1,234.50 (a point before the cents; commas only between thousands)."
    assert errors == {
        "milestones[0].amount": how,
        "milestones[1].amount": how,
        "milestones[0].title": "The title of milestone 1 is required.",
        "milestones[2].title": "The title of milestone 3 is required.",
    }, errors


def test_the_freelancer_withdraws_a_proposal_from_its_card(base_url: str) -> None:
    client = web_sign_up(base_url, f"client{next(_emails)}@example.com")
    form = client.get("/projects/new")
    path = client.post(
        "/projects/new",
        data={"title": "Shop", "currency": "USD", "csrf_token": csrf_from(form.text)},
    ).headers["location"]
    freelancer = web_sign_up(base_url, f"freelancer{next(_emails)}@example.com")
    token = csrf_from(freelancer.get(path).text)
    sent = freelancer.post(
        f"{path}/proposals", data={"amount": "100", "csrf_token": token, **_rows(("All", "100"))}
    )
    assert sent.status_code == 303
    text = freelancer.get(path).text
    assert "Withdraw this proposal" in text
    [proposal_id] = re.findall(r"/proposals/(prp_[^/]+)/withdraw", text)
    assert (
        "Withdraw this proposal" not in client.get(path).text
    )  # the client accepts, not withdraws
    done = freelancer.post(f"{path}/proposals/{proposal_id}/withdraw", data={"csrf_token": token})
    assert done.status_code == 303
    text = freelancer.get(path).text
    assert "status-withdrawn" in text and "Withdraw this proposal" not in text
    assert f"/proposals/{proposal_id}/accept" not in client.get(path).text
