"""Staff's pending-transfers page offers a deposit's or payout's form exactly when the service would accept
its action: for every state a deposit and a payout can be in (bank transfer or sandbox) and every viewer
(the owner, staff, an outsider), what the page read model offers is compared with what the service does
when the action is tried (in a unit of work that is rolled back). Owners and outsiders are offered nothing
anywhere: the dashboard lists their pending transfers without forms, and the staff page refuses them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from milepost.kit.context import Context
from milepost.kit.errors import PermissionDenied
from milepost.users.models import User
from milepost.wallets import service as wallets
from milepost.wallets.models import Deposit
from milepost.wallets.state import DepositAction, PayoutAction
from milepost.web.views.pending_transfers import PendingTransfer, pending_transfers
from tests.world import World

DEPOSIT_TRIES: dict[str, Callable[[Context, str], object]] = {
    DepositAction.CONFIRM: wallets.confirm_deposit,
    DepositAction.REJECT: lambda ctx, id_: wallets.reject_deposit(ctx, id_, reason="Never came."),
}
PAYOUT_TRIES: dict[str, Callable[[Context, str], object]] = {
    PayoutAction.MARK_PAID: wallets.mark_payout_paid,
    PayoutAction.FAIL: lambda ctx, id_: wallets.fail_payout(ctx, id_, reason="Bounced."),
}


def _deposit(world: World, owner: User, staff: User, state: str) -> Any:
    provider, _, then = state.partition(":")
    deposit = world.act(
        owner, wallets.create_deposit, amount=5_000, currency="USD", provider=provider
    )
    if then == "confirmed":
        world.act(staff, wallets.confirm_deposit, deposit.id)
    elif then == "rejected":
        world.act(staff, wallets.reject_deposit, deposit.id, reason="Never came.")
    return deposit


def _payout(world: World, owner: User, staff: User, state: str) -> Any:
    provider, _, then = state.partition(":")
    world.deposit(owner, 50_000)
    destination = world.destination(owner) if provider == "manual" else None
    payout = world.act(
        owner,
        wallets.create_payout,
        amount=5_000,
        currency="USD",
        provider=provider,
        destination_id=None if destination is None else destination.id,
    )
    if then == "paid":
        world.act(staff, wallets.mark_payout_paid, payout.id)
    elif then == "failed":
        world.act(staff, wallets.fail_payout, payout.id, reason="Bounced.")
    return payout


def _staff_page_line(
    world: World, user: User, kind: str, transfer_id: str
) -> PendingTransfer | None:
    try:
        page = world.act(user, pending_transfers)
    except PermissionDenied:
        return None  # not staff: the page does not exist for them
    lines = page.deposits if kind == "deposit" else page.payouts
    return next((line for line in lines if line.id == transfer_id), None)


CASES = [
    ("deposit", state) for state in ("manual", "manual:confirmed", "manual:rejected", "sandbox")
] + [("payout", state) for state in ("manual", "manual:paid", "manual:failed", "sandbox")]


@pytest.mark.parametrize(("kind", "state"), CASES)
def test_the_staff_page_offers_exactly_what_the_service_accepts(
    world: World, kind: str, state: str
) -> None:
    owner, staff = world.user("owner"), world.user("staff", staff=True)
    people = {"owner": owner, "staff": staff, "outsider": world.user("outsider")}
    make, tries = (_deposit, DEPOSIT_TRIES) if kind == "deposit" else (_payout, PAYOUT_TRIES)
    transfer = make(world, owner, staff, state)
    for role, user in people.items():
        line = _staff_page_line(world, user, kind, transfer.id)
        offered = set() if line is None else set(line.actions)
        accepted = {
            action for action, run in tries.items() if world.attempt(user, run, transfer.id) is None
        }
        assert offered == accepted, (kind, state, role)
        if role == "staff" and state == "manual":
            assert accepted == set(tries)  # the case that must be open, so the test can tell


def test_available_actions_answer_for_any_transfer(world: World) -> None:
    """The service's answer itself: only staff, only while pending."""
    owner, staff = world.user("owner"), world.user("staff", staff=True)
    pending = _deposit(world, owner, staff, "manual")
    settled = _deposit(world, owner, staff, "sandbox")

    def deposit_actions(deposit_id: str) -> Callable[[Context], frozenset[DepositAction]]:
        def actions(ctx: Context) -> frozenset[DepositAction]:
            deposit = ctx.session.get(Deposit, deposit_id)
            assert deposit is not None
            return wallets.available_deposit_actions(ctx, deposit)

        return actions

    assert world.act(staff, deposit_actions(pending.id)) == {
        DepositAction.CONFIRM,
        DepositAction.REJECT,
    }
    assert world.act(owner, deposit_actions(pending.id)) == frozenset()
    assert world.act(staff, deposit_actions(settled.id)) == frozenset()
