"""Who may do what, over HTTP, as an API client sees it.

PRODUCT.md "People" and "Milestone lifecycle", API.md "Errors": a user who is not a party to an object gets
404 (the object does not exist for them, and the answer is the one a made-up id gets); a party without the
right gets 403 with a code naming the rule; staff read everything and may cancel, nothing else. A refused
request changes nothing: the milestone, its events and both parties' balances stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.api.conftest import Client

USD = "USD"
AMOUNT = 100_000
FEE_BPS = 1000  # tests/api/conftest.py settings
SUBMISSION = {
    "note": "Deployed to staging",
    "evidence": [{"type": "link", "url": "https://staging.example/build/7"}],
}
FAKE_MILESTONE = "ms_00000000000000000000000000"
FAKE_DISPUTE = "dsp_00000000000000000000000000"
OK = "ok"


# People and states -----------------------------------------------------------------------------------


@dataclass
class Cast:
    client: Client
    freelancer: Client
    staff: Client
    outsider: Client
    project: dict[str, Any] = field(default_factory=dict)

    def by(self, role: str) -> Client:
        return {
            "client": self.client,
            "freelancer": self.freelancer,
            "staff": self.staff,
            "outsider": self.outsider,
        }[role]


def make_cast(sign_up: Any) -> Cast:
    """A client with a project awarded to a freelancer, a staff member, and an outsider with money."""
    cast = Cast(
        client=sign_up("client"),
        freelancer=sign_up("freelancer"),
        staff=sign_up("staff", staff=True),
        outsider=sign_up("outsider"),
    )
    cast.outsider.ok("POST", "/v1/deposits", {"amount": 50_000, "currency": USD})
    cast.project = cast.client.ok(
        "POST",
        "/v1/projects",
        {"title": "Billing portal", "currency": USD, "freelancer_id": cast.freelancer.id},
    )
    return cast


def milestone_in(cast: Cast, state: str, *, amount: int = AMOUNT) -> Any:
    """A new milestone on the cast's project, driven over the API into ``state``.

    States: draft, funded, cancellation_requested (funded, with a pending request), submitted, approved
    (a release delay keeps the approved milestone from being released at once).
    """
    client, freelancer = cast.client, cast.freelancer
    terms: dict[str, Any] = {
        "title": f"Milestone in {state}",
        "amount": amount,
        "acceptance_criteria": ["Invoices can be downloaded as PDF"],
    }
    if state == "approved":
        terms["release_delay_days"] = 3
    milestone = client.ok("POST", f"/v1/projects/{cast.project['id']}/milestones", terms)
    path = f"/v1/milestones/{milestone['id']}"
    # A spare 5,000 stays in the wallet so that a wrongly moved cent would show in the balance.
    client.ok("POST", "/v1/deposits", {"amount": amount + 5_000, "currency": USD})
    if state == "draft":
        return milestone
    milestone = client.ok("POST", f"{path}/fund")
    if state == "cancellation_requested":
        milestone = client.ok("POST", f"{path}/cancellation-request", {"reason": "Budget cut"})
        assert milestone["cancellation_requested"] is True
        # Unanswered, it is granted after the answer period (7 days by default).
        left = datetime.fromisoformat(milestone["cancellation_answer_due_at"]) - datetime.now(UTC)
        assert timedelta(days=6, hours=23) < left <= timedelta(days=7)
    if state in ("submitted", "approved"):
        freelancer.ok("POST", f"{path}/submissions", SUBMISSION)
    if state == "approved":
        client.ok("POST", f"{path}/approve")
    milestone = client.ok("GET", path)
    expected = "funded" if state == "cancellation_requested" else state
    assert milestone["status"] == expected, milestone
    return milestone


def snapshot(cast: Cast, milestone_id: str) -> tuple[Any, ...]:
    """What a refused request must not change: the milestone, its events, both parties' balances."""
    return (
        cast.client.ok("GET", f"/v1/milestones/{milestone_id}"),
        cast.client.ok("GET", f"/v1/milestones/{milestone_id}/events")["data"],
        cast.client.ok("GET", "/v1/balances"),
        cast.freelancer.ok("GET", "/v1/balances"),
    )


def available(who: Client) -> int:
    rows = who.ok("GET", "/v1/balances")["data"]
    return sum(row["available"] for row in rows if row["currency"] == USD)


