"""CSV statements: the caller's postings, oldest first, with a running balance that ends at the balance."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from milepost.cli import app
from milepost.kit.errors import InvalidRequest, ValidationFailed
from milepost.ledger import statement
from milepost.ledger.service import user_account
from milepost.users.models import User
from milepost.wallets import service as wallets
from tests.api.conftest import assert_error
from tests.records.history import build
from tests.world import World


def rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == statement.COLUMNS
    return list(reader)


def check_running_balances(lines: list[dict[str, str]]) -> dict[str, int]:
    """Every line's balance is the previous one plus its amount; the closing balance per account."""
    balances: dict[str, int] = defaultdict(int)
    for line in lines:
        if line["entry_kind"] == statement.OPENING_BALANCE:
            assert line["account"] not in balances
            balances[line["account"]] = int(line["balance"])
            assert int(line["amount"]) == int(line["balance"])
            continue
        balances[line["account"]] += int(line["amount"])
        assert int(line["balance"]) == balances[line["account"]], line
    return dict(balances)


def as_csv(world: World, user: User, **period: Any) -> list[dict[str, str]]:
    lines = world.act(user, statement.my_statement, **period)
    return rows(statement.to_csv(lines))


def test_statement_ends_at_the_wallet_balance(world: World) -> None:
    history = build(world)
    world.act(history.freelancer, wallets.create_payout, amount=50_000, currency="USD")
    for user in (history.client, history.freelancer):
        lines = as_csv(world, user)
        assert {line["account"] for line in lines} == {user_account(user.id, "USD").key}
        assert check_running_balances(lines) == {
            user_account(user.id, "USD").key: world.balance(user)
        }
        stamps = [line["created_at"] for line in lines]
        assert stamps == sorted(stamps)  # oldest first (all UTC, one format)


def test_freelancer_statement_lines(world: World) -> None:
    history = build(world)
    lines = as_csv(world, history.freelancer)
    got = [(line["date"], line["entry_kind"], int(line["amount"])) for line in lines]
    assert got == [
        ("2030-03-02", "bonus", 9_000),
        ("2030-03-04", "release", 90_000),  # m1
        ("2030-03-05", "dispute_split", 27_000),  # m8
        ("2030-03-06", "dispute_split", 18_000),  # m3
        ("2030-03-08", "release", 36_000),  # m4
        ("2030-03-18", "release", 27_000),  # m6
    ]
    assert lines[1]["milestone_id"] == history.ids["m1"]
    assert lines[0]["milestone_id"] == ""
    assert [line["balance"] for line in lines][-1] == "207000"
    assert all(line["currency"] == "USD" for line in lines)


def test_a_period_starts_from_the_balance_brought_forward(world: World) -> None:
    history = build(world)
    key = user_account(history.freelancer.id, "USD").key
    lines = as_csv(world, history.freelancer, start=date(2030, 3, 5), end=date(2030, 3, 8))
    assert [(line["entry_kind"], line["amount"], line["balance"]) for line in lines] == [
        (statement.OPENING_BALANCE, "99000", "99000"),  # bonus 9_000 + m1 90_000
        ("dispute_split", "27000", "126000"),
        ("dispute_split", "18000", "144000"),
        ("release", "36000", "180000"),
    ]
    assert lines[0]["date"] == "2030-03-05" and lines[0]["account"] == key
    # A period running to the last posting ends at the wallet's balance.
    to_the_end = as_csv(world, history.freelancer, start=date(2030, 3, 5))
    assert check_running_balances(to_the_end) == {key: world.balance(history.freelancer)}
    # Nothing before the start: no opening line. A quiet period: only the opening line.
    assert as_csv(world, history.freelancer, end=date(2030, 3, 1)) == []
    quiet = as_csv(world, history.freelancer, start=date(2030, 3, 20))
    assert [(line["entry_kind"], line["balance"]) for line in quiet] == [
        (statement.OPENING_BALANCE, "207000")
    ]


def test_a_period_that_ends_before_it_starts_is_refused(world: World) -> None:
    user = world.user("someone")
    with pytest.raises(InvalidRequest) as refused:
        world.act(user, statement.my_statement, start=date(2030, 3, 5), end=date(2030, 3, 4))
    assert refused.value.param == "from"


def test_staff_statement_covers_every_account_and_ends_at_each_balance(world: World) -> None:
    history = build(world)
    lines = as_csv(world, history.staff)
    for key, closing in check_running_balances(lines).items():
        assert closing == world.account_balance(key), key


