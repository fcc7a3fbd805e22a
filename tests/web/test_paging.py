"""Long lists over plain HTTP, as a browser without JavaScript sees them: a page at a time, each with a
"Next page" link that leads to the rest, every row once, and the figures of the whole under each page."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from milepost.kit.db import Database
from milepost.milestones import service as milestones
from milepost.settings import Settings
from milepost.wallets import service as wallets
from milepost.web.views.pending_transfers import TRANSFERS_PAGE
from milepost.web.views.project import MILESTONES_PAGE
from tests.web.conftest import csrf_from
from tests.world import PASSWORD, World


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return World(db, settings)


def _session(base_url: str, email: str) -> httpx.Client:
    http = httpx.Client(base_url=base_url, timeout=60)
    token = csrf_from(http.get("/login").text)
    response = http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303, response.text
    return http


def _next(page: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">Next page', page)
    return None if found is None else html.unescape(found.group(1))


def _every_page(http: httpx.Client, path: str) -> list[str]:
    pages: list[str] = []
    next_path: str | None = path
    while next_path is not None:
        response = http.get(next_path)
        assert response.status_code == 200, next_path
        pages.append(response.text)
        next_path = _next(response.text)
    return pages


def test_the_project_page_pages_its_milestones_under_the_totals_of_all(
    world: World, base_url: str
) -> None:
    client, _, project = world.parties()
    count = MILESTONES_PAGE + 2
    for n in range(1, count + 1):
        world.milestone(client, project, 100, title=f"Part {n}")
    world.act(client, milestones.fund, world.act(client, milestones.list_milestones).data[0].id)

    pages = _every_page(_session(base_url, client.email), f"/projects/{project.id}")
    assert len(pages) == 2
    titles = [re.findall(r">(Part \d+)</a>", page) for page in pages]
    assert [len(shown) for shown in titles] == [MILESTONES_PAGE, 2]
    assert [title for shown in titles for title in shown] == [
        f"Part {n}" for n in range(1, count + 1)
    ]
    for page in pages:  # 102 milestones of $1.00, one of them funded
        assert "<dt>Total of the milestones</dt><dd>$102.00</dd>" in page
        assert "<dt>In escrow</dt><dd>$1.00</dd>" in page
    assert 'href="/projects/' + project.id + '">Back to the first milestones' in pages[1]
    assert "Back to the first milestones" not in pages[0]


def test_the_staff_page_pages_each_list_on_its_own(world: World, base_url: str) -> None:
    staff = world.user("staff", staff=True)
    ann = world.user("ann")
    made = [
        world.act(ann, wallets.create_deposit, amount=100 + n, currency="USD", provider="manual").id
        for n in range(TRANSFERS_PAGE + 3)
    ]

    pages = _every_page(_session(base_url, staff.email), "/staff")
    assert len(pages) == 2
    shown = [
        re.findall(r'action="/staff/deposits/(dep_[0-9a-z]+)/confirm"', page) for page in pages
    ]
    assert [len(ids) for ids in shown] == [TRANSFERS_PAGE, 3]
    assert [deposit for ids in shown for deposit in ids] == made  # oldest first, each once
    assert "No open disputes." in pages[0] and "No payouts waiting." in pages[1]
    assert 'href="/staff">Back to the start</a>' in pages[1]
    # An address naming no deposit is refused, not a page from somewhere.
    assert _session(base_url, staff.email).get("/staff?deposits_after=dep_nope").status_code == 400