def assert_error(response: httpx.Response, status: int, type_: str, code: str) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "code", "message", "param"}, body
    assert (body["error"]["type"], body["error"]["code"]) == (type_, code), body
    assert "Traceback" not in response.text
    return body["error"]


def assert_hidden(response: httpx.Response, unknown: httpx.Response, *secrets: str) -> None:
    """A non-party's 404 says no more than the 404 for an id that never existed."""
    assert_error(response, 404, "not_found", "not_found")
    assert response.json() == unknown.json(), (response.text, unknown.text)
    for secret in secrets:
        assert str(secret) not in response.text, (secret, response.text)


def send(who: Client, method: str, path: str, body: Any) -> httpx.Response:
    return who.request(method, path, json=body) if body is not None else who.request(method, path)


# The milestone action matrix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Act:
    """One milestone action: where it is allowed, who may take it, and who is refused with which code."""

    name: str
    method: str
    suffix: str  # appended to /v1/milestones/{id}
    body: Any
    state: str  # a state in which the rightful party may take the action
    rightful: str
    wrong: tuple[str, str] | None  # the other party and its 403 code (None: both parties may)
    staff: str  # the 403 code staff get, or OK
    after: str  # the milestone's status after the rightful party acted
    status: int = 200
    expect: tuple[tuple[str, Any], ...] = ()  # milestone fields after the rightful party acted


ACTIONS = [
    Act(
        "edit terms",
        "PATCH",
        "",
        {"title": "Invoices v2", "amount": 120_000},
        "draft",
        "client",
        ("freelancer", "only_client_can_edit"),
        "only_client_can_edit",
        "draft",
        expect=(("title", "Invoices v2"), ("amount", 120_000)),
    ),
    Act(
        "fund",
        "POST",
        "/fund",
        None,
        "draft",
        "client",
        ("freelancer", "only_client_can_fund"),
        "only_client_can_fund",
        "funded",
        expect=(("escrow_balance", AMOUNT), ("funded_amount", AMOUNT)),
    ),
    Act(
        "submit",
        "POST",
        "/submissions",
        SUBMISSION,
        "funded",
        "freelancer",
        ("client", "only_freelancer_can_submit"),
        "only_freelancer_can_submit",
        "submitted",
        status=201,
    ),
    Act(
        "request changes",
        "POST",
        "/request-changes",
        {"reason": "The PDF is blank", "unmet_criteria": [0]},
        "submitted",
        "client",
        ("freelancer", "only_client_can_review"),
        "only_client_can_review",
        "changes_requested",
    ),
    Act(
        "approve",
        "POST",
        "/approve",
        None,
        "submitted",
        "client",
        ("freelancer", "only_client_can_review"),
        "only_client_can_review",
        "released",
        expect=(("escrow_balance", 0), ("released_amount", AMOUNT), ("fee_amount", 10_000)),
    ),
    Act(
        "partial release",
        "POST",
        "/release",
        {"amount": 30_000},
        "funded",
        "client",
        ("freelancer", "only_client_can_release"),
        "only_client_can_release",
        "funded",
        expect=(("escrow_balance", 70_000), ("released_amount", 30_000), ("fee_amount", 3_000)),
    ),
    Act(
        "full release",
        "POST",
        "/release",
        None,
        "approved",
        "client",
        ("freelancer", "only_client_can_release"),
        "only_client_can_release",
        "released",
        expect=(("escrow_balance", 0), ("released_amount", AMOUNT), ("fee_amount", 10_000)),
    ),
    Act(
        "request release",
        "POST",
        "/request-release",
        None,
        "submitted",
        "freelancer",
        ("client", "only_freelancer_can_request_release"),
        "only_freelancer_can_request_release",
        "submitted",
    ),
    Act(
        "cancel a draft",
        "POST",
        "/cancel",
        {"reason": "Out of scope"},
        "draft",
        "client",
        ("freelancer", "only_client_can_cancel"),
        OK,
        "cancelled",
    ),
    Act(
        "cancel a funded milestone",
        "POST",
        "/cancel",
        {"reason": "Cannot deliver"},
        "funded",
        "freelancer",
        ("client", "only_freelancer_can_cancel"),
        OK,
        "cancelled",
        expect=(("escrow_balance", 0), ("refunded_amount", AMOUNT)),
    ),
    Act(
        "request cancellation",
        "POST",
        "/cancellation-request",
        {"reason": "Budget cut"},
        "funded",
        "client",
        ("freelancer", "only_client_can_request_cancellation"),
        "only_client_can_request_cancellation",
        "funded",
        expect=(("cancellation_requested", True), ("cancellation_reason", "Budget cut")),
    ),
    Act(
        "accept cancellation",
        "POST",
        "/cancellation-request/accept",
        None,
        "cancellation_requested",
        "freelancer",
        ("client", "only_freelancer_can_answer"),
        "only_freelancer_can_answer",
        "cancelled",
        expect=(("refunded_amount", AMOUNT), ("cancellation_requested", False)),
    ),
    Act(
        "decline cancellation",
        "POST",
        "/cancellation-request/decline",
        None,
        "cancellation_requested",
        "freelancer",
        ("client", "only_freelancer_can_answer"),
        "only_freelancer_can_answer",
        "funded",
        expect=(("cancellation_requested", False), ("escrow_balance", AMOUNT)),
    ),
    Act(
        "open dispute",
        "POST",
        "/disputes",
        {"reason": "The work does not match the criteria"},
        "funded",
        "client",
        None,
        "only_parties_can_dispute",
        "disputed",
        status=201,
    ),
]