@pytest.fixture(params=["by time", "by account"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each statement test below runs both ways a period's postings can be found: by the entries' time
    (a short period) and by account (a period too long for that)."""
    if request.param == "by account":
        monkeypatch.setattr(statement, "BY_TIME_UP_TO", 0)
    return str(request.param)


def test_the_opening_balance_is_what_was_posted_before_whichever_way_it_is_read(
    world: World, path: str
) -> None:
    history = build(world)
    # The freelancer is paid a 9_000 bonus on 03-02, m1's 90_000 on 03-04, 27_000 on 03-05, 18_000 on
    # 03-06, 36_000 on 03-08 and 27_000 on 03-18 (2030).
    for start, opening in (
        (date(2030, 3, 3), 9_000),
        (date(2030, 3, 5), 99_000),
        (date(2030, 3, 8), 144_000),
        (date(2030, 3, 25), 207_000),
    ):
        lines = as_csv(world, history.freelancer, start=start)
        first = lines[0]
        assert (first["entry_kind"], int(first["balance"]), first["date"]) == (
            statement.OPENING_BALANCE,
            opening,
            start.isoformat(),
        ), (path, start)
        key = user_account(history.freelancer.id, "USD").key
        assert check_running_balances(lines) == {key: world.balance(history.freelancer)}
    # A period that ends before today starts from the same balance.
    bounded = as_csv(world, history.freelancer, start=date(2030, 3, 5), end=date(2030, 3, 5))
    assert [(line["entry_kind"], line["balance"]) for line in bounded] == [
        (statement.OPENING_BALANCE, "99000"),
        ("dispute_split", "126000"),
    ]
    # Before the first posting: no opening line at all.
    assert as_csv(world, history.freelancer, start=date(2030, 3, 2))[0]["entry_kind"] == "bonus"
    # Staff: every account with postings before the day, each from its own balance, each ending at it.
    everyone = as_csv(world, history.staff, start=date(2030, 3, 5))
    assert any(line["entry_kind"] == statement.OPENING_BALANCE for line in everyone)
    for key, closing in check_running_balances(everyone).items():
        assert closing == world.account_balance(key), key


def test_an_account_that_came_back_to_zero_still_opens_with_its_balance(
    world: World, path: str
) -> None:
    """A history that adds up to nothing is still a history: the period opens with a zero line, as it
    does for an account that had none only when there was none."""
    ann = world.user("ann")
    account = world.destination(ann)
    before = datetime(2030, 1, 10, 12, tzinfo=UTC)
    world.act(ann, wallets.create_deposit, amount=5_000, currency="USD", now=before)
    world.act(
        ann,
        wallets.create_payout,
        amount=5_000,
        currency="USD",
        provider="manual",
        destination_id=account.id,
        now=before,
    )
    world.act(ann, wallets.create_deposit, amount=700, currency="USD", now=before + timedelta(40))
    lines = as_csv(world, ann, start=date(2030, 2, 1))
    assert [(line["entry_kind"], line["amount"], line["balance"]) for line in lines] == [
        (statement.OPENING_BALANCE, "0", "0"),
        ("deposit", "700", "700"),
    ]
    # A user with no account at all has an empty statement.
    assert as_csv(world, world.user("bob"), start=date(2030, 2, 1)) == []


# The command line ------------------------------------------------------------------------------------


def test_statement_command_prints_the_same_csv(world: World, db_url: str) -> None:
    history = build(world)
    email = history.freelancer.email
    result = CliRunner().invoke(
        app,
        [
            "statement",
            "--user",
            email,
            "--from",
            "2030-03-05",
            "--to",
            "2030-03-08",
            "--db",
            db_url,
        ],
    )
    assert result.exit_code == 0, result.output
    expected = world.act(
        None,
        statement.statement,
        history.freelancer.id,
        start=date(2030, 3, 5),
        end=date(2030, 3, 8),
    )
    assert result.stdout_bytes.decode() == statement.to_csv(expected)
    by_id = CliRunner().invoke(app, ["statement", "--user", history.freelancer.id, "--db", db_url])
    assert by_id.exit_code == 0, by_id.output
    closing = check_running_balances(rows(by_id.stdout))
    assert closing == {user_account(history.freelancer.id, "USD").key: 207_000}


def test_statement_command_refuses_unknown_users_and_bad_dates(world: World, db_url: str) -> None:
    world.user("someone")
    unknown = CliRunner().invoke(app, ["statement", "--user", "nobody@example.com", "--db", db_url])
    assert unknown.exit_code == 1
    assert "nobody@example.com" in unknown.output
    bad = CliRunner().invoke(app, ["statement", "--user", "x", "--from", "March", "--db", db_url])
    assert bad.exit_code == 2
    backwards = CliRunner().invoke(
        app,
        [
            *("statement", "--user", world.user("a").email),
            *("--from", "2030-03-05", "--to", "2030-03-01", "--db", db_url),
        ],
    )
    assert backwards.exit_code == 1


# Over HTTP ------------------------------------------------------------------------------------------------


def test_csv_statement_over_http_ends_at_the_balance(sign_up: Any) -> None:
    client, freelancer, stranger = sign_up("client"), sign_up("freelancer"), sign_up("stranger")
    client.ok("POST", "/v1/deposits", {"amount": 200_000, "currency": "USD"})
    client.ok("POST", "/v1/deposits", {"amount": 5_000, "currency": "EUR"})
    stranger.ok("POST", "/v1/deposits", {"amount": 7_000, "currency": "USD"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": "USD", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "Design", "amount": 80_000}
    )
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    client.ok("POST", f"/v1/milestones/{milestone['id']}/release", {"amount": 30_000})
    client.ok("POST", f"/v1/projects/{project['id']}/bonuses", {"amount": 1_000})
    freelancer.ok("POST", "/v1/payouts", {"amount": 10_000, "currency": "USD"})

    for person in (client, freelancer):
        response = person.get("/v1/ledger/entries", params={"format": "csv"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        closing = check_running_balances(rows(response.text))
        balances = person.ok("GET", "/v1/balances")["data"]
        assert closing == {
            user_account(person.id, row["currency"]).key: row["available"] for row in balances
        }
    client_lines = rows(client.get("/v1/ledger/entries", params={"format": "csv"}).text)
    assert {line["currency"] for line in client_lines} == {"USD", "EUR"}
    assert all(
        person_key.startswith(f"user:{client.id}:")
        for person_key in {line["account"] for line in client_lines}
    )

    today = date.today().isoformat()
    period = client.get("/v1/ledger/entries", params={"format": "csv", "from": today, "to": today})
    assert period.status_code == 200
    # JSON stays the default, and unchanged.
    listed = client.ok("GET", "/v1/ledger/entries")
    assert listed["object"] == "list" and listed["data"][0]["object"] == "ledger_posting"

    for params in (
        {"format": "csv", "from": "2030-03-05", "to": "2030-03-01"},
        {"format": "csv", "from": "yesterday"},
        {"format": "xml"},
        {"from": today},
    ):
        refused = client.get("/v1/ledger/entries", params=params)
        assert refused.status_code == 400, params
        assert refused.json()["error"]["type"] == "invalid_request"
    assert (
        stranger.get(
            "/v1/ledger/entries", params={"format": "csv"}, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )


# Dates past the end of the calendar ---------------------------------------------------------------------


def test_statement_dates_past_9998_are_refused_naming_the_parameter(sign_up: Any) -> None:
    client = sign_up("client")
    client.ok("POST", "/v1/deposits", {"amount": 5_000, "currency": "USD"})
    for name, value in (("to", "9999-12-31"), ("from", "9999-01-01"), ("to", "9999-01-01")):
        params = {"format": "csv", name: value}
        refused = client.get("/v1/ledger/entries", params=params)
        assert_error(refused, 422, "validation", "date_out_of_range", name)
    # The last day allowed still works, and ends at the balance.
    last = client.get("/v1/ledger/entries", params={"format": "csv", "to": "9998-12-31"})
    assert last.status_code == 200, last.text
    assert check_running_balances(rows(last.text)) == {user_account(client.id, "USD").key: 5_000}


def test_statement_command_refuses_dates_past_9998(world: World, db_url: str) -> None:
    user = world.user("someone")
    for option in ("--to", "--from"):
        result = CliRunner().invoke(
            app, ["statement", "--user", user.email, option, "9999-12-31", "--db", db_url]
        )
        assert result.exit_code == 2, result.output
        assert "9998-12-31" in result.output and option in result.output
        assert "internal error" not in result.output
    # The service refuses them too, whoever calls it.
    with pytest.raises(ValidationFailed) as refused:
        world.act(user, statement.my_statement, end=date(9999, 12, 31))
    assert (refused.value.status, refused.value.param) == (422, "to")
