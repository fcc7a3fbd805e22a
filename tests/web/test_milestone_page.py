"""The milestone page in a browser: delivery with evidence, the review checklist, cancellation requests,
disputes and settlement offers, receipts and feedback; and its file and receipt routes over plain HTTP."""

from __future__ import annotations

import itertools
import struct
import zlib
from typing import Any

import httpx
from sqlalchemy import func, select

from milepost.disputes.models import SettlementOffer
from milepost.files.models import StoredFile
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.ledger.verify import verify_ledger
from milepost.users.service import get_user_by_email
from milepost.wallets.service import balances
from tests.web.conftest import PASSWORD, Shots, confirm, csrf_from, log_in, web_sign_up

_emails = itertools.count(1)


def _png() -> bytes:
    """A real 1x1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _available(db: Database, email: str) -> dict[str, int]:
    with db.read_only() as session:
        user = get_user_by_email(session, email)
        return {b.currency: b.available for b in balances(Context(session, user), user.id)}


def _count(db: Database, query: Any) -> int:
    with db.read_only() as session:
        return int(session.scalar(query) or 0)


def _funded(sign_up: Any, **terms: Any) -> tuple[Any, Any, str]:
    """A client (with $5,000 deposited), a freelancer, and a funded $2,500 milestone between them."""
    client_api = sign_up("client")
    freelancer_api = sign_up("freelancer")
    client_api.ok("POST", "/v1/deposits", {"amount": 500000, "currency": "USD"}, status=201)
    project = client_api.ok(
        "POST",
        "/v1/projects",
        {"title": "Shop", "currency": "USD", "freelancer_id": freelancer_api.id},
        status=201,
    )
    terms.setdefault("acceptance_criteria", ["It works"])
    milestone = client_api.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {"title": "Sales dashboard", "amount": 250000, **terms},
        status=201,
    )
    client_api.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    return client_api, freelancer_api, milestone["id"]


def _web_log_in(base_url: str, email: str) -> httpx.Client:
    http = httpx.Client(base_url=base_url, timeout=60)
    token = csrf_from(http.get("/login").text)
    response = http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303
    return http


def test_delivery_with_a_file_a_link_and_text_then_the_client_s_checklist_and_download(
    new_page: Any, shot: Shots, sign_up: Any, db: Database, base_url: str
) -> None:
    client_api, freelancer_api, milestone_id = _funded(
        sign_up,
        acceptance_criteria=["The dashboard shows monthly sales", "Exports orders as CSV"],
        required_evidence=["Screenshot of the dashboard"],
    )
    path = f"/milestones/{milestone_id}"
    freelancer = new_page()
    log_in(freelancer, freelancer_api.user["email"])
    freelancer.goto(path)
    shot(freelancer, "freelancer-funded")

    # A refused upload (a Windows program) shows the message by the form and stores nothing.
    freelancer.get_by_label("Delivery note").fill("Sales dashboard done.")
    freelancer.get_by_label("Files (PDF, images, ZIP or text)").set_input_files(
        [{"name": "setup.exe", "mimeType": "image/png", "buffer": b"MZ" + bytes(300)}]
    )
    freelancer.get_by_role("button", name="Submit delivery").click()
    assert "are not accepted" in freelancer.locator("#submit-error").inner_text()
    assert freelancer.locator("#submit-note").get_attribute("aria-invalid") == "true"
    assert freelancer.locator("#status").inner_text() == "funded"
    assert freelancer.get_by_role("heading", name="Deliveries").count() == 0
    assert _count(db, select(func.count()).select_from(StoredFile)) == 0
    # What was typed is kept; only the file has to be chosen again.
    assert freelancer.get_by_label("Delivery note").input_value() == "Sales dashboard done."
    shot(freelancer, "freelancer-upload-refused")

    freelancer.get_by_label("Files (PDF, images, ZIP or text)").set_input_files(
        [{"name": "screenshot.png", "mimeType": "image/png", "buffer": _png()}]
    )
    freelancer.get_by_label("Links, one per line").fill("https://staging.example.com/dashboard\n")
    freelancer.get_by_label("Text evidence").fill("The chart shows monthly sales for 12 months.")
    freelancer.get_by_role("button", name="Submit delivery").click()
    assert freelancer.locator("#status").inner_text() == "submitted"
    revision = freelancer.locator("#revision-1").inner_text()
    assert "Sales dashboard done." in revision
    assert "https://staging.example.com/dashboard" in revision
    assert "The chart shows monthly sales for 12 months." in revision
    assert "screenshot.png" in revision and "image/png" in revision
    # The freelancer sees the checklist too, without boxes to tick.
    assert freelancer.locator("#review").is_visible()
    assert freelancer.locator("#review input[type=checkbox]").count() == 0
    shot(freelancer, "freelancer-submitted")

    review = client_api.ok("GET", f"/v1/milestones/{milestone_id}/review")
    client = new_page(width=375)
    log_in(client, client_api.user["email"])
    client.goto(path)
    assert client.evaluate("document.documentElement.scrollWidth") <= 375
    criteria = client.locator("#criteria-checklist li")
    assert criteria.count() == 2
    for index, check in enumerate(review["criteria"]):
        text = criteria.nth(index).inner_text()
        assert check["text"] in text
        label = {"met": "Met", "unclear": "Unclear: check it", "unmet": "Not shown"}
        assert label[check["verdict"]] in text
    [required] = review["required_evidence"]
    assert required["found"]  # the screenshot's file name says what it is
    assert "Present" in client.locator("#required-checklist").inner_text()
    suggestion = "Approve" if review["suggestion"]["decision"] == "approve" else "Request changes"
    assert client.locator("#suggestion").inner_text().startswith(suggestion)
    assert client.locator("#review-time-left").inner_text() == "13 days 23 hours left to review"
    client.get_by_label("The dashboard shows monthly sales").check()  # guidance only
    shot(client, "client-checklist-phone")

    with client.expect_download() as download:
        client.get_by_role("link", name="screenshot.png").click()
    assert download.value.suggested_filename == "screenshot.png"
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == _png()
    # The route's headers: an attachment, of the stored type, never sniffed.
    [file_id] = [e["file_id"] for e in review["submission"]["evidence"] if e["type"] == "file"]
    cookies = {c["name"]: c["value"] for c in client.context.cookies()}
    response = httpx.get(f"{base_url}/files/{file_id}", cookies=cookies)
    assert response.status_code == 200 and response.content == _png()
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_client_requests_cancellation_and_the_freelancer_declines(
    new_page: Any, shot: Shots, sign_up: Any, db: Database
) -> None:
    client_api, freelancer_api, milestone_id = _funded(sign_up)
    path = f"/milestones/{milestone_id}"
    client = new_page()
    log_in(client, client_api.user["email"])
    client.goto(path)
    # The client may not cancel a funded milestone outright: only ask.
    assert client.get_by_role("button", name="Cancel the milestone").count() == 0
    client.get_by_role("button", name="Ask the freelancer to cancel").click()
    assert client.locator("#request_cancellation-error").is_visible()  # a reason is required
    assert client_api.ok("GET", f"/v1/milestones/{milestone_id}")["cancellation_requested"] is False
    client.get_by_label("Why you want to cancel (the freelancer decides)").fill("Budget cut")
    client.get_by_role("button", name="Ask the freelancer to cancel").click()
    assert client.locator("#cancellation-reason").inner_text() == "Budget cut"
    assert "Waiting for the freelancer to accept or decline." in client.content()
    # One pending request at a time: the form is gone.
    assert client.get_by_role("button", name="Ask the freelancer to cancel").count() == 0
    shot(client, "client-cancellation-requested")

    freelancer = new_page()
    log_in(freelancer, freelancer_api.user["email"])
    freelancer.goto(path)
    assert freelancer.locator("#cancellation-reason").inner_text() == "Budget cut"
    deadline = freelancer.locator("#cancellation-deadline").inner_text()
    assert deadline.startswith("Without an answer by ")
    assert deadline.endswith("the cancellation is granted and the escrow refunded to the client.")
    shot(freelancer, "freelancer-cancellation-request")
    freelancer.get_by_role("button", name="Decline the cancellation").click()
    assert freelancer.get_by_role("heading", name="Cancellation requested").count() == 0
    assert freelancer.locator("#status").inner_text() == "funded"
    assert freelancer.locator("#escrow").inner_text() == "$2,500.00"
    assert "cancellation declined by the freelancer" in freelancer.locator(".timeline").inner_text()
    shot(freelancer, "freelancer-declined")
    assert _available(db, client_api.user["email"]) == {"USD": 250000}


def test_a_dispute_settled_by_an_offer_then_receipt_and_feedback(
    new_page: Any, shot: Shots, sign_up: Any, db: Database, base_url: str
) -> None:
    client_api, freelancer_api, milestone_id = _funded(sign_up)
    path = f"/milestones/{milestone_id}"
    client = new_page()
    log_in(client, client_api.user["email"])
    client.goto(path)
    client.get_by_label("Reason for the dispute").fill("Nothing delivered by the due date.")
    client.get_by_role("button", name="Open a dispute (freezes the escrow)").click()
    assert client.locator("#status").inner_text() == "disputed"
    assert "the client (you)" in client.locator("#dispute").inner_text()
    assert client.get_by_role("button", name="Withdraw the dispute").is_visible()
    shot(client, "client-dispute-opened")

    freelancer = new_page(width=375)
    log_in(freelancer, freelancer_api.user["email"])
    freelancer.goto(path)
    assert "Nothing delivered by the due date." in freelancer.locator("#dispute").inner_text()
    assert freelancer.evaluate("document.documentElement.scrollWidth") <= 375
    assert freelancer.get_by_role("button", name="Withdraw the dispute").count() == 0
    # More than the escrow holds: refused by the form, and no offer is made.
    freelancer.get_by_label("Offer the freelancer (USD)").fill("3,000")
    freelancer.get_by_role("button", name="Make the offer").click()
    assert "cannot give the freelancer more" in freelancer.locator("#make_offer-error").inner_text()
    assert _count(db, select(func.count()).select_from(SettlementOffer)) == 0
    assert "No offers yet." in freelancer.locator("#dispute").inner_text()
    shot(freelancer, "freelancer-offer-refused")
    freelancer.get_by_label("Offer the freelancer (USD)").fill("1,500")
    freelancer.get_by_role("button", name="Make the offer").click()
    offers = freelancer.locator("#offers").inner_text()
    assert (
        "The freelancer offers $1,500.00 to the freelancer and $1,000.00 back to the client"
        in offers
    )
    # Nobody accepts their own offer.
    assert freelancer.get_by_role("button", name="Accept this offer and settle").count() == 0
    shot(freelancer, "freelancer-offered")

    client.reload()
    client.get_by_role("button", name="Accept this offer and settle").click()
    assert confirm(client) == (
        "$2,500.00 leaves the escrow: freelancer receives $1,350.00, the platform fee is $150.00 "
        "and you get $1,000.00 back.\n"
        "The dispute is settled and closed, with every open offer.\n"
        "This cannot be undone."
    )
    assert client.locator("#status").inner_text() == "resolved"
    assert client.locator("#dispute-state").inner_text() == "resolved (offer accepted)"
    assert client.locator("#escrow").inner_text() == "$0.00"
    shot(client, "client-resolved")
    # $5,000 - $2,500 funded + $1,000 back; the freelancer gets $1,500 less the 10% fee.
    assert _available(db, client_api.user["email"]) == {"USD": 350000}
    assert _available(db, freelancer_api.user["email"]) == {"USD": 135000}
    with db.read_only() as session:
        assert verify_ledger(session).ok

    client.get_by_role("link", name="Receipt", exact=False).first.click()
    assert client.locator("#amount-released").inner_text() == "$1,500.00"
    assert client.locator("#platform-fee").inner_text() == "$150.00"
    shot(client, "client-receipt")

    client.goto(path)
    # No rating is chosen for the client: the form starts on "Choose".
    rating = client.get_by_label("Your rating of the freelancer (1 to 5)")
    assert rating.input_value() == ""
    assert rating.get_attribute("required") is not None
    rating.select_option("4")
    client.get_by_label("Comment (optional)").fill("Fair in the end.")
    client.get_by_role("button", name="Leave feedback").click()
    assert "The client (you) rated 4 out of 5: Fair in the end." in " ".join(
        client.locator("#feedback-list").inner_text().split()
    )
    # Once: the form is gone, and the service refuses a second rating sent anyway.
    assert client.get_by_role("button", name="Leave feedback").count() == 0
    token = csrf_from(client.content())
    cookies = {c["name"]: c["value"] for c in client.context.cookies()}
    again = httpx.post(
        f"{base_url}{path}/feedback",
        data={"rating": "1", "csrf_token": token},
        cookies=cookies,
    )
    assert again.status_code == 409 and "already rated" in again.text
    assert client_api.ok("GET", f"/v1/milestones/{milestone_id}/feedback")["data"][0]["rating"] == 4
    shot(client, "client-feedback")


def test_files_and_receipts_are_not_found_for_outsiders_and_forms_need_their_token(
    sign_up: Any, base_url: str, db: Database
) -> None:
    client_api, freelancer_api, milestone_id = _funded(sign_up)
    upload = freelancer_api.http.post(
        "/v1/files",
        files={"file": ("report.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
        headers={"Authorization": f"Bearer {freelancer_api.token}"},
    )
    assert upload.status_code == 201, upload.text
    file_id = upload.json()["id"]
    freelancer_api.ok(
        "POST",
        f"/v1/milestones/{milestone_id}/submissions",
        {"note": "Done", "evidence": [{"type": "file", "file_id": file_id}]},
        status=201,
    )
    client_api.ok("POST", f"/v1/milestones/{milestone_id}/approve")
    [receipt] = client_api.ok("GET", f"/v1/milestones/{milestone_id}/receipts")["data"]
    receipt_id = receipt["id"]
    routes = [f"/files/{file_id}", f"/receipts/{receipt_id}", f"/receipts/{receipt_id}.pdf"]

    client = _web_log_in(base_url, client_api.user["email"])
    assert client.get(routes[0]).content == b"%PDF-1.4\n%%EOF\n"
    page = client.get(routes[1])
    assert page.status_code == 200 and "$2,500.00" in page.text
    pdf = client.get(routes[2])
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    milestone_page = client.get(f"/milestones/{milestone_id}").text
    assert f'href="/receipts/{receipt_id}"' in milestone_page
    assert f'href="/receipts/{receipt_id}.pdf"' in milestone_page

    outsider = web_sign_up(base_url, f"outsider{next(_emails)}@example.com")
    for route in [*routes, "/files/file_nope", "/receipts/je_nope"]:
        response = outsider.get(route)
        assert response.status_code == 404, route
        assert response.headers["content-type"].startswith("text/html")
        assert "Sales dashboard" not in response.text
    anonymous = httpx.Client(base_url=base_url, timeout=60)
    for route in routes:
        response = anonymous.get(route)
        assert response.status_code == 303 and response.headers["location"] == "/login"

    # A new form without its CSRF token is refused and changes nothing.
    freelancer = _web_log_in(base_url, freelancer_api.user["email"])
    response = freelancer.post(f"/milestones/{milestone_id}/feedback", data={"rating": "5"})
    assert response.status_code == 403
    assert client_api.ok("GET", f"/v1/milestones/{milestone_id}/feedback")["data"] == []


def test_a_delivery_over_one_mib_is_taken_and_one_over_the_file_limit_is_a_readable_413(
    sign_up: Any, db: Database, base_url: str
) -> None:
    _client_api, freelancer_api, milestone_id = _funded(sign_up)
    http = _web_log_in(base_url, freelancer_api.user["email"])
    path = f"/milestones/{milestone_id}"
    token = csrf_from(http.get(path).text)
    # A 2 MiB PNG: over the 1 MiB limit of other requests, well under the upload limit.
    big = _png() + bytes(2 * 1024 * 1024)
    too_big = bytes(30 * 1024 * 1024)  # over the 25 MiB upload limit

    refused = http.post(
        f"{path}/submit",
        data={"note": "Everything", "csrf_token": token},
        files={"files": ("huge.png", too_big, "image/png")},
        headers={"Accept": "text/html"},
    )
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("text/html")
    assert "nothing was changed" in refused.text
    assert _count(db, select(func.count()).select_from(StoredFile)) == 0

    taken = http.post(
        f"{path}/submit",
        data={"note": "Screenshot at full size", "csrf_token": token},
        files={"files": ("screen.png", big, "image/png")},
    )
    assert taken.status_code == 303, taken.text
    assert _count(db, select(func.count()).select_from(StoredFile)) == 1
    assert "submitted" in http.get(path).text


def test_a_decimal_comma_in_the_release_form_is_refused_and_releases_nothing(
    new_page: Any, shot: Shots, sign_up: Any, db: Database
) -> None:
    """ "12,50" typed into Release could mean €12.50 or €1,250.00: refused with how to write it, never
    read as the larger; "1,250.00" is unambiguous and releases exactly that."""
    client_api = sign_up("client")
    freelancer_api = sign_up("freelancer")
    client_api.ok("POST", "/v1/deposits", {"amount": 500000, "currency": "EUR"}, status=201)
    project = client_api.ok(
        "POST",
        "/v1/projects",
        {"title": "Shop", "currency": "EUR", "freelancer_id": freelancer_api.id},
        status=201,
    )
    milestone_id = client_api.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {"title": "Checkout", "amount": 250000, "acceptance_criteria": ["It works"]},
        status=201,
    )["id"]
    client_api.ok("POST", f"/v1/milestones/{milestone_id}/fund")
    freelancer_email = freelancer_api.user["email"]
    page = new_page()
    log_in(page, client_api.user["email"])
    page.goto(f"/milestones/{milestone_id}")
    assert page.locator("#escrow").inner_text() == "€2,500.00"

    for typed in ("12,50", "0,99", "1.234,56"):
        page.get_by_label("Release part of the escrow (EUR)").fill(typed)
        page.get_by_role("button", name="Release this amount").click()
        assert page.locator("#release-error").inner_text() == (
            "Write amounts like 1,234.50 (a point before the cents; commas only between thousands)."
        )
        assert page.locator("#escrow").inner_text() == "€2,500.00"
        assert _available(db, freelancer_email).get("EUR", 0) == 0
    assert client_api.ok("GET", f"/v1/milestones/{milestone_id}")["released_amount"] == 0
    shot(page, "release-decimal-comma-refused")

    page.get_by_label("Release part of the escrow (EUR)").fill("1,250.00")
    page.get_by_role("button", name="Release this amount").click()
    confirm(page)
    assert page.locator("#escrow").inner_text() == "€1,250.00"
    assert client_api.ok("GET", f"/v1/milestones/{milestone_id}")["released_amount"] == 125000
    assert _available(db, freelancer_email) == {"EUR": 112500}  # less the 10% fee
    with db.read_only() as session:
        assert verify_ledger(session).ok