def check_action(cast: Cast, act: Act) -> None:
    milestone = milestone_in(cast, act.state)
    path = f"/v1/milestones/{milestone['id']}{act.suffix}"
    before = snapshot(cast, milestone["id"])

    # The outsider: 404, exactly as for a milestone that does not exist, whatever the action.
    unknown = send(
        cast.outsider, act.method, f"/v1/milestones/{FAKE_MILESTONE}{act.suffix}", act.body
    )
    hidden = send(cast.outsider, act.method, path, act.body)
    assert_hidden(hidden, unknown, milestone["id"], milestone["title"], cast.client.id)

    refusals: list[tuple[str, str]] = []
    if act.wrong is not None:
        refusals.append(act.wrong)
    if act.staff != OK:
        refusals.append(("staff", act.staff))
    for role, code in refusals:
        refused = send(cast.by(role), act.method, path, act.body)
        assert_error(refused, 403, "permission", code)
    # One look after all the refusals covers each of them: a refused request cannot undo another's change.
    refused_by = ["outsider", *(role for role, _ in refusals)]
    assert snapshot(cast, milestone["id"]) == before, (
        f"a refused request changed state: {refused_by}"
    )

    done = send(cast.by(act.rightful), act.method, path, act.body)
    assert done.status_code == act.status, (done.status_code, done.text)
    after = cast.client.ok("GET", f"/v1/milestones/{milestone['id']}")
    assert after["status"] == act.after
    for name, value in act.expect:
        assert after[name] == value, (name, after[name], value)
    if act.method == "POST" and act.status == 200 and act.suffix != "/submissions":
        assert done.json()["id"] == milestone["id"]

    if act.staff == OK:
        # Staff may cancel any milestone: a second one in the same state.
        other = milestone_in(cast, act.state)
        client_before = available(cast.client)
        cancelled = cast.staff.ok("POST", f"/v1/milestones/{other['id']}{act.suffix}", act.body)
        assert (cancelled["status"], cancelled["escrow_balance"]) == ("cancelled", 0)
        assert available(cast.client) == client_before + other["escrow_balance"]


def test_milestone_action_matrix(sign_up: Any) -> None:
    """Every action by outsider, staff, the wrong party and the rightful party; all rows, then report."""
    cast = make_cast(sign_up)
    failures = []
    for act in ACTIONS:
        try:
            check_action(cast, act)
        except AssertionError as error:
            failures.append(f"{act.name}: {error}")
    assert not failures, "\n".join(failures)


