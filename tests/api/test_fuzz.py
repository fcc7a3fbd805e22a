"""Property-based fuzzing of the whole OpenAPI document with Schemathesis, against a real server.

Every operation of ``/openapi.json`` gets generated requests (valid and invalid ones), sent with a bearer
token to a live test server over a database that already holds real objects (a draft, a funded, a submitted,
a released and a disputed milestone, an offer, a proposal, a pending deposit and payout), so that generated
paths and filters often name objects that exist. Every response must not be a 5xx, must have a documented
status code, and must match the documented schema (error bodies too: they are declared as ``ErrorOut``).

One server and one world per backend serve every operation's test, so that operations also run on the state
earlier ones left; the ledger must verify after every operation's test.

CI runs 10 examples per operation (Schemathesis' examples and fuzzing phases). A longer run, which adds the
coverage phase (boundary values): ``make fuzz`` (``MILEPOST_FUZZ_EXAMPLES=500``, ``FUZZ_EXAMPLES=...``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings
from requests.structures import CaseInsensitiveDict
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from milepost.app import create_app
from milepost.auth.service import sign_in
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.ledger.verify import verify_ledger
from milepost.settings import Settings
from milepost.users import service as users
from tests.api.conftest import PASSWORD, Client, LiveServer
from tests.conftest import BACKENDS, make_database

CI_EXAMPLES = 6
EXAMPLES = int(os.environ.get("MILEPOST_FUZZ_EXAMPLES", str(CI_EXAMPLES)))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]

# The document the app serves; a test below checks that the live server serves exactly this one. It is read
# at import so that pytest collects one test per operation (and xdist can spread them).
schema = schemathesis.openapi.from_dict(
    create_app(Settings(), database=Database("sqlite://")).openapi()
)
# NUL and the other control characters stay in the generated text (Schemathesis' default, stated here
# because this is what found PostgreSQL's 500 on NUL at 100 examples per operation; ``make fuzz`` runs
# 500). Strings are UTF-8, so lone surrogates come from tests/api/test_control_characters.py instead.
schema.config.generation.update(max_examples=EXAMPLES, deterministic=True, allow_x00=True)
# The coverage phase (boundary values of every parameter) adds ~40% to the run: long runs only.
schema.config.phases.coverage.enabled = EXAMPLES > CI_EXAMPLES


@dataclass
class FuzzWorld:
    """A live server, who may call it (bearer tokens), and the real ids requests may name, by parameter."""

    base_url: str
    db: Database
    settings: Settings
    tokens: list[str] = field(default_factory=list)
    ids: dict[str, list[str]] = field(default_factory=dict)
    emails: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, name: str, value: str) -> str:
        self.ids.setdefault(name, []).append(value)
        return value

    def user(self, name: str, *, staff: bool = False) -> Client:
        """A signed-in user (staff are made as the CLI would: there is no API for it)."""
        email = f"fuzz-{name}{next(self.emails)}@example.com"
        with self.db.unit_of_work() as session:
            users.create_user(session, email=email, name=name, password=PASSWORD, is_staff=staff)
        return Client(self.base_url, self.token_for(email), {})

    def token_for(self, email: str) -> str:
        """A fresh token, made in-process: sign-ins over HTTP meet the rate limit that fuzzing provokes."""
        with self.db.unit_of_work() as session:
            ctx = Context(session, None, settings=self.settings)
            token, _user = sign_in(ctx, email=email, password=PASSWORD, address=None)
        return token


def _populate(world: FuzzWorld) -> None:
    client, freelancer = world.user("client"), world.user("freelancer")
    staff = world.user("staff", staff=True)
    world.tokens = [str(who.token) for who in (client, freelancer, staff)]
    freelancer_id = freelancer.ok("GET", "/v1/me")["id"]
    ids = world.add

    client.ok("POST", "/v1/deposits", {"amount": 10_000_000, "currency": "USD"})
    manual = {"amount": 50_000, "currency": "USD", "provider": "manual"}
    ids("deposit_id", client.ok("POST", "/v1/deposits", manual)["id"])
    account = {"holder_name": "Client", "iban": "DE89370400440532013000"}
    destination_id = ids(
        "destination_id", client.ok("POST", "/v1/payout-destinations", account)["id"]
    )
    payout = {**manual, "destination_id": destination_id}
    ids("payout_id", client.ok("POST", "/v1/payouts", payout)["id"])

    project = {"title": "Site", "currency": "USD", "freelancer_id": freelancer_id}
    project_id = ids("project_id", client.ok("POST", "/v1/projects", project)["id"])

    def milestone(title: str) -> str:
        body = {"title": title, "amount": 100_000, "acceptance_criteria": ["works"]}
        created = client.ok("POST", f"/v1/projects/{project_id}/milestones", body)
        return ids("milestone_id", created["id"])

    def funded(title: str) -> str:
        milestone_id = milestone(title)
        client.ok("POST", f"/v1/milestones/{milestone_id}/fund")
        return milestone_id

    def submitted(title: str) -> str:
        milestone_id = funded(title)
        body = {"note": "done", "evidence": [{"type": "text", "text": "see staging"}]}
        freelancer.ok("POST", f"/v1/milestones/{milestone_id}/submissions", body)
        return milestone_id

    milestone("draft")
    funded("funded")
    submitted("submitted")
    client.ok("POST", f"/v1/milestones/{submitted('released')}/approve")
    disputed = submitted("disputed")
    dispute = client.ok("POST", f"/v1/milestones/{disputed}/disputes", {"reason": "not done"})
    dispute_id = ids("dispute_id", dispute["id"])
    offer = freelancer.ok("POST", f"/v1/disputes/{dispute_id}/offers", {"to_freelancer": 50_000})
    ids("offer_id", offer["id"])

    open_project = client.ok("POST", "/v1/projects", {"title": "Open", "currency": "USD"})
    ids("project_id", open_project["id"])
    proposal = {"amount": 20_000, "milestones": [{"title": "All", "amount": 20_000}]}
    created = freelancer.ok("POST", f"/v1/projects/{open_project['id']}/proposals", proposal)
    ids("proposal_id", created["id"])
    upload = client.post("/v1/files", files={"file": ("notes.txt", b"delivered", "text/plain")})
    assert upload.status_code == 201, upload.text
    ids("file_id", upload.json()["id"])
    hook = {"url": "https://hooks.example.com/milepost"}
    ids("endpoint_id", client.ok("POST", "/v1/webhook-endpoints", hook)["id"])
    # Query parameters that name objects (project_id, starting_after) draw from the same pool.
    world.ids["starting_after"] = [
        value for name in ("project_id", "milestone_id", "endpoint_id") for value in world.ids[name]
    ]


# The world of the running test (set by the fuzz_world fixture); the hooks below draw from it.
_current: list[FuzzWorld] = []


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzWorld]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    database = make_database(request, str(request.param), tmp_path)
    settings = Settings(fee_bps=1000, providers="sandbox,manual", files_dir=str(tmp_path / "files"))
    try:
        with pytest.MonkeyPatch.context() as patch, LiveServer(database, settings) as base_url:
            # As tests/conftest.py does per test: real argon2 with its cheapest parameters.
            patch.setattr(
                users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
            )
            world = FuzzWorld(base_url, database, settings)
            _populate(world)
            _current.append(world)
            yield world
            _current.remove(world)
    finally:
        database.dispose()


@pytest.fixture
def verified_world(fuzz_world: FuzzWorld) -> Iterator[FuzzWorld]:
    """The world, whose ledger must verify when the test ends (as tests/conftest.py's ``db`` does)."""
    yield fuzz_world
    with fuzz_world.db.read_only() as session:
        report = verify_ledger(session)
    assert report.ok, "ledger does not verify after the test:\n" + "\n".join(report.problems)


def _real_or_generated(values: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """Keep each generated value, or swap it for a real id of that parameter's kind."""
    if not values or not _current:
        return st.just(values)
    ids = _current[-1].ids
    return st.fixed_dictionaries(
        {
            name: st.sampled_from([value, *ids[name]]) if name in ids else st.just(value)
            for name, value in values.items()
        }
    )


@schema.hook
def flatmap_path_parameters(_context: Any, path_parameters: dict[str, Any]) -> Any:
    return _real_or_generated(path_parameters)


@schema.hook
def flatmap_query(_context: Any, query: dict[str, Any]) -> Any:
    return _real_or_generated(query)


@schema.hook
def flatmap_case(_context: Any, case: schemathesis.Case[Any]) -> Any:
    """Send each request as one of the world's users: the client, the freelancer or a staff member."""

    def signed(token: str) -> schemathesis.Case[Any]:
        headers = CaseInsensitiveDict(case.headers or {})
        headers["Authorization"] = f"Bearer {token}"
        case.headers = headers
        return case

    return st.sampled_from(_current[-1].tokens).map(signed) if _current else st.just(case)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_every_operation_answers_as_documented(
    case: schemathesis.Case[Any], verified_world: FuzzWorld
) -> None:
    world = verified_world
    headers = dict(case.headers or {})
    # Cases not drawn through the hooks above (explicit examples, coverage cases) go as the client.
    headers.setdefault("Authorization", f"Bearer {world.tokens[0]}")
    if case.method.upper() == "DELETE" and case.path == "/v1/tokens/current":
        # Signing out must not revoke the tokens every other request uses.
        signing_out = world.user("leaving")
        headers["Authorization"] = f"Bearer {signing_out.token}"
    case.headers = CaseInsensitiveDict(headers)
    case.call_and_validate(base_url=world.base_url, checks=CHECKS)


def test_the_fuzzed_document_is_the_served_one_and_its_ids_exist(
    verified_world: FuzzWorld,
) -> None:
    """The fuzzer reads the document the server serves, and the ids it draws from really exist for the
    tokens it sends (otherwise it would fuzz little but 404s)."""
    client = Client(verified_world.base_url, verified_world.tokens[0])
    assert client.get("/openapi.json").json() == schema.raw_schema
    for name, path in [
        ("milestone_id", "/v1/milestones/{}"),
        ("project_id", "/v1/projects/{}"),
        ("dispute_id", "/v1/disputes/{}"),
    ]:
        for value in verified_world.ids[name]:
            response = client.get(path.format(value))
            assert response.status_code == 200, (path, response.text)
