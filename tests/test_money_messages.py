"""Every refusal that names an amount names it as people read money ("$1,000.00", "¥5,000"), never in raw
minor units ("100000"): swept in the source, then asked of the services one refusal after another."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost.disputes import service as disputes
from milepost.kit import errors
from milepost.kit.errors import MilepostError
from milepost.milestones import service as milestones
from milepost.money import parse_amount
from milepost.projects import service as projects
from milepost.wallets import service as wallets
from milepost.web.forms import dispute as dispute_forms
from milepost.web.forms import milestone as milestone_forms
from tests.world import World

SOURCE = Path(milepost.__file__).parent
ERRORS = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, MilepostError)
}
# A value put into a message whose name says it is money.
MONEY_NAME = re.compile(
    r"amount|escrow|balance|total|fee|price|sum|part|refund|to_freelancer|to_client|held|need"
    r"|short|funded|released|gross|net\b"
)
# Put in a message through the formatter, or not money at all (a count of items, a state's name).
FORMATTED = re.compile(r"^(format_money|_money)\(")
NOT_MONEY = {"len(value)", "offer.status"}
# Digits a person would read as a raw figure: four or more, not part of a formatted amount or an id.
RAW = re.compile(r"(?<![\w$€¥£.,])\d{4,}(?![\w.,])")


def _interpolated(call: ast.Call) -> list[str]:
    """The expressions an error's message puts into an f-string."""
    found = []
    for argument in call.args[:1]:
        for node in ast.walk(argument):
            if isinstance(node, ast.FormattedValue):
                found.append(ast.unparse(node.value))
    return found


def test_no_error_message_puts_an_amount_in_unformatted() -> None:
    raw = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in ERRORS:
                continue
            for expression in _interpolated(node):
                if (
                    MONEY_NAME.search(expression)
                    and not FORMATTED.match(expression)
                    and expression not in NOT_MONEY
                ):
                    raw.append(f"{path.relative_to(SOURCE)}:{node.lineno}: {expression}")
    assert not raw, "amounts put into error messages without format_money:\n" + "\n".join(raw)


def _refusal(world: World, user: Any, action: Callable[..., object], *args: Any, **kw: Any) -> str:
    error = world.attempt(user, action, *args, **kw)
    assert error is not None, f"{action.__name__} was accepted"
    return error.message


def test_the_refusals_that_name_money_say_it_in_the_currency_format(world: World) -> None:
    client, freelancer, milestone = world.submitted(100_000)
    poor = world.user("client")
    world.deposit(poor, 5_000)
    project = world.project(poor, world.user("freelancer"))
    draft = world.milestone(poor, project, 100_000, title="Too dear")
    dispute_milestone = world.submitted(100_000)
    opened = world.act(
        dispute_milestone[0], disputes.open_dispute, dispute_milestone[2].id, reason="No"
    )
    staff = world.user("staffer", staff=True)
    jpy_client, jpy_freelancer, jpy_project = world.parties(currency="JPY", wallet=5_000)

    messages = {
        "release more than the escrow": _refusal(
            world, client, milestones.release, milestone.id, amount=100_001
        ),
        "fund from a short wallet": _refusal(world, poor, milestones.fund, draft.id),
        "pay out more than the wallet": _refusal(
            world, freelancer, wallets.create_payout, amount=500_000, currency="USD"
        ),
        "bonus from a short wallet": _refusal(
            world, poor, projects.create_bonus, project.id, amount=900_000
        ),
        "offer more than the escrow": _refusal(
            world,
            dispute_milestone[1],
            disputes.make_offer,
            opened.id,
            to_freelancer=100_001,
        ),
        "a split that misses the escrow": _refusal(
            world, staff, disputes.resolve, opened.id, to_freelancer=50_000, to_client=10_000
        ),
        "a part of a split over the escrow": _refusal(
            world,
            staff,
            dispute_forms.resolve_with_freelancer_part,
            opened.id,
            to_freelancer="1,000.01",
        ),
        "a typed release over the escrow": _refusal(
            world, client, milestone_forms.release, milestone.id, amount="$2,000"
        ),
        "yen over the wallet": _refusal(
            world, jpy_client, projects.create_bonus, jpy_project.id, amount=900_000
        ),
        "proposal milestones that miss the total": _refusal(
            world,
            jpy_freelancer,
            projects.create_proposal,
            world.project(jpy_client, currency="JPY").id,
            amount=150_000,
            milestones=[{"title": "All", "amount": 100_000}],
        ),
    }
    for what, message in messages.items():
        assert re.search(r"[$¥]\d", message), (what, message)
        assert not RAW.search(message), (what, message)
    assert messages["release more than the escrow"] == (
        "The escrow holds $1,000.00; cannot release $1,000.01."
    )
    assert messages["fund from a short wallet"] == ("The wallet holds $50.00; $1,000.00 is needed.")
    assert "¥5,000" in messages["yen over the wallet"]


def test_an_amount_typed_over_the_limit_is_refused_in_its_currency() -> None:
    for typed, currency, said in (
        ("20,000,000,000", "USD", "Amounts go up to $10,000,000,000.00."),
        ("2,000,000,000,000", "JPY", "Amounts go up to ¥1,000,000,000,000."),
    ):
        with pytest.raises(errors.ValidationFailed) as refused:
            parse_amount(typed, currency)
        assert refused.value.message == said