def test_reads_are_for_parties_and_staff(sign_up: Any) -> None:
    cast = make_cast(sign_up)
    milestone = milestone_in(cast, "submitted")
    before = snapshot(cast, milestone["id"])
    for suffix in ("", "/events", "/submissions"):
        path = f"/v1/milestones/{milestone['id']}{suffix}"
        for who in (cast.client, cast.freelancer, cast.staff):
            body = who.ok("GET", path)
            if suffix == "":
                assert (body["id"], body["status"]) == (milestone["id"], "submitted")
            elif suffix == "/events":
                actions = [event["action"] for event in body["data"]]
                assert actions == ["created", "funded", "submitted"]
            else:
                assert [s["note"] for s in body["data"]] == [SUBMISSION["note"]]
        unknown = cast.outsider.get(f"/v1/milestones/{FAKE_MILESTONE}{suffix}")
        assert_hidden(cast.outsider.get(path), unknown, milestone["id"], milestone["title"])

    # Lists: the outsider's list does not hold it; staff see everything without a role filter.
    assert milestone["id"] not in [
        m["id"] for m in cast.outsider.ok("GET", "/v1/milestones")["data"]
    ]
    assert milestone["id"] in [m["id"] for m in cast.staff.ok("GET", "/v1/milestones")["data"]]
    assert milestone["id"] in [m["id"] for m in cast.freelancer.ok("GET", "/v1/milestones")["data"]]
    assert snapshot(cast, milestone["id"]) == before


def test_client_may_cancel_a_funded_milestone_only_while_the_project_has_no_freelancer(
    sign_up: Any,
) -> None:
    client, hopeful = sign_up("client"), sign_up("hopeful")
    client.ok("POST", "/v1/deposits", {"amount": AMOUNT, "currency": USD})
    project = client.ok("POST", "/v1/projects", {"title": "Open call", "currency": USD})
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "Early", "amount": AMOUNT}
    )
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    # Anyone may see the open project, but its milestones belong to its parties.
    assert hopeful.ok("GET", f"/v1/projects/{project['id']}")["id"] == project["id"]
    unknown = hopeful.post(f"/v1/milestones/{FAKE_MILESTONE}/cancel")
    assert_hidden(hopeful.post(f"/v1/milestones/{milestone['id']}/cancel"), unknown)
    cancelled = client.ok("POST", f"/v1/milestones/{milestone['id']}/cancel")
    assert (cancelled["status"], cancelled["refunded_amount"]) == ("cancelled", AMOUNT)
    assert available(client) == AMOUNT


def test_only_the_client_creates_milestones_and_pays_bonuses(sign_up: Any) -> None:
    cast = make_cast(sign_up)
    project_id = cast.project["id"]
    terms = {"title": "Extra", "amount": 10_000}
    for who in (cast.freelancer, cast.staff):
        refused = who.post(f"/v1/projects/{project_id}/milestones", terms)
        assert_error(refused, 403, "permission", "only_client_can_create")
        refused = who.post(f"/v1/projects/{project_id}/bonuses", {"amount": 1_000})
        assert_error(refused, 403, "permission", "only_client_can_pay_bonus")
    for suffix, body in (("/milestones", terms), ("/bonuses", {"amount": 1_000})):
        unknown = cast.outsider.post(f"/v1/projects/prj_00000000000000000000000000{suffix}", body)
        assert_hidden(cast.outsider.post(f"/v1/projects/{project_id}{suffix}", body), unknown)
    assert cast.client.ok("GET", f"/v1/milestones?project_id={project_id}")["data"] == []
    assert available(cast.outsider) == 50_000
    assert available(cast.freelancer) == 0


# Disputes ------------------------------------------------------------------------------------------------


def dispute_snapshot(cast: Cast, milestone_id: str, dispute_id: str) -> tuple[Any, ...]:
    return (
        *snapshot(cast, milestone_id),
        cast.client.ok("GET", f"/v1/disputes/{dispute_id}"),
        cast.client.ok("GET", f"/v1/disputes/{dispute_id}/offers")["data"],
    )


def test_dispute_endpoints_by_role(sign_up: Any) -> None:
    cast = make_cast(sign_up)
    milestone = milestone_in(cast, "funded")
    mid = milestone["id"]
    dispute = cast.client.ok("POST", f"/v1/milestones/{mid}/disputes", {"reason": "Late and wrong"})
    assert (dispute["status"], dispute["opener_role"]) == ("open", "client")
    did = dispute["id"]
    assert cast.client.ok("GET", f"/v1/milestones/{mid}")["status"] == "disputed"
    # The freelancer answers with an offer: 60,000 of the 100,000 to them.
    offer = cast.freelancer.ok("POST", f"/v1/disputes/{did}/offers", {"to_freelancer": 60_000})
    assert (offer["status"], offer["maker_role"]) == ("open", "freelancer")
    oid = offer["id"]

    calls: list[tuple[str, str, Any]] = [
        ("GET", f"/v1/disputes/{did}", None),
        ("GET", f"/v1/disputes/{did}/offers", None),
        ("POST", f"/v1/disputes/{did}/offers", {"to_freelancer": 1}),
        ("POST", f"/v1/disputes/{did}/offers/{oid}/accept", None),
        ("POST", f"/v1/disputes/{did}/withdraw", None),
        ("POST", f"/v1/disputes/{did}/resolve", {"to_freelancer": 0, "to_client": AMOUNT}),
    ]
    before = dispute_snapshot(cast, mid, did)
    for method, path, body in calls:
        unknown = send(cast.outsider, method, path.replace(did, FAKE_DISPUTE), body)
        hidden = send(cast.outsider, method, path, body)
        assert_hidden(hidden, unknown, did, mid, oid)
    for who in (cast.client, cast.freelancer, cast.staff):
        assert who.ok("GET", f"/v1/disputes/{did}")["id"] == did
        assert [o["id"] for o in who.ok("GET", f"/v1/disputes/{did}/offers")["data"]] == [oid]

    refusals: list[tuple[Client, str, Any, str]] = [
        (cast.staff, f"/v1/disputes/{did}/offers", {"to_freelancer": 1}, "parties_only"),
        (
            cast.staff,
            f"/v1/disputes/{did}/offers/{oid}/accept",
            None,
            "only_other_party_can_accept",
        ),
        (
            cast.freelancer,
            f"/v1/disputes/{did}/offers/{oid}/accept",
            None,
            "only_other_party_can_accept",
        ),
        (cast.freelancer, f"/v1/disputes/{did}/withdraw", None, "only_opener_can_withdraw"),
        (cast.staff, f"/v1/disputes/{did}/withdraw", None, "only_opener_can_withdraw"),
    ]
    resolve = {"to_freelancer": 50_000, "to_client": 50_000, "note": "Half each"}
    for who in (cast.client, cast.freelancer):
        refusals.append((who, f"/v1/disputes/{did}/resolve", resolve, "staff_only"))
    for who, path, body, code in refusals:
        assert_error(send(who, "POST", path, body), 403, "permission", code)
        assert dispute_snapshot(cast, mid, did) == before, (path, code)

    # The opener withdraws: the milestone is funded again.
    withdrawn = cast.client.ok("POST", f"/v1/disputes/{did}/withdraw")
    assert withdrawn["status"] == "withdrawn"
    assert cast.client.ok("GET", f"/v1/milestones/{mid}")["status"] == "funded"

    # The freelancer opens a second dispute; the client offers, the freelancer accepts.
    second = cast.freelancer.ok("POST", f"/v1/milestones/{mid}/disputes", {"reason": "Unpaid"})
    offer = cast.client.ok("POST", f"/v1/disputes/{second['id']}/offers", {"to_freelancer": 40_000})
    refused = cast.client.post(f"/v1/disputes/{second['id']}/offers/{offer['id']}/accept")
    assert_error(refused, 403, "permission", "only_other_party_can_accept")
    accepted = cast.freelancer.ok(
        "POST", f"/v1/disputes/{second['id']}/offers/{offer['id']}/accept"
    )
    assert (accepted["status"], accepted["to_freelancer"], accepted["to_client"]) == (
        "resolved",
        40_000,
        60_000,
    )
    assert available(cast.freelancer) == 36_000  # 40,000 less the 10% fee
    assert available(cast.client) == 5_000 + 60_000

    # A third dispute on another milestone: only staff resolve it, with a split of the escrow.
    other = milestone_in(cast, "submitted")
    third = cast.client.ok("POST", f"/v1/milestones/{other['id']}/disputes", {"reason": "Broken"})
    for who in (cast.client, cast.freelancer):
        refused = who.post(f"/v1/disputes/{third['id']}/resolve", resolve)
        assert_error(refused, 403, "permission", "staff_only")
    resolved = cast.staff.ok("POST", f"/v1/disputes/{third['id']}/resolve", resolve)
    assert (resolved["status"], resolved["resolution"], resolved["resolved_by"]) == (
        "resolved",
        "staff",
        cast.staff.id,
    )
    after = cast.client.ok("GET", f"/v1/milestones/{other['id']}")
    assert (after["status"], after["released_amount"], after["refunded_amount"]) == (
        "resolved",
        50_000,
        50_000,
    )
    assert available(cast.freelancer) == 36_000 + 45_000
    # A resolved dispute takes no more offers, from anyone.
    late = cast.client.post(f"/v1/disputes/{third['id']}/offers", {"to_freelancer": 1})
    assert_error(late, 409, "conflict", "invalid_state")


# Projects and proposals ----------------------------------------------------------------------------------


def proposal_for(freelancer: Client, project_id: str, amount: int) -> Any:
    return freelancer.ok(
        "POST",
        f"/v1/projects/{project_id}/proposals",
        {"amount": amount, "milestones": [{"title": "All of it", "amount": amount}]},
    )


def test_project_visibility_and_proposal_listing(sign_up: Any) -> None:
    cast = make_cast(sign_up)
    rival = sign_up("rival")
    awarded = cast.project
    # An awarded project exists only for its parties (and staff).
    for who in (cast.client, cast.freelancer, cast.staff):
        assert who.ok("GET", f"/v1/projects/{awarded['id']}")["status"] == "awarded"
    unknown = cast.outsider.get("/v1/projects/prj_00000000000000000000000000")
    assert_hidden(
        cast.outsider.get(f"/v1/projects/{awarded['id']}"), unknown, awarded["id"], awarded["title"]
    )
    assert awarded["id"] not in [p["id"] for p in cast.outsider.ok("GET", "/v1/projects")["data"]]

    # An open project is visible to any signed-in user, so that they can propose.
    open_project = cast.client.ok("POST", "/v1/projects", {"title": "Mobile app", "currency": USD})
    assert cast.outsider.ok("GET", f"/v1/projects/{open_project['id']}")["status"] == "open"
    mine = proposal_for(cast.freelancer, open_project["id"], 70_000)
    theirs = proposal_for(rival, open_project["id"], 80_000)
    refused = cast.client.post(
        f"/v1/projects/{open_project['id']}/proposals",
        {"amount": 1_000, "milestones": [{"title": "Self", "amount": 1_000}]},
    )
    assert_error(refused, 403, "permission", "client_cannot_propose")

    listing = f"/v1/projects/{open_project['id']}/proposals"
    assert {p["id"] for p in cast.client.ok("GET", listing)["data"]} == {mine["id"], theirs["id"]}
    assert {p["id"] for p in cast.staff.ok("GET", listing)["data"]} == {mine["id"], theirs["id"]}
    assert [p["id"] for p in cast.freelancer.ok("GET", listing)["data"]] == [mine["id"]]
    assert [p["id"] for p in rival.ok("GET", listing)["data"]] == [theirs["id"]]
    assert cast.outsider.ok("GET", listing)["data"] == []

    # Only the client accepts; a proposer is told so, anyone else does not see the proposal.
    refused = cast.freelancer.post(f"/v1/proposals/{mine['id']}/accept")
    assert_error(refused, 403, "permission", "only_client_can_accept")
    unknown = cast.outsider.post("/v1/proposals/prp_00000000000000000000000000/accept")
    assert_hidden(cast.outsider.post(f"/v1/proposals/{mine['id']}/accept"), unknown, mine["id"])
    assert cast.client.ok("POST", f"/v1/proposals/{mine['id']}/accept")["status"] == "awarded"

    # Awarded to someone else, the project is gone for the rival and the outsider.
    for who in (rival, cast.outsider):
        unknown = who.get("/v1/projects/prj_00000000000000000000000000")
        assert_hidden(who.get(f"/v1/projects/{open_project['id']}"), unknown)
        unknown = who.get("/v1/projects/prj_00000000000000000000000000/proposals")
        assert_hidden(who.get(listing), unknown)
    assert [p["id"] for p in cast.freelancer.ok("GET", listing)["data"]] == [mine["id"]]


# Ledger and wallets --------------------------------------------------------------------------------------


def all_postings(who: Client) -> list[dict[str, Any]]:
    postings: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = who.ok("GET", f"/v1/ledger/entries?limit=100{cursor}")
        postings += page["data"]
        if not page["has_more"]:
            return postings
        cursor = f"&starting_after={page['data'][-1]['id']}"


def test_ledger_entries_are_the_callers_own_and_verification_is_for_staff(sign_up: Any) -> None:
    cast = make_cast(sign_up)
    milestone = milestone_in(cast, "funded")
    cast.client.ok("POST", f"/v1/milestones/{milestone['id']}/release", {"amount": 40_000})

    own = {
        "client": f"user:{cast.client.id}:{USD}",
        "freelancer": f"user:{cast.freelancer.id}:{USD}",
        "outsider": f"user:{cast.outsider.id}:{USD}",
    }
    kinds = {
        "client": {"deposit", "fund"},
        "freelancer": {"release"},
        "outsider": {"deposit"},
    }
    for role, account in own.items():
        postings = all_postings(cast.by(role))
        assert postings, role
        assert {p["account"] for p in postings} == {account}, role
        assert {p["entry_kind"] for p in postings} == kinds[role], role
        assert [p["id"] for p in postings] == sorted((p["id"] for p in postings), reverse=True)

    everything = all_postings(cast.staff)
    accounts = {p["account"] for p in everything}
    assert (
        set(own.values()) | {f"escrow:{milestone['id']}:{USD}", f"platform_fee:{USD}"} <= accounts
    )
    # Every journal entry balances, and staff see every posting of it.
    by_entry: dict[str, int] = {}
    for posting in everything:
        by_entry[posting["entry_id"]] = by_entry.get(posting["entry_id"], 0) + posting["amount"]
    assert set(by_entry.values()) == {0}
    assert len(everything) >= sum(len(all_postings(cast.by(role))) for role in own)

    for who in (cast.client, cast.freelancer, cast.outsider):
        assert_error(who.get("/v1/ledger/verify"), 403, "permission", "staff_only")
    report = cast.staff.ok("GET", "/v1/ledger/verify")
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["accounts"] >= 5 and report["entries"] >= 4


def test_manual_deposit_confirm_and_payout_mark_paid_are_staff_only(sign_up: Any) -> None:
    cast = make_cast(sign_up)
    deposit = cast.client.ok(
        "POST", "/v1/deposits", {"amount": 25_000, "currency": USD, "provider": "manual"}
    )
    assert deposit["status"] == "pending"
    assert available(cast.client) == 0
    for who in (cast.client, cast.outsider):
        refused = who.post(f"/v1/deposits/{deposit['id']}/confirm")
        assert_error(refused, 403, "permission", "staff_only")
    assert available(cast.client) == 0
    confirmed = cast.staff.ok("POST", f"/v1/deposits/{deposit['id']}/confirm")
    assert confirmed["status"] == "succeeded"
    assert available(cast.client) == 25_000
    again = cast.staff.post(f"/v1/deposits/{deposit['id']}/confirm")
    assert_error(again, 409, "conflict", "invalid_state")
    assert available(cast.client) == 25_000

    for who in (cast.client, cast.outsider):
        refused = who.post(f"/v1/deposits/{deposit['id']}/reject", {"reason": "never arrived"})
        assert_error(refused, 403, "permission", "staff_only")

    account = cast.outsider.ok(
        "POST",
        "/v1/payout-destinations",
        {"holder_name": "Outsider", "iban": "DE89370400440532013000"},
    )
    payout = cast.outsider.ok(
        "POST",
        "/v1/payouts",
        {"amount": 20_000, "currency": USD, "provider": "manual", "destination_id": account["id"]},
    )
    assert payout["status"] == "pending"
    assert available(cast.outsider) == 30_000
    for who in (cast.outsider, cast.client):
        refused = who.post(f"/v1/payouts/{payout['id']}/mark-paid")
        assert_error(refused, 403, "permission", "staff_only")
        refused = who.post(f"/v1/payouts/{payout['id']}/fail", {"reason": "bounced"})
        assert_error(refused, 403, "permission", "staff_only")
    # The payout and its destination are the owner's and staff's: anyone else gets 404.
    assert_error(cast.client.get(f"/v1/payouts/{payout['id']}"), 404, "not_found", "not_found")
    gone = cast.client.request("DELETE", f"/v1/payout-destinations/{account['id']}")
    assert_error(gone, 404, "not_found", "not_found")
    assert cast.client.ok("GET", "/v1/payout-destinations")["data"] == []
    assert available(cast.outsider) == 30_000
    assert cast.staff.ok("POST", f"/v1/payouts/{payout['id']}/mark-paid")["status"] == "paid"
    assert available(cast.outsider) == 30_000
    assert cast.staff.ok("GET", "/v1/ledger/verify")["ok"] is True


# Milestone lists: pagination and filters -----------------------------------------------------------------


def test_milestone_list_pagination_and_filters(sign_up: Any) -> None:
    cast = make_cast(sign_up)
    client, freelancer = cast.client, cast.freelancer
    created = [
        client.ok(
            "POST",
            f"/v1/projects/{cast.project['id']}/milestones",
            {"title": f"Step {n}", "amount": 1_000},
        )["id"]
        for n in range(25)
    ]
    # The client is also the freelancer on one project of the freelancer's.
    other = freelancer.ok(
        "POST", "/v1/projects", {"title": "Reverse", "currency": USD, "freelancer_id": client.id}
    )
    incoming = [
        freelancer.ok(
            "POST", f"/v1/projects/{other['id']}/milestones", {"title": t, "amount": 500}
        )["id"]
        for t in ("Reverse A", "Reverse B")
    ]

    pages, cursor = [], ""
    while True:
        page = client.ok("GET", f"/v1/milestones?role=client&limit=10{cursor}")
        pages.append(page)
        if not page["has_more"]:
            break
        cursor = f"&starting_after={page['data'][-1]['id']}"
        assert len(pages) < 5
    assert [len(p["data"]) for p in pages] == [10, 10, 5]
    assert [p["has_more"] for p in pages] == [True, True, False]
    seen = [m["id"] for p in pages for m in p["data"]]
    assert len(set(seen)) == 25
    assert seen == list(reversed(created))  # newest first
    assert all(m["object"] == "milestone" for p in pages for m in p["data"])

    # Out of bounds is a wrong value (422, as API.md says of validation); not a number at all, 400.
    for bad, status, type_ in (
        ("limit=0", 422, "validation"),
        ("limit=101", 422, "validation"),
        ("limit=500", 422, "validation"),
        ("limit=ten", 400, "invalid_request"),
    ):
        refused = client.get(f"/v1/milestones?{bad}")
        assert_error(refused, status, type_, "invalid_value")
        assert refused.json()["error"]["param"] == "limit"
    assert len(client.ok("GET", "/v1/milestones?limit=100")["data"]) == 27
    assert len(client.ok("GET", "/v1/milestones?limit=1")["data"]) == 1

    def ids(query: str, who: Client = client) -> list[str]:
        return [m["id"] for m in who.ok("GET", f"/v1/milestones?limit=100&{query}")["data"]]

    assert ids("role=client") == list(reversed(created))
    assert ids("role=freelancer") == list(reversed(incoming))
    assert set(ids("")) == set(created) | set(incoming)
    assert ids("role=client", freelancer) == list(reversed(incoming))
    assert ids("role=freelancer", freelancer) == list(reversed(created))
    assert ids("role=client", cast.outsider) == []
    assert ids("", cast.outsider) == []
    assert ids(f"project_id={cast.project['id']}", cast.outsider) == []
    refused = client.get("/v1/milestones?role=staff")
    assert_error(refused, 400, "invalid_request", refused.json()["error"]["code"])
    assert refused.json()["error"]["param"] == "role"

    client.ok("POST", "/v1/deposits", {"amount": 3_000, "currency": USD})
    funded = created[3:6]
    for milestone_id in funded:
        client.ok("POST", f"/v1/milestones/{milestone_id}/fund")
    assert set(ids("status=funded")) == set(funded)
    assert set(ids("status=funded&role=freelancer", freelancer)) == set(funded)
    assert ids("status=funded&role=client", freelancer) == []
    assert set(ids("status=draft&role=client")) == set(created) - set(funded)
    assert ids(f"status=draft&project_id={other['id']}") == list(reversed(incoming))
    assert ids("status=released") == []
    refused = client.get("/v1/milestones?status=paid")
    assert_error(refused, 400, "invalid_request", refused.json()["error"]["code"])
    assert refused.json()["error"]["param"] == "status"
